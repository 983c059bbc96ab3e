#!/usr/bin/env python3
"""large.t - messages around and over the size limits.

A message of about 30 KB (too big for a NOTIFY payload, so readers fetch
it) and a run of messages whose envelopes sit around the 8000-byte NOTIFY
limit must arrive intact on SSE and long-poll. A message over
max_message_bytes (65536) is 413 too_large and is not stored. Not for:
the request body limit (errors.t). Run by `make test` against the stack.
"""

import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rc  # noqa: E402


def blob(size, salt):
    """Text of size characters with escapes that JSON must carry: quotes,
    backslashes, newlines, non-ASCII."""
    unit = "line %d \"q\" \\ tab\t é ✓\n" % salt
    return (unit * (size // len(unit) + 1))[:size]


def main(tap):
    rc.require_stack(tap)
    room = rc.public_room("large")
    sub = rc.SSE(room, cursor="%s:0" % room).open()
    tap.eq(sub.status, 200, "subscriber connected")

    sent = {}
    big = {"blob": blob(30000, 1)}
    res = rc.publish(room, type="text", id="big", data=big)
    tap.eq(res.status, 201, "a ~30 KB message is accepted (201)")
    if res.status == 201:
        sent[res.json["seq"]] = big

    # Envelope sizes step across the NOTIFY payload limit (7999 bytes).
    for size in range(7700, 8101, 50):
        data = {"blob": blob(size, size)}
        res = rc.publish(room, type="text", data=data)
        if res.status == 201:
            sent[res.json["seq"]] = data
        else:
            tap.ok(False, "message of %d chars accepted" % size, 201, res)
    tap.eq(len(sent), 10, "10 messages around the NOTIFY limit accepted")

    want = sorted(sent)
    events = sub.collect(len(want), 20) + sub.quiet(0.5)
    rc.check_sequence(tap, [rc.ev_seq(e) for e in events], want,
                      "SSE delivered every large message once, in order")
    bad = [rc.ev_seq(e) for e in events
           if not isinstance(e["json"], dict)
           or e["json"].get("data") != sent.get(rc.ev_seq(e))
           or "\n" in e["data"]]
    tap.ok(not bad, "SSE: every large envelope intact, on one data line",
           [], bad)
    sub.close()

    res = rc.poll(room, "%s:0" % room, timeout=5)
    msgs = (res.json or {}).get("messages") or []
    rc.check_sequence(tap, [m.get("seq") for m in msgs], want,
                      "long-poll returned every large message once")
    bad = [m.get("seq") for m in msgs
           if m.get("data") != sent.get(m.get("seq"))]
    tap.ok(not bad, "long-poll: every large message intact", [], bad)

    count = rc.stored_count(room)
    huge = {"blob": "y" * 70000}
    res = rc.publish(room, type="text", data=huge)
    bad = rc.error_problems(res, 413, "too_large")
    tap.ok(not bad, "a 70 KB message is 413 too_large", [], bad)
    tap.eq(rc.stored_count(room), count, "the oversized message is not stored")

    # Just over the limit by the envelope, well under the body limit.
    near = {"blob": "z" * 65500}
    res = rc.publish(room, type="text", data=near)
    bad = rc.error_problems(res, 413, "too_large")
    tap.ok(not bad, "an envelope just over 65536 bytes is 413", [], bad)
    tap.eq(rc.stored_count(room), count, "and is not stored either")


rc.run(main)
