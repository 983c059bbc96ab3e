#!/usr/bin/env python3
"""gap.t - a cursor older than retention gets a 'gap' system event.

A room keeps 5 messages (max_messages in roomcast.rooms); after 10 are
published and the room is trimmed, seqs 6..10 remain. A reader whose
cursor says it has seq 2 must hear, on SSE (?cursor= and Last-Event-ID)
and on long-poll, a system event {"event":"gap","room":..,"from":3,
"to":5} and then 6..10, and the stream goes on. History starts at the
oldest kept message. Not for: how retention decides what to trim (the
SQL tests). Run by `make test` against the stack.
"""

import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rc  # noqa: E402

KEPT = list(range(6, 11))


def is_gap(env, room, first, last):
    data = env.get("data") if isinstance(env, dict) else None
    return (isinstance(env, dict) and env.get("type") == "system"
            and env.get("room") == room and "seq" not in env
            and isinstance(data, dict) and data.get("event") == "gap"
            and data.get("room") == room and data.get("from") == first
            and data.get("to") == last)


def sse_case(tap, room, how, **kw):
    sub = rc.SSE(room, **kw).open()
    tap.eq(sub.status, 200, "%s: 200" % how)
    events = sub.collect(1 + len(KEPT), 10) + sub.quiet(0.5)
    first = events[0] if events else {}
    tap.ok(first.get("event") == "system"
           and is_gap(first.get("json"), room, 3, 5),
           "%s: first a system event gap from 3 to 5" % how,
           '{"type":"system","room":R,"data":{"event":"gap","room":R,'
           '"from":3,"to":5}}', first.get("data"))
    # An id on the gap event is allowed, but resuming from it must not
    # skip a kept message.
    cur = rc.parse_cursor(first.get("id")) or {}
    tap.ok(first.get("id") is None or cur.get(room, 99) <= 5,
           "%s: the gap event has no id, or one that skips nothing" % how,
           "no id, or %s:N with N <= 5" % room, first.get("id"))
    rc.check_sequence(tap, [rc.ev_seq(e) for e in events[1:]], KEPT,
                      "%s: then the kept messages 6..10" % how)
    return sub


def main(tap):
    rc.require_stack(tap)
    room = rc.room_name("gap")
    rc.sql("INSERT INTO roomcast.rooms (name, public_read, public_write, "
           "max_messages) VALUES (%s, true, true, 5)" % rc.lit(room))
    rc.sql("SELECT count(*) FROM generate_series(1, 10) AS i, "
           "LATERAL roomcast.publish(%s, 'text', jsonb_build_object('i', i))"
           % rc.lit(room))
    rc.sql("SELECT roomcast.trim_room(%s)" % rc.lit(room))
    tap.eq(rc.stored_seqs(room), KEPT, "the room keeps 6..10")

    res = rc.history(room, after=0)
    body = res.json if isinstance(res.json, dict) else {}
    tap.eq([m.get("seq") for m in body.get("messages") or []], KEPT,
           "history after=0 starts at the oldest kept message")
    tap.eq((body.get("first_seq"), body.get("last_seq")), (6, 10),
           "history: first_seq 6, last_seq 10")

    sse_case(tap, room, "?cursor=room:2", cursor="%s:2" % room).close()
    sub = sse_case(tap, room, "Last-Event-ID room:2",
                   last_event_id="%s:2" % room)
    seq = rc.publish(room, type="text", data={"i": 11}).json["seq"]
    live = sub.collect(1, 10)
    tap.eq([rc.ev_seq(e) for e in live], [seq],
           "after the gap the stream goes on live")
    sub.close()

    sub = rc.SSE(room, cursor="%s:5" % room).open()
    events = sub.collect(6, 10) + sub.quiet(0.5)
    tap.eq([(e["event"], rc.ev_seq(e)) for e in events],
           [("text", s) for s in range(6, 12)],
           "a cursor at the oldest kept seq minus one: no gap event")
    sub.close()

    res = rc.poll(room, "%s:2" % room, timeout=2)
    msgs = (res.json or {}).get("messages") or [] \
        if isinstance(res.json, dict) else []
    tap.eq(res.status, 200, "long-poll from room:2: 200")
    tap.ok(msgs and is_gap(msgs[0], room, 3, 5),
           "long-poll: the gap event first, inside messages",
           "gap from 3 to 5", msgs[0] if msgs else None)
    tap.eq([m.get("seq") for m in msgs[1:]], list(range(6, 12)),
           "long-poll: then 6..11")
    tap.eq((res.json or {}).get("cursor") if isinstance(res.json, dict)
           else None, "%s:11" % room, "long-poll: cursor room:11")


rc.run(main)
