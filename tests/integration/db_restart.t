#!/usr/bin/env python3
"""db_restart.t - PostgreSQL stops and comes back under open streams.

Three SSE subscribers listen while ten messages are published; then the
database is stopped. While it is down, publish must be 503 unavailable
(and nothing acked), a new SSE request 200 with a retry: line and a quick
end, a long-poll 503 unavailable, and /rt/health 503. After the database
returns, ten more are published; every subscriber (reconnecting with
Last-Event-ID as a browser would, if its stream ended) must get all twenty
acked messages exactly once, in order. PostgreSQL is always started again.
Not for: anything that needs a steady database. Run by `make test`.
"""

import os
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rc  # noqa: E402


def stored(e):
    return e["event"] != "system"


def publish_n(room, n, tag, acked, deadline_s=0):
    """Publishes n messages; retries a 503 until deadline_s has passed.
    Appends acked seqs to acked; returns the statuses seen."""
    statuses = []
    for i in range(n):
        until = time.monotonic() + deadline_s
        while True:
            try:
                res = rc.publish(room, type="text", id="%s%d" % (tag, i),
                                 data={"tag": tag, "i": i}, timeout_s=10)
                status = res.status
            except OSError:
                res, status = None, "no answer"
            statuses.append(status)
            if status in (200, 201):
                acked.append(res.json["seq"])
                break
            if time.monotonic() >= until:
                break
            time.sleep(0.5)
    return statuses


def while_down(tap, room, acked):
    statuses = []
    problems = []
    for i in range(3):
        try:
            res = rc.publish(room, type="text", id="down%d" % i,
                             data={"down": i}, timeout_s=20)
        except OSError as exc:
            problems.append("publish %d: %s" % (i, exc))
            continue
        statuses.append(res.status)
        if res.status in (200, 201):
            acked.append(res.json["seq"])
        problems += rc.error_problems(res, 503, "unavailable")
    tap.ok(not problems, "publish while down: 503 unavailable", [],
           problems[:4])
    tap.ok(not any(s in (200, 201) for s in statuses),
           "no publish was acked while down", "no 200/201", statuses)

    t0 = time.monotonic()
    sub = rc.SSE(room, cursor="%s:0" % room, timeout_s=20).open()
    ended = sub.wait_eof(10)
    took = time.monotonic() - t0
    tap.eq(sub.status, 200, "SSE while down: 200 (a retry can cure it)")
    tap.ok(any(line.replace(" ", "").startswith("retry:")
               for line in sub.lines),
           "SSE while down: a retry: line", "retry: ...", sub.lines[:5])
    tap.ok(ended and took < 10, "SSE while down: the stream ends within "
           "a few seconds", "< 10 s", "ended=%s after %.1f s" % (ended, took))
    sub.close()

    try:
        res = rc.poll(room, "%s:0" % room, timeout=2, http_timeout_s=30)
        bad = rc.error_problems(res, 503, "unavailable")
    except OSError as exc:
        bad = ["poll: %s" % exc]
    tap.ok(not bad, "long-poll while down: 503 unavailable", [], bad)

    res = rc.health(timeout_s=20)
    tap.eq(res.status if res else None, 503, "/rt/health while down: 503")


def main(tap):
    rc.require_stack(tap)
    if not os.access(rc.STACK, os.X_OK):
        tap.ok(False, "the stack script %s is there" % rc.STACK)
        return
    room = rc.public_room("dbre")
    subs = [rc.SSE(room, cursor="%s:0" % room, reconnect=True).open()
            for _ in range(3)]
    tap.eq([s.status for s in subs], [200, 200, 200], "3 subscribers on")

    acked = []
    statuses = publish_n(room, 10, "a", acked)
    tap.eq(statuses, [201] * 10, "10 published before the stop")
    # What arrived before the stop; checked with the rest below.
    early = [s.collect(10, 10, pred=stored) for s in subs]

    stopped = False
    tap.at_timeout(lambda: rc.stack("pg-start"))
    try:
        proc = rc.stack("pg-stop")
        stopped = proc.returncode == 0
        tap.ok(stopped, "pg-stop succeeded", 0,
               "%s %s" % (proc.returncode, proc.stderr.strip()[-300:]))
        if stopped:
            while_down(tap, room, acked)
    finally:
        proc = rc.stack("pg-start")
        tap.ok(proc.returncode == 0, "pg-start succeeded", 0,
               "%s %s" % (proc.returncode, proc.stderr.strip()[-300:]))

    up = rc.wait_until(lambda: (rc.health() or rc.Resp(0, {}, b"")).status
                       == 200, 30, 0.5)
    tap.ok(up, "/rt/health is 200 again within 30 s")
    statuses = publish_n(room, 10, "b", acked, deadline_s=20)
    tap.eq(len(acked), 20, "20 messages acked in all",)
    if len(acked) != 20:
        tap.diag("statuses after restart: %s" % statuses)
    tap.eq(sorted(acked), acked, "acked seqs increase")
    tap.eq(rc.stored_seqs(room), sorted(acked), "stored seqs are the acked")

    for i, s in enumerate(subs):
        # Everything the subscriber got on every connection.
        events = early[i] + s.collect(20 - len(early[i]), 25, pred=stored)
        events += s.quiet(0.5)
        events = [e for e in events if e["event"] != "system"]
        rc.check_sequence(tap, [rc.ev_seq(e) for e in events], sorted(acked),
                          "subscriber %d got all 20 once, in order "
                          "(%d connections)" % (i, s.conns))
    for s in subs:
        s.close()


rc.run(main)
