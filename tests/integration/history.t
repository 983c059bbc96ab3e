#!/usr/bin/env python3
"""history.t - GET /rt/rooms/{room}/messages pages through a room.

Checks after, before and limit, the default limit of 100, the cap of
1000 (limit=5000 is clamped), first_seq and last_seq, oldest-first
order, and that a room never used gives 200 with an empty list. The
messages are published with SQL in one statement, so the test is quick.
Not for: live delivery (sse_fanout.t, longpoll.t). Run by `make test`.
"""

import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rc  # noqa: E402

COUNT = 1100


def seqs(res):
    msgs = (res.json or {}).get("messages") if isinstance(res.json, dict) \
        else None
    return [m.get("seq") for m in msgs] if isinstance(msgs, list) else None


def main(tap):
    rc.require_stack(tap)
    room = rc.public_room("hist")
    rc.sql("SELECT count(*) FROM generate_series(1, %d) AS i, "
           "LATERAL roomcast.publish(%s, 'text', jsonb_build_object('i', i))"
           % (COUNT, rc.lit(room)))
    tap.eq(rc.stored_seqs(room), list(range(1, COUNT + 1)),
           "%d messages stored with SQL" % COUNT)

    res = rc.history(room, after=0)
    tap.eq(res.status, 200, "history answers 200")
    body = res.json if isinstance(res.json, dict) else {}
    tap.eq(body.get("room"), room, "the body names the room")
    tap.eq(seqs(res), list(range(1, 101)), "after=0: default limit 100, "
           "oldest first")
    for key in ("first_seq", "last_seq"):
        tap.ok(isinstance(body.get(key), int), "%s is present" % key,
               "an integer", body.get(key))
    got = seqs(res) or [0]
    tap.ok(isinstance(body.get("first_seq"), int)
           and body["first_seq"] <= got[0]
           and isinstance(body.get("last_seq"), int)
           and body["last_seq"] >= got[-1],
           "first_seq <= the first message, last_seq >= the last",
           "first_seq <= %d, last_seq >= %d" % (got[0], got[-1]),
           (body.get("first_seq"), body.get("last_seq")))
    m = (body.get("messages") or [{}])[0]
    bad = rc.envelope_problems(m, room, 1, "text", {"i": 1})
    tap.ok(not bad, "messages are envelopes", [], bad)
    tap.ok(res.worker and res.worker.isdigit(), "X-Roomcast-Worker is set",
           "a pid", res.worker)

    res = rc.history(room)
    got = seqs(res)
    tap.ok(res.status == 200 and got is not None and len(got) == 100
           and got == sorted(got) and got[-1] - got[0] == 99,
           "no after/before: 100 consecutive messages, oldest first",
           "100 ascending", got and (len(got), got[:3], got[-3:]))

    tap.eq(seqs(rc.history(room, after=10, limit=5)), [11, 12, 13, 14, 15],
           "after=10&limit=5")
    tap.eq(seqs(rc.history(room, before=20, limit=5)), [15, 16, 17, 18, 19],
           "before=20&limit=5 gives the 5 just before, oldest first")
    tap.eq(seqs(rc.history(room, after=1095)), [1096, 1097, 1098, 1099, 1100],
           "after near the end gives the rest")
    tap.eq(seqs(rc.history(room, after=COUNT)), [],
           "after the last seq: an empty list")
    tap.eq(seqs(rc.history(room, after=0, limit=1000)),
           list(range(1, 1001)), "limit=1000 gives 1000")

    res = rc.history(room, after=0, limit=5000)
    tap.eq((res.status, len(seqs(res) or [])), (200, 1000),
           "limit=5000 is clamped to 1000")

    empty = rc.public_room("never")
    res = rc.history(empty)
    tap.eq(res.status, 200, "a room never used: 200")
    tap.eq(seqs(res), [], "a room never used: an empty list")
    tap.eq((res.json or {}).get("room") if isinstance(res.json, dict)
           else None, empty, "a room never used: the body names it")

    for params in ({"after": "abc"}, {"limit": "x"}, {"before": "-3"}):
        res = rc.history(room, **params)
        bad = rc.error_problems(res, 400, "bad_request")
        tap.ok(not bad, "history with %s is 400" % params, [], bad)


rc.run(main)
