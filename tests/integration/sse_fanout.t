#!/usr/bin/env python3
"""sse_fanout.t - one room, many listeners, messages from HTTP and SQL.

Six SSE subscribers (three from a cursor, three from now) and four
long-poll loops listen to one room, spread over the workers. Thirty
messages are published over HTTP and thirty with SQL, interleaved. Every
listener must get all sixty, in seq order, exactly once, with the event
framing and envelope the contract describes. Not for: resume, errors,
large messages (other .t files). Run by `make test` against the stack.
"""

import os
import sys
import threading
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rc  # noqa: E402

SSE_COUNT = 6
POLLERS = 4
PER_SOURCE = 30
TOTAL = 2 * PER_SOURCE


class Poller(threading.Thread):
    """Long-polls the room from seq 0 until it holds TOTAL messages."""

    def __init__(self, room, deadline):
        super().__init__(daemon=True)
        self.room = room
        self.deadline = deadline
        self.cursor = "%s:0" % room
        self.messages = []
        self.workers = set()
        self.errors = []
        self.started_evt = threading.Event()

    def run(self):
        while len(self.messages) < TOTAL and time.monotonic() < self.deadline:
            try:
                res = rc.poll(self.room, self.cursor, timeout=5)
            except OSError as exc:
                self.errors.append("poll: %s" % exc)
                time.sleep(0.5)
                continue
            self.workers.add(res.worker)
            if res.status != 200 or not isinstance(res.json, dict):
                self.errors.append("poll answered %r" % res)
                time.sleep(0.5)
                continue
            self.messages.extend(res.json.get("messages") or [])
            self.cursor = res.json.get("cursor", self.cursor)


def publish_all(tap, room):
    """Interleaves HTTP and SQL publishes; returns {seq: (type, id, data)}."""
    expected = {}
    bad_acks = []
    for i in range(PER_SOURCE):
        data = {"n": i, "via": "http", "text": "hello %d" % i}
        res = rc.publish(room, type="text", id="h%d" % i, data=data)
        ack = res.json if isinstance(res.json, dict) else {}
        if res.status != 201 or not isinstance(ack.get("seq"), int):
            bad_acks.append(repr(res))
        else:
            expected[ack["seq"]] = ("text", "h%d" % i, data)
        data = {"n": i, "via": "sql"}
        expected[rc.sql_publish(room, "sqlnote", data)] = \
            ("sqlnote", "absent", data)
    tap.ok(not bad_acks, "all %d HTTP publishes answered 201 with a seq"
           % PER_SOURCE, [], bad_acks[:3])
    tap.eq(sorted(expected), list(range(1, TOTAL + 1)),
           "publishes got seqs 1..%d" % TOTAL)
    return expected


def check_headers(tap, subs):
    bad = []
    for i, sub in enumerate(subs):
        h = sub.headers
        if sub.status != 200:
            bad.append("sub %d status %s" % (i, sub.status))
        if not h.get("content-type", "").startswith("text/event-stream"):
            bad.append("sub %d content-type %r" % (i, h.get("content-type")))
        if h.get("cache-control") != "no-cache, no-transform":
            bad.append("sub %d cache-control %r" % (i, h.get("cache-control")))
        if h.get("x-accel-buffering") != "no":
            bad.append("sub %d x-accel-buffering %r"
                       % (i, h.get("x-accel-buffering")))
        if not (h.get("x-roomcast-worker") or "").isdigit():
            bad.append("sub %d x-roomcast-worker %r"
                       % (i, h.get("x-roomcast-worker")))
    tap.ok(not bad, "SSE: 200, text/event-stream, no-cache, no-transform, "
           "X-Accel-Buffering no, X-Roomcast-Worker", [], bad)


def check_retry_first(tap, subs):
    bad = []
    for i, sub in enumerate(subs):
        got = rc.wait_until(lambda: sub.lines, 5)
        first = got[0] if got else None
        if first is None or first.replace(" ", "") != "retry:2000":
            bad.append("sub %d first line %r" % (i, first))
    tap.ok(not bad, "every stream begins with 'retry: 2000'", [], bad)


def check_events(tap, i, room, events, expected):
    rc.check_sequence(tap, [rc.ev_seq(e) for e in events],
                      list(range(1, TOTAL + 1)),
                      "SSE subscriber %d got seqs 1..%d in order, once each"
                      % (i, TOTAL))
    bad = []
    for ev in events:
        seq = rc.ev_seq(ev)
        if seq not in expected:
            continue
        type_, id_, data = expected[seq]
        if ev["id"] != "%s:%d" % (room, seq):
            bad.append("seq %s: id %r" % (seq, ev["id"]))
        if ev["event"] != type_:
            bad.append("seq %s: event %r" % (seq, ev["event"]))
        if "\n" in ev["data"]:
            bad.append("seq %s: data spans lines" % seq)
        for p in rc.envelope_problems(ev["json"], room, seq, type_, data,
                                      id_):
            bad.append("seq %s: %s" % (seq, p))
    tap.ok(not bad, "SSE subscriber %d: id room:seq, event type, "
           "data the envelope" % i, [], bad[:5])


def check_poller(tap, i, room, poller, expected):
    msgs = poller.messages
    rc.check_sequence(tap, [m.get("seq") for m in msgs],
                      list(range(1, TOTAL + 1)),
                      "long-poll loop %d got seqs 1..%d in order, once each"
                      % (i, TOTAL))
    bad = list(poller.errors)
    for m in msgs:
        seq = m.get("seq")
        if seq in expected:
            type_, id_, data = expected[seq]
            bad += ["seq %s: %s" % (seq, p) for p in
                    rc.envelope_problems(m, room, seq, type_, data, id_)]
    tap.ok(not bad, "long-poll loop %d: envelopes as published" % i,
           [], bad[:5])
    tap.eq(poller.cursor, "%s:%d" % (room, TOTAL),
           "long-poll loop %d ends with cursor room:%d" % (i, TOTAL))


def main(tap):
    rc.require_stack(tap)
    room = rc.public_room("fan")

    # Half start from a cursor (nothing can be missed), half from now.
    subs = []
    for i in range(SSE_COUNT):
        cursor = "%s:0" % room if i % 2 == 0 else None
        subs.append(rc.SSE(room, cursor=cursor).open())
    check_headers(tap, subs)
    check_retry_first(tap, subs)

    deadline = time.monotonic() + 60
    pollers = [Poller(room, deadline) for _ in range(POLLERS)]
    for p in pollers:
        p.start()
    time.sleep(1.0)    # let the from-now streams and the polls settle

    expected = publish_all(tap, room)

    for i, sub in enumerate(subs):
        left = max(deadline - time.monotonic(), 1)
        events = sub.collect(TOTAL, min(left, 30),
                             pred=lambda e: e["event"] != "system")
        events += sub.quiet(1.0 if i == len(subs) - 1 else 0.1)
        check_events(tap, i, room, events, expected)

    for p in pollers:
        p.join(max(deadline - time.monotonic(), 1))
    for i, p in enumerate(pollers):
        check_poller(tap, i, room, p, expected)

    pids = {s.worker for s in subs}
    for p in pollers:
        pids |= p.workers
    pids.discard(None)
    tap.ok(len(pids) >= 2, "at least 2 worker pids served the listeners",
           ">= 2 pids", sorted(pids))

    tap.eq(rc.stored_seqs(room), list(range(1, TOTAL + 1)),
           "stored seqs are 1..%d" % TOTAL)
    for sub in subs:
        sub.close()


rc.run(main)
