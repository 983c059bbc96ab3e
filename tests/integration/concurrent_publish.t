#!/usr/bin/env python3
"""concurrent_publish.t - many publishers on one room keep seqs gap-free.

Eight threads POST 25 messages each to one room at once while one SSE
subscriber listens. The stored seqs must be exactly 1..200, every ack a
distinct seq, and the subscriber must see 1..200 in order. Not for: SQL
publishing or resume (other .t files). Run by `make test`.
"""

import os
import sys
import threading

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rc  # noqa: E402

THREADS = 8
EACH = 25
TOTAL = THREADS * EACH


def publisher(room, t, acks, errors):
    for i in range(EACH):
        try:
            res = rc.publish(room, type="text", id="t%d-%d" % (t, i),
                             data={"t": t, "i": i})
        except OSError as exc:
            errors.append("thread %d msg %d: %s" % (t, i, exc))
            continue
        if res.status != 201 or not isinstance(res.json, dict):
            errors.append("thread %d msg %d: %r" % (t, i, res))
            continue
        acks.append(res.json)


def main(tap):
    rc.require_stack(tap)
    room = rc.public_room("conc")
    sub = rc.SSE(room, cursor="%s:0" % room).open()
    tap.eq(sub.status, 200, "subscriber connected")
    rc.wait_until(lambda: sub.lines, 5)

    acks, errors = [], []
    threads = [threading.Thread(target=publisher,
                                args=(room, t, acks, errors), daemon=True)
               for t in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)

    tap.ok(not errors, "all %d publishes answered 201" % TOTAL, [], errors[:5])
    seqs = [a.get("seq") for a in acks]
    tap.eq(len(set(seqs)), len(seqs), "acks carry distinct seqs")
    tap.eq(sorted(seqs), list(range(1, TOTAL + 1)), "acks cover 1..%d" % TOTAL)
    bad = [a for a in acks if a.get("type") != "ack" or a.get("room") != room
           or not str(a.get("id", "")).startswith("t")]
    tap.ok(not bad, "acks are type ack with room and id", [], bad[:3])

    tap.eq(rc.stored_seqs(room), list(range(1, TOTAL + 1)),
           "stored seqs (SQL) are exactly 1..%d" % TOTAL)

    events = sub.collect(TOTAL, 30) + sub.quiet(1.0)
    rc.check_sequence(tap, [rc.ev_seq(e) for e in events],
                      list(range(1, TOTAL + 1)),
                      "subscriber saw 1..%d in order, once each" % TOTAL)
    by_seq = {a.get("seq"): a.get("id") for a in acks}
    wrong = [(rc.ev_seq(e), e["json"].get("id"), by_seq.get(rc.ev_seq(e)))
             for e in events if isinstance(e["json"], dict)
             and e["json"].get("id") != by_seq.get(rc.ev_seq(e))]
    tap.ok(not wrong, "each event carries the id its ack named", [], wrong[:5])
    sub.close()


rc.run(main)
