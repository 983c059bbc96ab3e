#!/usr/bin/env python3
"""workers.t - every running worker keeps its row in roomcast.workers.

Finds the worker pids that serve requests (X-Roomcast-Worker, from several
requests held at once so the web server spreads them), then checks that
each has a row with kind, host, pid and a recent last_seen, that
last_seen moves on, and that held connections and delivered messages are
counted. Not for: the WebSocket daemon. Run by `make test`.
"""

import os
import sys
import threading
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rc  # noqa: E402


def serving_pids(room):
    """Pids seen on 6 long-polls held at once, and on a few quick requests."""
    pids = set()
    lock = threading.Lock()

    def one():
        try:
            res = rc.poll(room, timeout=1)
        except OSError:
            return
        with lock:
            pids.add(res.worker)
    threads = [threading.Thread(target=one, daemon=True) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    for _ in range(4):
        res = rc.health()
        if res is not None:
            pids.add(res.worker)
    pids.discard(None)
    return pids


def rows():
    out = rc.sql("SELECT pid, kind, host, "
                 "extract(epoch FROM now() - last_seen)::float8, "
                 "extract(epoch FROM last_seen)::float8, "
                 "coalesce(connections, 0), coalesce(delivered, 0) "
                 "FROM roomcast.workers")
    table = {}
    for line in out.splitlines():
        pid, kind, host, age, seen, conns, delivered = line.split("|")
        table[pid] = {"kind": kind, "host": host, "age": float(age),
                      "seen": float(seen), "connections": int(conns),
                      "delivered": int(delivered)}
    return table


def totals(pids):
    table = rows()
    return (sum(table[p]["connections"] for p in pids if p in table),
            sum(table[p]["delivered"] for p in pids if p in table))


def main(tap):
    rc.require_stack(tap)
    room = rc.public_room("wrk")
    pids = serving_pids(room)
    tap.ok(len(pids) >= 1 and all(p.isdigit() for p in pids),
           "requests name their worker pid", "pids", pids)
    table = rows()
    missing = sorted(p for p in pids if p not in table)
    tap.ok(not missing, "each serving pid has a row in roomcast.workers",
           [], missing)
    bad = []
    for p in sorted(pids & set(table)):
        r = table[p]
        if not r["kind"]:
            bad.append("%s: empty kind" % p)
        if not r["host"]:
            bad.append("%s: empty host" % p)
        if not 0 <= r["age"] <= 15:
            bad.append("%s: last_seen %.1f s ago" % (p, r["age"]))
    tap.ok(not bad, "rows have kind, host, and last_seen within 15 s", [], bad)
    kinds = {table[p]["kind"] for p in pids if p in table}
    tap.eq(len(kinds), 1, "all FastCGI workers share one kind")

    alive = [p for p in pids if os.path.exists("/proc/%s" % p)]
    tap.eq(sorted(alive), sorted(pids), "the pids are running processes")

    first = {p: table[p]["seen"] for p in pids if p in table}
    moved = rc.wait_until(
        lambda: all(rows().get(p, {}).get("seen", 0) > s
                    for p, s in first.items()), 20, 1.0)
    tap.ok(moved, "last_seen is refreshed within 20 s")

    # Three held streams and fifteen deliveries should show in the counts.
    deliv0 = totals(pids)[1]
    subs = [rc.SSE(room).open() for _ in range(3)]
    for s in subs:
        rc.wait_until(lambda: s.lines, 5)
    time.sleep(0.3)
    for i in range(5):
        rc.publish(room, type="text", data={"i": i})
    got = [len(s.collect(5, 10)) for s in subs]
    tap.eq(got, [5, 5, 5], "3 streams got 5 messages each")
    counted = rc.wait_until(
        lambda: (lambda c, d: c >= 3 and d >= deliv0 + 15)(*totals(pids)),
        20, 1.0)
    tap.ok(counted, "connections and delivered counts show within 20 s",
           "connections >= 3, delivered >= %d" % (deliv0 + 15),
           "connections %d, delivered %d" % totals(pids))
    for s in subs:
        s.close()


rc.run(main)
