#!/usr/bin/env python3
"""idempotent.t - publishing the same id twice stores it once.

The second POST with an id already stored in the room answers 200 with
the first ack's seq and "duplicate": true; history and the table hold the
message once. The same id in another room is a new message. Not for:
id syntax errors (errors.t). Run by `make test` against the stack.
"""

import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rc  # noqa: E402


def main(tap):
    rc.require_stack(tap)
    room = rc.public_room("idem")
    other = rc.public_room("idem2")
    mid = "msg_%d" % os.getpid()

    first = rc.publish(room, type="text", id=mid, data={"n": 1})
    tap.eq(first.status, 201, "first publish: 201")
    ack = first.json if isinstance(first.json, dict) else {}
    tap.eq((ack.get("type"), ack.get("id"), ack.get("room"), ack.get("seq")),
           ("ack", mid, room, 1), "first ack: type ack, id, room, seq 1")
    tap.ok(isinstance(ack.get("ts"), (int, float)), "first ack has ts",
           "a number", ack.get("ts"))
    tap.ok(not ack.get("duplicate"), "first ack is not a duplicate",
           "no duplicate:true", ack)

    again = rc.publish(room, type="text", id=mid, data={"n": 1})
    tap.eq(again.status, 200, "same id again: 200")
    dup = again.json if isinstance(again.json, dict) else {}
    tap.eq((dup.get("type"), dup.get("id"), dup.get("room"), dup.get("seq"),
            dup.get("duplicate")), ("ack", mid, room, 1, True),
           "second ack: same seq, duplicate true")

    # A retry whose body changed is still the same message.
    third = rc.publish(room, type="text", id=mid, data={"n": 2})
    tap.eq((third.status, (third.json or {}).get("seq")), (200, 1),
           "same id with other data: 200, seq 1")

    hist = rc.history(room, after=0)
    msgs = (hist.json or {}).get("messages") or []
    tap.eq([(m.get("seq"), m.get("id"), m.get("data")) for m in msgs],
           [(1, mid, {"n": 1})], "history holds it once, as first sent")
    tap.eq(rc.stored_count(room), 1, "the table holds one row")

    nxt = rc.publish(room, type="text", id=mid + "b", data={"n": 3})
    tap.eq((nxt.status, (nxt.json or {}).get("seq")), (201, 2),
           "a new id gets the next seq (no seq was used up)")

    elsewhere = rc.publish(other, type="text", id=mid, data={"n": 1})
    tap.eq(elsewhere.status, 201, "the same id in another room is new: 201")


rc.run(main)
