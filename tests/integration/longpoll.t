#!/usr/bin/env python3
"""longpoll.t - GET /rt/poll answers at once, holds, or times out.

Messages already after the cursor come back at once; otherwise the request
is held until one arrives or timeout passes; no cursor means from now; a
cursor can name two rooms; poll_max_messages caps a response and
poll_max_seconds the wait, poll_default_seconds is the default wait (set
with SQL and restored); Cache-Control is no-store. Not for: SSE or
database loss (other .t files). Run by `make test` against the stack.
"""

import os
import sys
import threading
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rc  # noqa: E402


def seqs(res):
    body = res.json if isinstance(res.json, dict) else {}
    return [m.get("seq") for m in body.get("messages") or []]


def cursor(res):
    body = res.json if isinstance(res.json, dict) else {}
    return rc.parse_cursor(body.get("cursor"))


def publish_later(room, delay_s, out):
    def later():
        time.sleep(delay_s)
        out["at"] = time.monotonic()
        out["res"] = rc.publish(room, type="text", data={"late": True})
    t = threading.Thread(target=later, daemon=True)
    t.start()
    return t


def already_there(tap, room):
    for i in range(3):
        rc.publish(room, type="text", data={"i": i})
    t0 = time.monotonic()
    res = rc.poll(room, "%s:0" % room, timeout=20)
    took = time.monotonic() - t0
    tap.eq(res.status, 200, "poll with messages waiting: 200")
    tap.eq(seqs(res), [1, 2, 3], "it returns them")
    tap.ok(took < 2, "at once", "< 2 s", "%.2f s" % took)
    tap.eq(cursor(res), {room: 3}, "with the new cursor room:3")
    tap.eq(res.header("cache-control"), "no-store", "Cache-Control: no-store")
    tap.ok((res.worker or "").isdigit(), "X-Roomcast-Worker is set", "a pid",
           res.worker)
    ctype = res.header("content-type") or ""
    tap.ok(ctype.startswith("application/json"), "body is JSON",
           "application/json", ctype)
    body = res.json if isinstance(res.json, dict) else {}
    bad = rc.envelope_problems((body.get("messages") or [None])[0], room, 1,
                               "text", {"i": 0})
    tap.ok(not bad, "messages are envelopes", [], bad)


def held(tap, room):
    out = {}
    t = publish_later(room, 1.0, out)
    t0 = time.monotonic()
    res = rc.poll(room, "%s:3" % room, timeout=15)
    end = time.monotonic()
    t.join(5)
    tap.eq((res.status, seqs(res)), (200, [4]),
           "held poll returns the message published 1 s later")
    took = end - out.get("at", t0)
    tap.ok(end - t0 >= 0.8, "it was held until then", ">= 0.8 s",
           "%.2f s" % (end - t0))
    tap.ok(took < 1.5, "and answered within ~1 s of the publish",
           "< 1.5 s after", "%.2f s after" % took)
    tap.eq(cursor(res), {room: 4}, "cursor room:4")


def timeout(tap, room):
    t0 = time.monotonic()
    res = rc.poll(room, "%s:4" % room, timeout=2)
    took = time.monotonic() - t0
    tap.eq((res.status, seqs(res)), (200, []),
           "timeout=2 with nothing new: 200 and an empty list")
    tap.ok(1.5 <= took <= 4, "after about 2 s", "1.5..4 s", "%.2f s" % took)
    tap.eq(cursor(res), {room: 4}, "the cursor is unchanged")


def from_now(tap, room):
    res = rc.poll(room, timeout=2)
    tap.eq((res.status, seqs(res)), (200, []),
           "no cursor: old messages are not returned")
    tap.eq(cursor(res), {room: 4}, "no cursor: the cursor says where now is")
    out = {}
    t = publish_later(room, 1.0, out)
    res = rc.poll(room, timeout=10)
    t.join(5)
    tap.eq(seqs(res), [5], "no cursor: a message published while held comes")


def two_rooms(tap, room, other):
    cur = "%s:5,%s:0" % (room, other)
    out = {}
    t = publish_later(other, 1.0, out)
    res = rc.poll([room, other], cur, timeout=10)
    t.join(5)
    tap.eq([(m.get("room"), m.get("seq")) for m in
            (res.json or {}).get("messages") or []], [(other, 1)],
           "two rooms: the message of the second room comes")
    tap.eq(cursor(res), {room: 5, other: 1}, "two rooms: cursor names both")
    rc.publish(room, type="text", data={"x": 1})
    res = rc.poll([room, other], "%s:5,%s:1" % (room, other), timeout=5)
    tap.eq([(m.get("room"), m.get("seq")) for m in
            (res.json or {}).get("messages") or []], [(room, 6)],
           "two rooms: and the first room's next one")


def capped(room):
    """True when several polls in a row (any worker) return 5 of 12."""
    for _ in range(4):
        if len(seqs(rc.poll(room, "%s:0" % room, timeout=1))) != 5:
            return False
    return True


def max_messages(tap):
    room = rc.public_room("pollcap")
    for i in range(12):
        rc.sql_publish(room, "text", {"i": i})
    old = rc.setting("poll_max_messages")
    tap.at_timeout(lambda: rc.set_setting("poll_max_messages", old))
    try:
        rc.set_setting("poll_max_messages", "5")
        took = rc.wait_until(lambda: capped(room), 10, 0.5)
        tap.ok(took, "poll_max_messages=5 takes effect within 10 s",
               "5 per poll", seqs(rc.poll(room, "%s:0" % room, timeout=1)))
        cur, sizes, got = "%s:0" % room, [], []
        for _ in range(3):
            res = rc.poll(room, cur, timeout=2)
            sizes.append(len(seqs(res)))
            got += seqs(res)
            body = res.json if isinstance(res.json, dict) else {}
            cur = body.get("cursor", cur)
        tap.eq(sizes, [5, 5, 2], "three polls get 5, 5, 2")
        tap.eq(got, list(range(1, 13)), "and together all 12 in order")
    finally:
        rc.set_setting("poll_max_messages", old)
    back = rc.wait_until(
        lambda: all(len(seqs(rc.poll(room, "%s:0" % room, timeout=1))) == 12
                    for _ in range(4)), 15, 0.5)
    tap.ok(back, "poll_max_messages restored to %s" % old, 12, "5")


def timed_poll(room, **kw):
    """Seconds an empty poll was held, and its status."""
    t0 = time.monotonic()
    res = rc.poll(room, "%s:0" % room, http_timeout_s=40, **kw)
    return time.monotonic() - t0, res.status


def wait_limits(room, expect_short):
    """Waits until four polls at once with timeout=4 (so every worker gets
    one) are cut to about 2 s, or, after the restore, held their 4 s."""
    def check():
        took = []
        threads = [threading.Thread(
            target=lambda: took.append(timed_poll(room, timeout=4)[0]),
            daemon=True) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(20)
        return len(took) == 4 and all((t < 3.2) == expect_short
                                      for t in took)
    return rc.wait_until(check, 20, 0.2)


def time_limits(tap):
    """poll_max_seconds caps timeout; poll_default_seconds is the default."""
    room = rc.public_room("polltime")
    keys = ("poll_max_seconds", "poll_default_seconds")
    old = {k: rc.setting(k) for k in keys}

    def restore():
        for key, value in old.items():
            rc.set_setting(key, value)
    tap.at_timeout(restore)
    try:
        rc.set_setting("poll_max_seconds", "2")
        rc.set_setting("poll_default_seconds", "1")
        tap.ok(wait_limits(room, True), "poll_max_seconds=2 takes effect")
        time.sleep(1.0)
        took, status = timed_poll(room, timeout=30)
        tap.ok(status == 200 and 1.5 <= took <= 3.5,
               "timeout=30 is cut to poll_max_seconds (2 s)",
               "200 after 1.5..3.5 s", "%s after %.1f s" % (status, took))
        took, status = timed_poll(room)
        tap.ok(status == 200 and 0.5 <= took <= 2.5,
               "no timeout: poll_default_seconds (1 s)",
               "200 after 0.5..2.5 s", "%s after %.1f s" % (status, took))
    finally:
        restore()
    tap.ok(wait_limits(room, False), "poll time settings restored (%s)" % old)


def main(tap):
    rc.require_stack(tap)
    room, other = rc.public_room("poll"), rc.public_room("poll2")
    already_there(tap, room)
    held(tap, room)
    timeout(tap, room)
    from_now(tap, room)
    two_rooms(tap, room, other)
    max_messages(tap)
    time_limits(tap)


rc.run(main)
