#!/usr/bin/env python3
"""sse_limits.t - SSE heartbeats and the end of a stream after its time.

With sse_heartbeat_seconds set to 1 and sse_max_seconds to 5 (with SQL,
restored afterwards), an idle stream gets a ':' comment every second or
so, and a stream ends after about 5 s, always just after a complete
event. A client that reconnects with Last-Event-ID each time, while
messages keep coming, gets every one exactly once and in order. Not for:
resume edge cases (resume.t). Run by `make test` against the stack.
"""

import os
import sys
import threading
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rc  # noqa: E402

SETTINGS = {"sse_heartbeat_seconds": "1", "sse_max_seconds": "5"}


def heartbeats_within(room, seconds):
    """Four streams at once (so both workers are asked); True when each
    gets a ':' comment within seconds."""
    subs = [rc.SSE(room).open() for _ in range(4)]
    try:
        deadline = time.monotonic() + seconds
        for sub in subs:
            seen = False
            while not seen and time.monotonic() < deadline:
                item = sub.next_item(deadline - time.monotonic())
                seen = item is not None and item["kind"] == "comment"
            if not seen:
                return False
        return True
    finally:
        for sub in subs:
            sub.close()


def heartbeat(tap, room):
    sub = rc.SSE(room).open()
    t0 = time.monotonic()
    times = []
    while time.monotonic() - t0 < 4.5:
        item = sub.next_item(4.5 - (time.monotonic() - t0))
        if item and item["kind"] == "comment":
            times.append(time.monotonic())
        if item and item["kind"] == "eof":
            break
    sub.close()
    gaps = [b - a for a, b in zip([t0] + times, times)]
    # The worker checks its streams once a second, so a beat may come up
    # to a second late.
    tap.ok(len(times) >= 2 and max(gaps) <= 2.5,
           "an idle stream gets a ':' comment about every second",
           ">= 2 comments, gaps <= 2.5 s",
           "%d comments, gaps %s" % (len(times),
                                     ["%.1f" % g for g in gaps]))


def ends_on_time(tap, room):
    sub = rc.SSE(room).open()
    ended = sub.wait_eof(10)
    eof = [i for i in sub.others if i["kind"] == "eof"]
    took = eof[0]["at"] - sub.opened[0] if eof else None
    tap.ok(ended and 4 <= took <= 8,
           "a stream ends after sse_max_seconds (5 s)", "4..8 s",
           "%.1f s" % took if took is not None else "still open after 10 s")
    tap.ok(eof and eof[0]["clean"] and eof[0]["terminated"] is not False,
           "it ends just after a complete event, with a complete body",
           "clean end", eof[0] if eof else None)


def publisher(room, stop, seqs):
    i = 0
    while not stop.is_set() and i < 400:
        res = rc.publish(room, type="text", data={"i": i})
        if res.status == 201:
            seqs.append(res.json["seq"])
        i += 1
        time.sleep(0.05)


def reconnects(tap, room):
    sub = rc.SSE(room, cursor="%s:0" % room, reconnect=True).open()
    rc.wait_until(lambda: sub.lines, 5)
    stop, seqs = threading.Event(), []
    pub = threading.Thread(target=publisher, args=(room, stop, seqs),
                           daemon=True)
    pub.start()
    time.sleep(12)
    stop.set()
    pub.join(10)
    events = sub.collect(len(seqs), 15) + sub.quiet(1.0)
    sub.close()
    rc.check_sequence(tap, [rc.ev_seq(e) for e in events], sorted(seqs),
                      "through %d reconnects, every message once, in order"
                      % (sub.conns - 1))
    tap.ok(sub.conns >= 2, "the stream was ended and resumed",
           ">= 2 connections", sub.conns)
    ends = [i for i in sub.others if i["kind"] == "eof"]
    unclean = [i for i in ends if not i["clean"]]
    tap.ok(ends and not unclean, "every stream ended between events",
           [], unclean)


def main(tap):
    rc.require_stack(tap)
    room = rc.public_room("limits")
    old = {k: rc.setting(k) for k in SETTINGS}

    def restore():
        for key, value in old.items():
            rc.set_setting(key, value)
    tap.at_timeout(restore)
    try:
        for key, value in SETTINGS.items():
            rc.set_setting(key, value)
        took = rc.wait_until(lambda: heartbeats_within(room, 2.0), 15, 0.5)
        tap.ok(took, "the new settings are read within 15 s")
        # A worker may have read only one of the two rows on its last
        # refresh; the next refresh is at most a few seconds away.
        time.sleep(1.0)
        heartbeat(tap, room)
        ends_on_time(tap, room)
        reconnects(tap, rc.public_room("limits2"))
    finally:
        restore()
    back = rc.wait_until(lambda: not heartbeats_within(room, 2.0), 15, 0.5)
    tap.ok(back, "settings restored (%s)" % old)


rc.run(main)
