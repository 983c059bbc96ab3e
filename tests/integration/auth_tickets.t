#!/usr/bin/env python3
"""auth_tickets.t - single-use tickets from POST /rt/tickets.

What it is for: checking that an authenticated POST /rt/tickets answers
200 {"ticket":"rck_...","expires_in":60} and stores only the ticket's
hash; that ?ticket= works once (SSE, long-poll, history), with the rights
of the token it came from, and is 401 after that, after it expired,
after its token was revoked, and when unknown; that two requests racing
with one ticket get one stream; that a stream opened with a ticket ends
when its token is revoked; and that no log line holds a ticket or token.
What it is not for: tickets from JWTs (auth_jwt.t) and the SQL functions
alone (auth_sql.t).
Who uses it: `make test` (through prove), against the running stack.
"""

import os
import sys
import threading
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rc  # noqa: E402

TAG = "%d_%d" % (os.getpid(), int(time.time()))


def expect(tap, res, status, code, name):
    bad = rc.answer_problems(res, status, code)
    return tap.ok(not bad, name, "%s %s" % (status, code or ""),
                  "%s: %s" % ("; ".join(bad), res))


def new_ticket(tap, token, via="bearer", name=None):
    res, ticket = rc.ticket_for(token, via)
    if name:
        body = res.json if isinstance(res.json, dict) else {}
        tap.ok(res.status == 200 and ticket is not None
               and rc.re.match(r"^rck_[0-9a-f]{64}$", ticket) is not None
               and body.get("expires_in") == 60,
               name, '200 {"ticket":"rck_<64 hex>","expires_in":60}', res)
    return ticket


def check_issue(tap, user, room, tok):
    expect(tap, rc.auth_request("POST", "/tickets"), 401, "unauthorized",
           "POST /rt/tickets without a token: 401")
    k = new_ticket(tap, tok, "bearer", "POST /rt/tickets with a token: 200, "
                   "a ticket, expires_in 60")
    if k is None:
        return
    row = rc.sql("SELECT user_id, round(extract(epoch FROM expires_at - "
                 "now())), used_at IS NULL FROM roomcast.tickets WHERE "
                 "ticket_hash = decode(%s, 'hex')"
                 % rc.lit(rc.sha256_hex(k)))
    tap.ok(row.split("|")[0] == user and row.split("|")[2] == "t"
           and 55 <= int(row.split("|")[1]) <= 60,
           "the ticket is stored by its hash, unused, for about 60 s",
           "%s|55..60|t" % user, row)
    leaked = rc.sql("SELECT count(*) FROM roomcast.tickets k WHERE "
                    "strpos(k::text, %s) > 0" % rc.lit(k[4:]))
    tap.eq(leaked, "0", "no column of roomcast.tickets holds the ticket")
    k2 = new_ticket(tap, tok, "cookie", "POST /rt/tickets with the token "
                    "cookie: 200 and a ticket")
    tap.ok(k2 != k, "each POST gives a new ticket", "different", [k, k2])


def check_sse_once(tap, user, room, tok):
    k = new_ticket(tap, tok)
    status, body, sse = rc.sse_answer(room, k, "ticket")
    if not tap.eq(status, 200, "SSE with ?ticket=: 200"):
        return
    try:
        time.sleep(0.3)
        rc.publish_as(room, tok, id="via-ticket")
        # Presence events of the stream's own user come first; the
        # message is the stored event of the room.
        got = sse.collect(1, 5, lambda e: rc.ev_room(e) == room
                          and e.get("event") != "presence")
        env = got[0]["json"] if got else None
        tap.ok(isinstance(env, dict) and env.get("id") == "via-ticket"
               and env.get("from") == user,
               "the ticket's stream delivers, from the token's user",
               "id via-ticket from %s" % user, env)
    finally:
        sse.close()
    status, body, _ = rc.sse_answer(room, k, "ticket")
    expect(tap, (status, body), 401, "unauthorized",
           "SSE with the same ticket again: 401")


def check_poll_history_once(tap, room, tok):
    k = new_ticket(tap, tok)
    expect(tap, rc.poll_as(room, k, "ticket", timeout=1), 200, None,
           "long-poll with ?ticket=: 200")
    expect(tap, rc.poll_as(room, k, "ticket", timeout=1), 401,
           "unauthorized", "long-poll with the same ticket again: 401")
    k = new_ticket(tap, tok)
    expect(tap, rc.history_as(room, k, "ticket"), 200, None,
           "history with ?ticket=: 200")
    expect(tap, rc.history_as(room, k, "ticket"), 401, "unauthorized",
           "history with the same ticket again: 401")
    k = new_ticket(tap, tok)
    expect(tap, rc.poll_as(room, k, "ticket", timeout=1), 200, None,
           "a ticket used on long-poll first")
    status, body, _ = rc.sse_answer(room, k, "ticket")
    expect(tap, (status, body), 401, "unauthorized",
           "the same ticket then on SSE: 401")


def check_rights(tap, user, room):
    ro = rc.issue_token(user, [room], [])
    other = rc.room_name("tkother")
    k = new_ticket(tap, ro)
    status, body, _ = rc.sse_answer(other, k, "ticket")
    expect(tap, (status, body), 403, "forbidden",
           "a ticket of a token that may not read the room: SSE 403")
    k = new_ticket(tap, ro)
    status, body, sse = rc.sse_answer(room, k, "ticket")
    if sse is not None and status == 200:
        sse.close()
    expect(tap, (status, body), 200, None,
           "a ticket of a read-only token: SSE on its room 200")
    k = new_ticket(tap, ro)
    expect(tap, rc.publish_as(room, k, "ticket"), 403, "forbidden",
           "a ticket of a read-only token: publish 403")


def check_refused(tap, user, room, tok):
    k = new_ticket(tap, tok)
    rc.sql("UPDATE roomcast.tickets SET expires_at = now() - interval '1 s' "
           "WHERE ticket_hash = (SELECT ticket_hash FROM roomcast.tickets "
           "WHERE user_id = %s ORDER BY created_at DESC LIMIT 1)"
           % rc.lit(user))
    status, body, _ = rc.sse_answer(room, k, "ticket")
    expect(tap, (status, body), 401, "unauthorized",
           "an expired ticket: SSE 401")
    expect(tap, rc.poll_as(room, k, "ticket", timeout=1), 401,
           "unauthorized", "an expired ticket: long-poll 401")
    for what, text in (("an unknown ticket", "rck_" + "0" * 64),
                       ("a malformed ticket", "rck_xyz"),
                       ("a token passed as a ticket", tok)):
        rc.remember_secret(text)
        status, body, _ = rc.sse_answer(room, text, "ticket")
        expect(tap, (status, body), 401, "unauthorized", "%s: SSE 401" % what)
    short = rc.issue_token(user, [room], [room])
    k = new_ticket(tap, short)
    rc.revoke_token(short)
    time.sleep(0.3)
    status, body, _ = rc.sse_answer(room, k, "ticket")
    expect(tap, (status, body), 401, "unauthorized",
           "a ticket whose token was revoked after issue: SSE 401")


def check_race(tap, room, tok):
    """Two SSE requests with one ticket at once: one stream, one 401."""
    k = new_ticket(tap, tok)
    results = []
    lock = threading.Lock()

    def one():
        status, body, sse = rc.sse_answer(room, k, "ticket")
        with lock:
            results.append((status, sse))
    threads = [threading.Thread(target=one, daemon=True) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    statuses = sorted(s for s, _ in results)
    for status, sse in results:
        if status == 200:
            sse.close()
    tap.eq(statuses, [200, 401], "two racing requests with one ticket: one "
           "200, one 401")


def check_revoke_closes(tap, user, room):
    tok = rc.issue_token(user, [room], [room])
    k = new_ticket(tap, tok)
    status, body, sse = rc.sse_answer(room, k, "ticket")
    if not tap.eq(status, 200, "SSE with a fresh ticket: 200"):
        return
    try:
        time.sleep(0.3)
        rc.revoke_token(tok)
        start = time.monotonic()
        ended = sse.wait_eof(2.5)
        took = time.monotonic() - start
        tap.ok(ended and took <= 2.0, "revoking the token ends the stream "
               "opened with its ticket within 2 s", "<= 2 s",
               "%s after %.2f s" % ("ended" if ended else "open", took))
    finally:
        sse.close()


def main(tap):
    rc.require_stack(tap)
    user = "tkt_%s" % TAG
    room = rc.room_name("tk")
    tok = rc.issue_token(user, [room], [room])
    try:
        check_issue(tap, user, room, tok)
        check_sse_once(tap, user, room, tok)
        check_poll_history_once(tap, room, tok)
        check_rights(tap, user, room)
        check_refused(tap, user, room, tok)
        check_race(tap, room, tok)
        check_revoke_closes(tap, user, room)
    finally:
        rc.sql("SELECT roomcast.revoke_user(%s)" % rc.lit(user))
    rc.check_logs_clean(tap)


if __name__ == "__main__":
    rc.run(main, limit_s=120)
