#!/usr/bin/env python3
"""presence_http.t - presence and typing through the web server.

What it is for: checking, against the running stack, that an open SSE
stream of an authenticated user makes it present with no heartbeat; that
a third subscriber gets one join per user (two tabs: one join, and a leave
only when both are gone), as `event: presence` with no `id:` line, and a
leave within a second or two of a stream closing; that GET presence lists
the users; that a heartbeat with a new state sends an update; that typing
reaches the others but not the typing user's own stream and stores
nothing; that a held long-poll gets presence and typing events inside
messages; that anonymous readers of a public room are not listed; and the
statuses: 401 without a token, 403 without the right, 400 and 415 for a
bad body, 204 for DELETE and typing.
What it is not for: expiry after the timeout, killed workers and batched
refreshes (presence_heartbeat.t, presence_kill.t, presence_batch.t), or
the SQL alone (presence_sql.t).
Who uses it: `make test` (through prove). Rooms and users carry this
run's pid and time; its tokens and rows are deleted at the end.
"""

import json
import os
import sys
import threading
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rc  # noqa: E402

TAG = "%d_%d" % (os.getpid(), int(time.time()))
LEAVE_S = 2.5           # "within a second or two" of a stream closing
QUIET_S = 1.5           # how long to watch for an event that must not come
STREAMS = []


def user(name):
    return "ph_%s_%s" % (name, TAG)


def stream(room, token, **kwargs):
    """An authenticated SSE stream, open, remembered for the cleanup."""
    sse = rc.AuthSSE(room, token, **kwargs).open()
    STREAMS.append(sse)
    return sse


def ended_note(sse):
    """A sentence for a failure report when the stream has ended (then
    nothing more can arrive on it), else ''."""
    ends = [it for it in sse.others if it.get("kind") == "eof"]
    if not ends:
        return ""
    return " (the observing stream ended %.1f s ago, worker %s)" % (
        time.monotonic() - ends[0]["at"], sse.worker)


def presence_items(sse, count, timeout_s, event=None, who=None):
    return sse.collect(count, timeout_s,
                       lambda it: rc.is_presence(it, event, who))


def no_presence(sse, seconds, who):
    """The presence events of who that arrive in the next seconds."""
    return [it for it in sse.quiet(seconds) if rc.is_presence(it, None, who)]


def event_blocks(lines):
    """The raw SSE lines split into events (lists of lines)."""
    blocks, cur = [], []
    for line in lines:
        if line == "":
            if cur:
                blocks.append(cur)
            cur = []
        else:
            cur.append(line)
    return blocks


def envelope_bad(item, room, who, event, state):
    """What is wrong with a presence SSE item, as a list of strings."""
    bad = []
    env = item.get("json")
    want = {"type": "presence", "room": room, "from": who,
            "data": {"event": event, "state": state}}
    if env != want:
        bad.append("envelope %s, not %s" % (item.get("data"),
                                            json.dumps(want)))
    if item.get("event") != "presence":
        bad.append("event name %r" % item.get("event"))
    if item.get("id") is not None:
        bad.append("id line %r" % item.get("id"))
    return bad


def expect(tap, res, status, code, name):
    bad = rc.answer_problems(res, status, code)
    return tap.ok(not bad, name, "%s %s" % (status, code or ""),
                  "%s: %s" % ("; ".join(bad), res))


def check_refusals(tap, room, dave, erin):
    expect(tap, rc.presence_get(room), 401, "unauthorized",
           "GET presence of a private room without a token: 401")
    expect(tap, rc.presence_post(room), 401, "unauthorized",
           "POST presence without a token: 401")
    expect(tap, rc.presence_delete(room), 401, "unauthorized",
           "DELETE presence without a token: 401")
    expect(tap, rc.typing_post(room), 401, "unauthorized",
           "typing without a token: 401")
    expect(tap, rc.presence_get(room, dave), 403, "forbidden",
           "GET presence with a token without can_read: 403")
    expect(tap, rc.presence_post(room, dave), 403, "forbidden",
           "POST presence with a token without can_read: 403")
    expect(tap, rc.typing_post(room, erin), 403, "forbidden",
           "typing with a token without can_write: 403")
    expect(tap, rc.presence_post(room, erin, body="{not json"), 400,
           "bad_request", "POST presence with a body that is not JSON: 400")
    res = rc.auth_request("POST", "/rooms/%s/presence" % room, erin,
                          body=json.dumps({"state": {"a": 1}}),
                          headers={"Content-Type": "text/plain"})
    expect(tap, res, 415, "unsupported_media_type",
           "POST presence with a body that is not application/json: 415")
    tap.eq(rc.sql("SELECT count(*) FROM roomcast.presence WHERE room = %s"
                  % rc.lit(room)), "0", "the refused requests stored no row")


def check_join_and_list(tap, room, toks):
    carol = stream(room, toks["carol"])
    time.sleep(0.5)
    alice = stream(room, toks["alice"])
    bob = stream(room, toks["bob"])
    tap.ok(alice.status == 200 and bob.status == 200 and carol.status == 200,
           "three authenticated SSE streams open", "200 200 200",
           [carol.status, alice.status, bob.status])
    pair = (user("alice"), user("bob"))
    got = carol.collect(2, 5, lambda it: rc.is_presence(it, "join")
                        and it["json"].get("from") in pair)
    froms = sorted(it["json"].get("from") for it in got)
    tap.eq(froms, sorted([user("alice"), user("bob")]),
           "the third subscriber gets a join for each of the two users")
    for it in got:
        bad = envelope_bad(it, room, it["json"].get("from"), "join", None)
        tap.ok(not bad, "the join of %s: event presence, no id line, the "
               "contract's envelope" % it["json"].get("from"), "[]", bad)
    blocks = [b for b in event_blocks(carol.lines)
              if "event: presence" in b]
    with_id = [b for b in blocks if any(x.startswith("id:") for x in b)]
    tap.ok(blocks and not with_id, "raw SSE: presence events carry no "
           "id: line", "blocks without id:", blocks[:3])
    extra = no_presence(carol, QUIET_S, None)
    extra = [it for it in extra if it["json"].get("from") != user("carol")]
    tap.eq([it["data"] for it in extra], [],
           "no second join for either user")

    res = rc.presence_get(room, toks["carol"])
    body = res.json if isinstance(res.json, dict) else {}
    online = body.get("online") if isinstance(body.get("online"),
                                              list) else []
    users = [u.get("user") for u in online if isinstance(u, dict)]
    want = sorted([user("alice"), user("bob"), user("carol")])
    tap.ok(res.status == 200 and body.get("room") == room
           and users == want,
           "GET presence: 200, the room and the three users in order",
           "200 room %s %s" % (room, want), res)
    shapes = [u for u in online if not isinstance(u, dict)
              or set(u) != {"user", "state", "since", "last_seen"}
              or not isinstance(u.get("since"), (int, float))
              or not isinstance(u.get("last_seen"), (int, float))
              or u["since"] > u["last_seen"] + 0.001
              or abs(u["last_seen"] - time.time()) > 60]
    tap.ok(online and not shapes, "each entry is {user, state, since, "
           "last_seen} with epoch seconds near now", "[]", shapes)
    return carol, alice, bob


def check_two_tabs(tap, room, toks, carol, alice):
    a2 = stream(room, toks["alice"])
    tap.eq(a2.status, 200, "alice opens a second stream")
    got = no_presence(carol, QUIET_S, user("alice"))
    tap.eq([it["data"] for it in got], [],
           "the second stream of a present user: no join")
    alice.close()
    got = no_presence(carol, QUIET_S + 0.5, user("alice"))
    tap.eq([it["data"] for it in got], [],
           "one of alice's two streams closes: no leave")
    users = rc.online_users(rc.presence_get(room, toks["carol"]))
    tap.ok(users is not None and user("alice") in users,
           "alice is still listed", "alice listed", users)
    t0 = time.monotonic()
    a2.close()
    got = presence_items(carol, 1, LEAVE_S + 3, "leave", user("alice"))
    took = time.monotonic() - t0
    tap.diag("leave of alice after %.2f s" % took)
    tap.ok(len(got) == 1 and took <= LEAVE_S,
           "her last stream closes: a leave within %.1f s" % LEAVE_S,
           "leave within %.1f s" % LEAVE_S,
           "%d leave(s) after %.2f s%s" % (len(got), took,
                                            ended_note(carol)))
    if got:
        bad = envelope_bad(got[0], room, user("alice"), "leave", None)
        tap.ok(not bad, "the leave's envelope", "[]", bad)


def check_close(tap, room, toks, carol, bob):
    t0 = time.monotonic()
    bob.close()
    got = presence_items(carol, 1, LEAVE_S + 3, "leave", user("bob"))
    took = time.monotonic() - t0
    tap.diag("leave of bob after %.2f s" % took)
    tap.ok(len(got) == 1 and took <= LEAVE_S,
           "a user's only stream closes: the leave arrives within %.1f s"
           % LEAVE_S, "leave within %.1f s" % LEAVE_S,
           "%d leave(s) after %.2f s%s" % (len(got), took,
                                            ended_note(carol)))
    users = rc.online_users(rc.presence_get(room, toks["carol"]))
    tap.ok(users is not None and user("bob") not in users,
           "bob is no longer listed", "no bob", users)


def check_state(tap, room, toks, carol):
    bob = stream(room, toks["bob"])
    presence_items(carol, 1, 5, "join", user("bob"))
    away = {"status": "away", "note": "back at 3"}
    res = rc.presence_post(room, toks["bob"], state=away)
    body = res.json if isinstance(res.json, dict) else {}
    mine = [u for u in body.get("online") or []
            if isinstance(u, dict) and u.get("user") == user("bob")]
    tap.ok(res.status == 200 and body.get("room") == room
           and len(mine) == 1 and mine[0].get("state") == away,
           "POST presence with a state: 200 and the list shows it",
           "200 with bob's state %s" % json.dumps(away), res)
    got = presence_items(carol, 1, 3, None, user("bob"))
    tap.eq([(it["json"]["data"].get("event"), it["json"]["data"].get(
        "state")) for it in got], [("update", away)],
        "the others get an update with the new state")
    rc.presence_post(room, toks["bob"], state=away)
    got = no_presence(carol, QUIET_S, user("bob"))
    tap.eq([it["data"] for it in got], [],
           "the same state again: no event")
    busy = {"status": "busy"}
    rc.presence_post(room, toks["bob"], state=busy)
    got = presence_items(carol, 1, 3, None, user("bob"))
    tap.eq([(it["json"]["data"].get("event"), it["json"]["data"].get(
        "state")) for it in got], [("update", busy)],
        "another state: another update")
    res = rc.presence_post(room, toks["bob"])
    mine = [u for u in (res.json or {}).get("online") or []
            if isinstance(u, dict) and u.get("user") == user("bob")]
    tap.ok(res.status == 200 and mine and mine[0].get("state") == busy,
           "a heartbeat without a body keeps the state", busy, res)
    res = rc.presence_delete(room, toks["bob"])
    tap.eq(res.status, 204, "DELETE presence: 204")
    got = presence_items(carol, 1, 3, None, user("bob"))
    tap.eq([(it["json"]["data"].get("event"), it["json"]["data"].get(
        "state")) for it in got], [("update", None)],
        "DELETE while the stream stays: no leave, an update back to the "
        "stream's state (null)")
    bob.close()
    got = presence_items(carol, 1, LEAVE_S + 3, None, user("bob"))
    tap.eq([it["json"]["data"].get("event") for it in got], ["leave"],
           "the stream closes: the leave")


def check_typing(tap, room, toks, carol):
    alice = stream(room, toks["alice"])
    presence_items(carol, 1, 5, "join", user("alice"))
    before = rc.history_as(room, toks["carol"])
    last_seq = rc.sql("SELECT last_seq FROM roomcast.rooms WHERE name = %s"
                      % rc.lit(room))
    res = rc.typing_post(room, toks["alice"])
    tap.eq(res.status, 204, "POST typing: 204")
    got = carol.collect(1, 3, lambda it: it.get("event") == "typing")
    want = {"type": "typing", "room": room, "from": user("alice")}
    tap.ok(len(got) == 1 and got[0]["json"] == want
           and got[0]["id"] is None,
           "the others get event typing with no id line",
           json.dumps(want), [(it["data"], it["id"]) for it in got])
    own = [it for it in alice.quiet(QUIET_S) if it.get("event") == "typing"]
    tap.eq([it["data"] for it in own], [],
           "the typing user's own stream does not get it")
    after = rc.history_as(room, toks["carol"])
    tap.ok(before.status == 200 and after.status == 200
           and before.json == after.json
           and rc.sql("SELECT last_seq FROM roomcast.rooms WHERE name = %s"
                      % rc.lit(room)) == last_seq,
           "the room's history and last_seq are unchanged",
           before.json, after.json)
    alice.close()
    presence_items(carol, 1, LEAVE_S + 3, "leave", user("alice"))


class Poll:
    """A long-poll held in a thread."""

    def __init__(self, room, token, timeout):
        self.res = None
        self.thread = threading.Thread(target=self._run, daemon=True,
                                       args=(room, token, timeout))
        self.thread.start()

    def _run(self, room, token, timeout):
        try:
            self.res = rc.poll_as(room, token, timeout=timeout)
        except OSError as exc:
            self.res = exc

    def wait(self, timeout_s):
        self.thread.join(timeout_s)
        return self.res


def poll_events(res):
    if not isinstance(getattr(res, "json", None), dict):
        return None
    return [m for m in res.json.get("messages") or []
            if isinstance(m, dict) and "seq" not in m]


def check_longpoll(tap, room, toks):
    poll = Poll(room, toks["carol"], 8)
    time.sleep(1.0)
    rc.typing_post(room, toks["alice"])
    res = poll.wait(15)
    got = poll_events(res)
    want = {"type": "typing", "room": room, "from": user("alice")}
    tap.ok(got is not None and want in got,
           "a held long-poll gets the typing event inside messages",
           json.dumps(want), res)
    poll = Poll(room, toks["carol"], 8)
    time.sleep(1.0)
    frank = stream(room, toks["frank"])
    res = poll.wait(15)
    got = poll_events(res) or []
    joins = [m for m in got if m.get("type") == "presence"
             and m.get("from") == user("frank")]
    tap.ok(len(joins) == 1 and joins[0].get("data") == {"event": "join",
                                                        "state": None},
           "a held long-poll gets a join inside messages",
           "one join of frank", res)
    frank.close()


def check_public(tap, toks):
    room = rc.make_room("php", public_read=True)
    anon = stream(room, None)
    tap.eq(anon.status, 200, "an anonymous SSE reader of a public room")
    alice = stream(room, toks["alice"])
    got = presence_items(anon, 1, 5, "join", user("alice"))
    tap.eq(len(got), 1, "the anonymous reader gets the join of a user")
    res = rc.presence_get(room)
    tap.ok(res.status == 200 and rc.online_users(res) == [user("alice")],
           "anonymous GET presence of a public room: 200, only the user "
           "with a token is listed", "200 [%s]" % user("alice"), res)
    expect(tap, rc.presence_post(room), 401, "unauthorized",
           "anonymous POST presence to a public room: 401")
    alice.close()
    anon.close()
    return room


def cleanup(rooms, users):
    for sse in STREAMS:
        sse.close()
    rc.sql("DELETE FROM roomcast.presence WHERE room IN (%s)"
           % ", ".join(rc.lit(r) for r in rooms))
    rc.sql("DELETE FROM roomcast.tokens WHERE user_id IN (%s)"
           % ", ".join(rc.lit(u) for u in users))
    rc.sql("DELETE FROM roomcast.rooms WHERE name IN (%s)"
           % ", ".join(rc.lit(r) for r in rooms))


def main(tap):
    rc.require_presence_api(tap)
    room = rc.make_room("ph")
    names = ["alice", "bob", "carol", "frank"]
    toks = {n: rc.issue_token(user(n), [room, "t_php_*"], [room])
            for n in names}
    toks["dave"] = rc.issue_token(user("dave"), ["elsewhere"], [room])
    toks["erin"] = rc.issue_token(user("erin"), [room], [])
    rooms = [room]
    try:
        check_refusals(tap, room, toks["dave"], toks["erin"])
        carol, alice, bob = check_join_and_list(tap, room, toks)
        check_two_tabs(tap, room, toks, carol, alice)
        check_close(tap, room, toks, carol, bob)
        check_state(tap, room, toks, carol)
        check_typing(tap, room, toks, carol)
        if ended_note(carol):
            tap.diag("the checks above relied on a stream that had ended"
                     + ended_note(carol))
        check_longpoll(tap, room, toks)
        rooms.append(check_public(tap, toks))
        rc.check_logs_clean(tap)
    finally:
        cleanup(rooms, [user(n) for n in names + ["dave", "erin"]])


if __name__ == "__main__":
    rc.run(main, limit_s=150)
