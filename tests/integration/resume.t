#!/usr/bin/env python3
"""resume.t - an SSE stream picks up where the last one stopped.

Covers the resume points of the contract: Last-Event-ID, ?cursor=, the
rule that Last-Event-ID wins, backlog=N, and the 'reset' system event for
a Last-Event-ID that cannot be parsed or is ahead of the room; a bad
?cursor= is 400. Every resume must give exactly the missed messages, in
seq order per room. Not for: fan-out or database loss (other .t files).
Run by `make test` against the stack.
"""

import os
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rc  # noqa: E402


def pub(room, n, tag):
    """Publishes n messages over HTTP; returns their seqs."""
    seqs = []
    for i in range(n):
        res = rc.publish(room, type="text", data={"tag": tag, "i": i})
        if res.status != 201:
            raise RuntimeError("publish to %s: %r" % (room, res))
        seqs.append(res.json["seq"])
    return seqs


def per_room(events, room):
    return [rc.ev_seq(e) for e in events if rc.ev_room(e) == room]


def stored(e):
    return e["event"] != "system"


def wait_ready(sub):
    """Waits for the first line of a stream (the subscription is set up
    before the server writes it), then a little more."""
    rc.wait_until(lambda: sub.lines, 5)
    time.sleep(0.3)


def check_ids(tap, events, what):
    """Each stored event's id is a cursor naming its own room at its seq."""
    bad = []
    for e in events:
        cur = rc.parse_cursor(e["id"])
        if cur is None or cur.get(rc.ev_room(e)) != rc.ev_seq(e):
            bad.append("id %r for %s:%s" % (e["id"], rc.ev_room(e),
                                           rc.ev_seq(e)))
    tap.ok(not bad, what, [], bad[:5])


def first_round(tap, a, b):
    """Live messages on a two-room stream; returns the last id seen."""
    sub = rc.SSE([a, b]).open()
    tap.eq(sub.status, 200, "SSE on two rooms answers 200")
    wait_ready(sub)
    sa, sb = [], []
    for _ in range(3):
        sa += pub(a, 1, "r1")
        sb += pub(b, 1, "r1")
    events = sub.collect(6, 15, pred=stored)
    rc.check_sequence(tap, per_room(events, a), sa, "live: room a 1..3")
    rc.check_sequence(tap, per_room(events, b), sb, "live: room b 1..3")
    check_ids(tap, events, "live: ids are cursors naming the event's seq")
    last = events[-1]["id"] if events else None
    tap.eq(rc.parse_cursor(last), {a: 3, b: 3},
           "the last id is the whole cursor a:3,b:3")
    sub.close()
    return last


def resume_with(tap, a, b, how, last_id, missed_a, missed_b):
    """Reconnects with last_id (as header or ?cursor=), expects exactly the
    missed messages, then one live message per room, nothing else."""
    if how == "Last-Event-ID":
        sub = rc.SSE([a, b], last_event_id=last_id).open()
    else:
        sub = rc.SSE([a, b], cursor=last_id).open()
    tap.eq(sub.status, 200, "%s resume answers 200" % how)
    want = len(missed_a) + len(missed_b)
    events = sub.collect(want, 15, pred=stored)
    events += sub.quiet(1.0)
    rc.check_sequence(tap, per_room(events, a), missed_a,
                      "%s: exactly the missed messages of room a" % how)
    rc.check_sequence(tap, per_room(events, b), missed_b,
                      "%s: exactly the missed messages of room b" % how)
    live_a, live_b = pub(a, 1, "live"), pub(b, 1, "live")
    events = sub.collect(2, 10, pred=stored) + sub.quiet(0.5)
    tap.eq(sorted((rc.ev_room(e), rc.ev_seq(e)) for e in events),
           sorted([(a, live_a[0]), (b, live_b[0])]),
           "%s: then live messages go on" % how)
    last = events[-1]["id"] if events else None
    sub.close()
    return last


def lei_wins(tap, a, b):
    sub = rc.SSE([a, b], cursor="%s:1,%s:1" % (a, b),
                 last_event_id="%s:5,%s:5" % (a, b)).open()
    events = sub.collect(100, 3, pred=stored)
    la, lb = per_room(events, a), per_room(events, b)
    top_a, top_b = rc.stored_seqs(a)[-1], rc.stored_seqs(b)[-1]
    rc.check_sequence(tap, la, list(range(6, top_a + 1)),
                      "Last-Event-ID wins over ?cursor= (room a from 6)")
    rc.check_sequence(tap, lb, list(range(6, top_b + 1)),
                      "Last-Event-ID wins over ?cursor= (room b from 6)")
    sub.close()


def backlog(tap, a, b):
    top_a, top_b = rc.stored_seqs(a)[-1], rc.stored_seqs(b)[-1]
    sub = rc.SSE([a, b], backlog=3).open()
    events = sub.collect(6, 10, pred=stored) + sub.quiet(1.0)
    rc.check_sequence(tap, per_room(events, a),
                      list(range(top_a - 2, top_a + 1)),
                      "backlog=3 gives the last 3 of room a")
    rc.check_sequence(tap, per_room(events, b),
                      list(range(top_b - 2, top_b + 1)),
                      "backlog=3 gives the last 3 of room b")
    sub.close()


def reset_case(tap, room, last_id, what):
    """A Last-Event-ID the server cannot use: a reset event, then from now."""
    top = rc.stored_seqs(room)[-1]
    sub = rc.SSE(room, last_event_id=last_id).open()
    tap.eq(sub.status, 200, "%s: 200" % what)
    first = sub.collect(1, 10)
    tap.ok(first and rc.is_reset(first[0]),
           "%s: a system event with data.event 'reset' comes first" % what,
           "event: system, data {...'data':{'event':'reset',...}}",
           first[0] if first else None)
    if first and isinstance(first[0]["json"], dict):
        inner = first[0]["json"].get("data")
        room_named = isinstance(inner, dict) and inner.get("room") == room
        tap.ok(room_named, "%s: the reset event names the room" % what,
               room, inner)
    early = [e for e in sub.quiet(1.0) if stored(e)]
    tap.eq([rc.ev_seq(e) for e in early], [],
           "%s: no old messages after the reset" % what)
    seq = pub(room, 1, "after-reset")[0]
    live = sub.collect(1, 10, pred=stored)
    tap.eq([rc.ev_seq(e) for e in live], [top + 1],
           "%s: the stream goes on from now" % what)
    tap.eq(seq, top + 1, "%s: publish after reset got the next seq" % what)
    sub.close()


def bad_cursor(tap, room):
    for cursor in ("%s:abc" % room, "garbage", "%s:-1" % room):
        sub = rc.SSE(room, cursor=cursor).open()
        sub.wait_eof(5)
        res = rc.Resp(sub.status, sub.headers, sub.body)
        bad = rc.error_problems(res, 400, "bad_request")
        tap.ok(not bad, "?cursor=%s on SSE is 400 bad_request" % cursor,
               [], bad)
        sub.close()


def main(tap):
    rc.require_stack(tap)
    a, b = rc.public_room("resA"), rc.public_room("resB")

    last = first_round(tap, a, b)

    missed_a, missed_b = pub(a, 4, "r2"), pub(b, 4, "r2")
    tap.eq((missed_a, missed_b), (list(range(4, 8)), list(range(4, 8))),
           "published 4 more to each room while away")
    last = resume_with(tap, a, b, "Last-Event-ID", last, missed_a, missed_b)
    tap.eq(rc.parse_cursor(last), {a: 8, b: 8}, "cursor now a:8,b:8")

    missed_a, missed_b = pub(a, 3, "r3"), pub(b, 2, "r3")
    resume_with(tap, a, b, "?cursor=", last, missed_a, missed_b)

    lei_wins(tap, a, b)
    backlog(tap, a, b)
    reset_case(tap, a, "this is not a cursor", "garbage Last-Event-ID")
    reset_case(tap, b, "%s:99999" % b, "Last-Event-ID ahead of the room")
    bad_cursor(tap, a)


rc.run(main)
