#!/usr/bin/env python3
"""auth_tokens.t - tokens and room rights on every HTTP endpoint.

What it is for: checking, through the web server, that a token is taken
from the Authorization header, the roomcast_token cookie or ?token=; that
a private room answers 401 unauthorized without a token (or with an
unknown, expired or revoked one) and 403 forbidden to a token without the
right, on publish, history, SSE, long-poll and POST /rt/tickets; that
reading needs can_read and publishing can_write; that a trailing-* pattern
grants exactly the rooms it names; that "from" is the token's user, and
null for an anonymous publish to a public_write room; that a public_read
room is readable without a token but not writable; that failed requests
store nothing; and that no log line holds a token.
What it is not for: tickets, JWTs, stream closing and limits (the other
auth_*.t files).
Who uses it: `make test` (through prove), against the running stack. Its
rooms and users carry this run's pid and time.
"""

import os
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rc  # noqa: E402

TAG = "%d_%d" % (os.getpid(), int(time.time()))
VIAS = ("bearer", "cookie", "query")


def expect(tap, res, status, code, name):
    """One check of a Resp (or (status, body)) against status and code."""
    bad = rc.answer_problems(res, status, code)
    return tap.ok(not bad, name, "%s %s" % (status, code or ""),
                  "%s: %s" % ("; ".join(bad), res))


def sse_expect(tap, rooms, token, via, status, code, name, extra=None,
               headers=None):
    got_status, body, sse = rc.sse_answer(rooms, token, via, extra=extra,
                                          headers=headers)
    if got_status == 200:
        sse.close()
    return expect(tap, (got_status, body), status, code, name)


def every_endpoint(tap, room, token, via, status, code, what,
                   read=True, write=True, tickets=True):
    """The same expected answer from each endpoint that takes a room."""
    if write:
        expect(tap, rc.publish_as(room, token, via), status, code,
               "%s: publish %s %s" % (what, status, code or ""))
    if read:
        expect(tap, rc.history_as(room, token, via), status, code,
               "%s: history %s %s" % (what, status, code or ""))
        sse_expect(tap, room, token, via, status, code,
                   "%s: SSE %s %s" % (what, status, code or ""))
        expect(tap, rc.poll_as(room, token, via, timeout=1), status, code,
               "%s: long-poll %s %s" % (what, status, code or ""))
    if tickets:
        res = rc.auth_request("POST", "/tickets", token, via)
        if res.status == 200 and isinstance(res.json, dict):
            rc.remember_secret(res.json.get("ticket"))
        if status in (401,):
            expect(tap, res, status, code,
                   "%s: POST /rt/tickets %s %s" % (what, status, code))


def check_sources(tap, room, tok, user):
    """Each way of sending a token works on each endpoint."""
    for via in VIAS:
        res = rc.publish_as(room, tok, via, id="src-" + via)
        ok = tap.ok(res.status == 201 and isinstance(res.json, dict)
                    and res.json.get("type") == "ack"
                    and res.json.get("room") == room,
                    "token by %s: publish 201 with an ack" % via,
                    "201 ack", res)
        if ok and "from" in res.json:
            tap.eq(res.json.get("from"), user,
                   "token by %s: the ack's from is the user" % via)
        expect(tap, rc.history_as(room, tok, via, after=0), 200, None,
               "token by %s: history 200" % via)
        sse_expect(tap, room, tok, via, 200, None,
                   "token by %s: SSE 200" % via)
        expect(tap, rc.poll_as(room, tok, via, timeout=1), 200, None,
               "token by %s: long-poll 200" % via)
        res, ticket = rc.ticket_for(tok, via)
        tap.ok(res.status == 200 and ticket is not None,
               "token by %s: POST /rt/tickets 200" % via, "200 ticket", res)
    res = rc.auth_request("GET", "/rooms/%s/messages" % room,
                          headers={"Cookie": "a=1; roomcast_token=%s; b=2"
                                   % tok})
    expect(tap, res, 200, None,
           "the roomcast_token cookie is found among other cookies")


def check_from(tap, room, tok, user):
    res = rc.publish_as(room, tok, "bearer", id="from-check",
                        data={"who": "me"})
    seq = res.json.get("seq") if isinstance(res.json, dict) else None
    hist = rc.history_as(room, tok, "bearer", after=0, limit=1000)
    msgs = hist.json.get("messages", []) if isinstance(hist.json, dict) \
        else []
    mine = [m for m in msgs if m.get("seq") == seq]
    tap.ok(len(mine) == 1 and mine[0].get("from") == user,
           "the stored envelope's from is the token's user", user,
           mine or hist)
    stored = rc.sql("SELECT from_user FROM roomcast.messages WHERE room = "
                    "%s AND client_id = 'from-check'" % rc.lit(room))
    tap.eq(stored, user, "messages.from_user is the token's user")


def check_no_token(tap, room):
    every_endpoint(tap, room, None, None, 401, "unauthorized",
                   "private room without a row, no token")
    flagged = rc.make_room("apflag")
    every_endpoint(tap, flagged, None, None, 401, "unauthorized",
                   "private room with public flags false, no token",
                   tickets=False)
    unknown = rc.remember_secret("rct_" + "0" * 64)
    for via in VIAS:
        every_endpoint(tap, room, unknown, via, 401, "unauthorized",
                       "unknown token by %s" % via)
    garbage = rc.remember_secret("not-a-token-" + TAG)
    every_endpoint(tap, room, garbage, "bearer", 401, "unauthorized",
                   "malformed bearer token")


def check_rights(tap, room, user):
    ro = rc.issue_token(user, [room], [])
    wo = rc.issue_token(user, [], [room])
    none = rc.issue_token(user, [], [])
    expect(tap, rc.publish_as(room, ro), 403, "forbidden",
           "read-only token: publish 403 forbidden")
    expect(tap, rc.history_as(room, ro), 200, None,
           "read-only token: history 200")
    sse_expect(tap, room, ro, "bearer", 200, None, "read-only token: SSE 200")
    expect(tap, rc.poll_as(room, ro, timeout=1), 200, None,
           "read-only token: long-poll 200")
    expect(tap, rc.publish_as(room, wo), 201, None,
           "write-only token: publish 201")
    every_endpoint(tap, room, wo, "bearer", 403, "forbidden",
                   "write-only token", write=False, tickets=False)
    every_endpoint(tap, room, none, "cookie", 403, "forbidden",
                   "token with no rights", tickets=False)
    other = rc.room_name("apother")
    both = rc.issue_token(user, [room], [room])
    sse_expect(tap, [room, other], both, "bearer", 403, "forbidden",
               "SSE naming one readable and one other room: 403")
    expect(tap, rc.poll_as([room, other], both, timeout=1), 403,
           "forbidden", "long-poll naming one readable and one other room: "
           "403")


def check_patterns(tap, user):
    prefix = "t_pat_%s_" % TAG
    tok = rc.issue_token(user, [prefix + "team-*"], [prefix + "team-*"])
    for suffix, allowed in (("team-a", True), ("team-", True),
                            ("team-b.c_d", True), ("teamx", False),
                            ("team", False), ("xteam-a", False)):
        room = prefix + suffix if suffix != "xteam-a" else \
            "x" + prefix + "team-a"
        status = 201 if allowed else 403
        expect(tap, rc.publish_as(room, tok), status,
               None if allowed else "forbidden",
               "pattern team-*: publish to %s %d" % (suffix, status))
        status = 200 if allowed else 403
        sse_expect(tap, room, tok, "bearer", status,
                   None if allowed else "forbidden",
                   "pattern team-*: SSE on %s %d" % (suffix, status))
    star = rc.issue_token(user, ["*"], ["*"])
    anyroom = rc.room_name("apstar")
    expect(tap, rc.publish_as(anyroom, star), 201, None,
           "pattern *: publish to any room 201")
    expect(tap, rc.history_as(anyroom, star), 200, None,
           "pattern *: history of any room 200")


def check_public(tap, user):
    pr = rc.make_room("appr", public_read=True)
    rc.sql_publish(pr, "text", {"n": 0})
    expect(tap, rc.history_as(pr, None, None, after=0), 200, None,
           "public_read room: history without a token 200")
    sse_expect(tap, pr, None, None, 200, None,
               "public_read room: SSE without a token 200")
    expect(tap, rc.poll_as(pr, None, None, cursor=pr + ":0", timeout=1), 200,
           None, "public_read room: long-poll without a token 200")
    expect(tap, rc.publish_as(pr, None, None), 401, "unauthorized",
           "public_read room: publish without a token 401")
    tap.eq(rc.stored_count(pr), 1, "the refused publish stored nothing")

    pw = rc.make_room("appw", public_write=True)
    res = rc.publish_as(pw, None, None, id="anon")
    expect(tap, res, 201, None, "public_write room: anonymous publish 201")
    stored = rc.sql("SELECT from_user IS NULL FROM roomcast.messages "
                    "WHERE room = %s AND client_id = 'anon'" % rc.lit(pw))
    tap.eq(stored, "t", "public_write room: anonymous from is NULL")
    tok = rc.issue_token(user, [pw], [pw])
    hist = rc.history_as(pw, tok, after=0)
    msgs = hist.json.get("messages") if isinstance(hist.json, dict) else None
    tap.ok(isinstance(msgs, list) and len(msgs) == 1
           and "from" in msgs[0] and msgs[0]["from"] is None,
           "public_write room: the envelope says \"from\":null",
           "one message, from null", hist)
    expect(tap, rc.history_as(pw, None, None), 401, "unauthorized",
           "public_write room (not public_read): history without a token "
           "401")
    res = rc.publish_as(pw, tok, id="named")
    stored = rc.sql("SELECT from_user FROM roomcast.messages WHERE room = "
                    "%s AND client_id = 'named'" % rc.lit(pw))
    tap.ok(res.status == 201 and stored == user,
           "public_write room: a publish with a token is from its user",
           "201 from %s" % user, (res, stored))


def check_expired(tap, user):
    room = rc.room_name("apexp")
    tok = rc.issue_token(user, [room], [room], "2 seconds")
    first = rc.publish_as(room, tok)
    expect(tap, first, 201, None, "a fresh 2-second token: publish 201")
    time.sleep(2.5)
    every_endpoint(tap, room, tok, "bearer", 401, "unauthorized",
                   "expired token (used once before it expired)")
    tap.eq(rc.stored_count(room), 1, "requests with the expired token "
           "stored nothing")


def check_revoked(tap, user):
    room = rc.room_name("aprev")
    tok = rc.issue_token(user, [room], [room])
    expect(tap, rc.history_as(room, tok), 200, None,
           "before revocation: history 200")
    rc.revoke_token(tok)
    start = time.monotonic()
    res = rc.wait_until(lambda: rc.history_as(room, tok).status == 401
                        or None, 2.0, 0.1)
    tap.ok(res, "after revoke_token, history answers 401 within 2 s",
           "401", "still not 401 after %.1f s" % (time.monotonic() - start))
    every_endpoint(tap, room, tok, "bearer", 401, "unauthorized",
                   "revoked token")
    tap.eq(rc.stored_count(room), 0, "requests with the revoked token "
           "stored nothing")


def main(tap):
    rc.require_stack(tap)
    user = "tok_%s" % TAG
    room = rc.room_name("ap")
    tok = rc.issue_token(user, [room], [room])
    try:
        check_sources(tap, room, tok, user)
        check_from(tap, room, tok, user)
        check_no_token(tap, rc.room_name("apnone"))
        check_rights(tap, rc.room_name("aprights"), user)
        check_patterns(tap, user)
        check_public(tap, user)
        check_expired(tap, user)
        check_revoked(tap, user)
        ids = rc.sql("SELECT string_agg(client_id, ',' ORDER BY seq) FROM "
                     "roomcast.messages WHERE room = %s" % rc.lit(room))
        tap.eq(ids, "src-bearer,src-cookie,src-query,from-check",
               "the main room holds exactly the publishes that succeeded")
    finally:
        rc.sql("SELECT roomcast.revoke_user(%s)" % rc.lit(user))
    rc.check_logs_clean(tap)


if __name__ == "__main__":
    rc.run(main, limit_s=180)
