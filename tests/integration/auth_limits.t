#!/usr/bin/env python3
"""auth_limits.t - request limits: sizes, rooms per stream, streams per
user, publish rate.

What it is for: hitting each limit once and checking the status and error
code, that nothing was stored, and that the worker that refused keeps
serving: a body over max_body_bytes (413 too_large), an envelope over
max_message_bytes (413 too_large), more rooms than max_rooms_per_stream
on SSE and long-poll (400 bad_request), more SSE streams of one user than
max_streams_per_user in one process (429 rate_limited), and publishes
beyond publish_rate_per_second and publish_burst (429 rate_limited with
Retry-After).
What it is not for: the limits of the core tests (sse_limits.t, large.t).
Who uses it: `make test` (through prove), against the running stack. It
lowers settings for a few seconds each and restores them in finally
blocks; while the publish rate is low, anonymous publishes from this
machine share one bucket, so run it alone (prove runs files one by one).
"""

import os
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rc  # noqa: E402

TAG = "%d_%d" % (os.getpid(), int(time.time()))
RELOAD_S = 12


def expect(tap, res, status, code, name):
    bad = rc.answer_problems(res, status, code)
    return tap.ok(not bad, name, "%s %s" % (status, code or ""),
                  "%s: %s" % ("; ".join(bad), res))


def raw_post(path, body, token):
    head = ("POST %s HTTP/1.1\r\nHost: %s:%d\r\n"
            "Content-Type: application/json\r\nContent-Length: %d\r\n"
            "Authorization: Bearer %s\r\nConnection: close\r\n\r\n"
            % (rc.PREFIX + path, rc.HOST, rc.PORT, len(body), token))
    return rc.raw_request(head.encode("ascii") + body, timeout_s=30)


def serves_again(tap, pid, token, room, what):
    """A small publish is answered 201 by the same worker pid (tries a
    few requests, since the web server picks the worker)."""
    seen = []
    for i in range(10):
        res = rc.publish_as(room, token, id="after-%s-%d" % (what, i))
        seen.append((res.status, res.worker))
        if res.worker == pid and res.status == 201:
            break
    ok = any(w == pid and s == 201 for s, w in seen)
    tap.ok(ok, "after %s the worker %s still serves: publish 201" %
           (what, pid), "201 from %s" % pid, seen)
    return sum(1 for s, _ in seen if s == 201)


def check_sizes(tap, user):
    room = rc.room_name("lim")
    tok = rc.issue_token(user, [room], [room])
    max_body = int(rc.setting("max_body_bytes"))
    max_msg = int(rc.setting("max_message_bytes"))
    big = b'{"type":"text","data":"' + b"a" * (max_body + 100) + b'"}'
    res = raw_post("/rooms/%s/messages" % room, big, tok)
    expect(tap, res, 413, "too_large",
           "a body of %d bytes (max_body_bytes %d): 413 too_large"
           % (len(big), max_body))
    tap.eq(rc.stored_count(room), 0, "the oversized body stored nothing")
    stored = 0
    if res is not None and res.worker:
        stored += serves_again(tap, res.worker, tok, room, "the 413 body")
    data = "b" * max_msg
    body = ('{"type":"text","data":"%s"}' % data).encode("ascii")
    before = rc.stored_count(room)
    res = raw_post("/rooms/%s/messages" % room, body, tok)
    expect(tap, res, 413, "too_large",
           "an envelope over max_message_bytes (%d) in a body of %d bytes: "
           "413 too_large" % (max_msg, len(body)))
    tap.eq(rc.stored_count(room), before,
           "the oversized envelope stored nothing")
    if res is not None and res.worker:
        serves_again(tap, res.worker, tok, room, "the 413 envelope")


def wait_loaded(probe, want, what):
    """Calls probe() (a status) until it answered `want` 6 times in a row,
    so that both worker processes have read the settings. Returns True
    on success, False after RELOAD_S."""
    deadline = time.monotonic() + RELOAD_S
    streak = 0
    while time.monotonic() < deadline:
        streak = streak + 1 if probe() == want else 0
        if streak >= 6:
            return True
        time.sleep(0.2)
    return False


def sse_status(rooms, token):
    status, body, sse = rc.sse_answer(rooms, token)
    if status == 200:
        sse.close()
    return status


def check_rooms_and_streams(tap, user):
    prefix = "t_lim_%s_" % TAG
    rooms = [prefix + c for c in "abcd"]
    tok = rc.issue_token(user, [prefix + "*"], [prefix + "*"])
    # The probes open streams while the old limits hold. A closed stream
    # counts for its user until the worker notices the client is gone
    # (its next heartbeat), so the probes use a user of their own.
    probe = rc.issue_token(user + "_q", [prefix + "*"], [prefix + "*"])
    old_rooms = int(rc.setting("max_rooms_per_stream"))
    restore = rc.settings_restorer(tap, ["max_rooms_per_stream",
                                         "max_streams_per_user"])
    streams = []
    try:
        rc.set_setting("max_rooms_per_stream", "3")
        rc.set_setting("max_streams_per_user", "2")
        loaded = wait_loaded(lambda: sse_status(rooms, probe), 400,
                             "rooms")
        if not tap.ok(loaded, "max_rooms_per_stream 3 is in force on every "
                      "worker within %d s" % RELOAD_S, "400 for 4 rooms",
                      sse_status(rooms, probe)):
            return
        status, body, _ = rc.sse_answer(rooms, tok)
        expect(tap, (status, body), 400, "bad_request",
               "SSE with 4 rooms, max_rooms_per_stream 3: 400 bad_request")
        res = rc.poll_as(rooms, tok, timeout=1)
        expect(tap, res, 400, "bad_request",
               "long-poll with 4 rooms: 400 bad_request")
        expect(tap, rc.poll_as(rooms[:3], tok, timeout=1), 200, None,
               "long-poll with 3 rooms right after: 200")

        stok = rc.issue_token(user + "_s", [prefix + "*"], [prefix + "*"])
        answers = []
        for _ in range(6):
            status, body, sse = rc.sse_answer(rooms[0], stok)
            answers.append((status, sse.worker if sse else None,
                            (body or {}).get("code")))
            if status == 200:
                streams.append(sse)
        per_pid = {}
        for status, pid, _ in answers:
            if status == 200:
                per_pid[pid] = per_pid.get(pid, 0) + 1
        refused = [a for a in answers if a[0] == 429]
        tap.ok(refused and all(a[2] == "rate_limited" for a in refused),
               "6 SSE streams of one user, max_streams_per_user 2: at least "
               "one 429 rate_limited", ">= one 429 rate_limited", answers)
        tap.ok(per_pid and max(per_pid.values()) <= 2,
               "at most 2 of the user's streams accepted per worker pid",
               "<= 2 per pid", per_pid)
        tap.ok(len(refused) + sum(per_pid.values()) == 6,
               "every other answer was 200 or 429", "200 or 429", answers)
        other = rc.issue_token(user + "_o", [prefix + "*"], [prefix + "*"])
        tap.eq(sse_status(rooms[0], other), 200,
               "right after, another user's stream opens: 200")
        res = rc.publish_as(rooms[0], stok)
        tap.eq(res.status, 201, "right after, the limited user may still "
               "publish: 201")
    finally:
        for s in streams:
            s.close()
        restore()
    if old_rooms >= 4:
        back = wait_loaded(lambda: sse_status(rooms, probe), 200,
                           "rooms")
        tap.ok(back, "with the settings restored, 4 rooms are allowed again "
               "on every worker", 200, sse_status(rooms, probe))


def check_rate(tap, user):
    room = rc.room_name("limrate")
    probe = rc.issue_token(user + "_p", [room], [room])
    tok = rc.issue_token(user + "_r", [room], [room])
    restore = rc.settings_restorer(tap, ["publish_rate_per_second",
                                         "publish_burst"])
    try:
        rc.set_setting("publish_rate_per_second", "1")
        rc.set_setting("publish_burst", "2")
        loaded = wait_rate_loaded(room, probe)
        tap.ok(loaded, "publish_rate_per_second 1 is in force on every "
               "worker within %d s" % RELOAD_S, "429s", None)
        before = rc.stored_count(room)
        answers = []
        for i in range(5):
            res = rc.publish_as(room, tok, id="rate-%d" % i)
            answers.append(res)
        refused = [r for r in answers if r.status == 429]
        accepted = ["rate-%d" % i for i, r in enumerate(answers)
                    if r.status == 201]
        tap.ok(refused and all(not rc.answer_problems(r, 429,
                                                      "rate_limited")
                               for r in refused),
               "5 quick publishes, rate 1/s and burst 2: at least one 429 "
               "rate_limited", ">= one 429", [(r.status, r.worker)
                                              for r in answers])
        retry = [r.header("retry-after") for r in refused]
        tap.ok(refused and all(v is not None and v.isdigit() and int(v) >= 1
                               for v in retry),
               "each 429 carries Retry-After in whole seconds", ">= 1",
               retry)
        ids = rc.sql("SELECT coalesce(string_agg(client_id, ',' ORDER BY "
                     "seq), '') FROM roomcast.messages WHERE room = %s AND "
                     "client_id LIKE 'rate-%%'" % rc.lit(room))
        tap.eq(ids, ",".join(accepted), "only the accepted publishes were "
               "stored, the 429s stored nothing")
        tap.eq(rc.stored_count(room) - before, len(accepted),
               "the room grew by the accepted publishes only")
        if refused:
            res = rc.history_as(room, tok)
            tap.eq(res.status, 200, "right after a 429, the same user may "
                   "still read: 200")
            wait = int(retry[0]) if retry[0] and retry[0].isdigit() else 1
            time.sleep(min(wait, 3) + 0.2)
            pid = refused[0].worker
            seen = []
            for i in range(8):
                res = rc.publish_as(room, tok, id="rate-after-%d" % i)
                seen.append((res.status, res.worker))
                if res.worker == pid:
                    break
                time.sleep(1.1)
            tap.ok((201, pid) in seen, "after Retry-After the worker that "
                   "refused accepts a publish: 201", "201 from %s" % pid,
                   seen)
    finally:
        restore()
    fresh = rc.issue_token(user + "_f", [room], [room])
    back = wait_loaded(lambda: rc.publish_as(room, fresh).status, 201,
                       "rate")
    tap.ok(back, "with the rate restored, a user may publish 6 times in a "
           "row again", "6 x 201", None)


def wait_rate_loaded(room, probe):
    """Publishes as probe until every worker pid seen has refused one
    (the probe's bucket empties on a worker once it has read the low
    rate). True on success, False after RELOAD_S."""
    deadline = time.monotonic() + RELOAD_S
    seen, refused = set(), set()
    count = 0
    while time.monotonic() < deadline:
        res = rc.publish_as(room, probe)
        count += 1
        seen.add(res.worker)
        if res.status == 429:
            refused.add(res.worker)
        if count >= 6 and refused and refused >= seen:
            return True
        time.sleep(0.1)
    return False


def main(tap):
    rc.require_stack(tap)
    user = "lim_%s" % TAG
    try:
        check_sizes(tap, user)
        check_rooms_and_streams(tap, user)
        check_rate(tap, user)
    finally:
        for who in (user, user + "_s", user + "_o", user + "_p",
                    user + "_r", user + "_f", user + "_q"):
            rc.sql("SELECT roomcast.revoke_user(%s)" % rc.lit(who))
    rc.check_logs_clean(tap)


if __name__ == "__main__":
    rc.run(main, limit_s=150)
