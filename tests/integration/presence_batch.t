#!/usr/bin/env python3
"""presence_batch.t - presence refreshes are batched per process.

What it is for: showing, with N authenticated SSE streams open in one room
(N from PRESENCE_STREAMS, default 200, spread by the web server over the
workers), that the workers refresh presence with one statement per
process and round, not one per stream:
- every sample of the table shows one last_seen value per process for
  all of that process's rows (one UPDATE sets them all to its now());
- over 15 s, each process writes at most 15 / interval + 1 such values;
- over the same 15 s, roomcast.presence_touch() is called at most
  (15 / interval + 1) times per worker process, counted by
  pg_stat_statements when it is loaded, else by pg_stat_user_functions
  (the test sets track_functions = 'all' on the database for that; worker
  sessions opened before then do not count, and the check says so).
The interval is the workers' refresh period: PRESENCE_TOUCH_INTERVAL_S
when set, else presence_timeout_seconds / 3 with at most 5 s.
What it is not for: the SQL of presence_touch() alone (presence_sql.t) or
what users see (presence_http.t).
Who uses it: `make test` (through prove), against the running stack. Its
users, tokens, rows and room carry this run's pid and time and are
deleted at the end. ALTER DATABASE ... SET track_functions = 'all' stays.
"""

import collections
import os
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rc  # noqa: E402

TAG = "%d_%d" % (os.getpid(), int(time.time()))
STREAMS = int(os.environ.get("PRESENCE_STREAMS") or 200)
WINDOW_S = 15.0
SAMPLE_S = 0.5


def touch_interval_s():
    env = os.environ.get("PRESENCE_TOUCH_INTERVAL_S")
    if env:
        return float(env)
    return min(int(rc.setting("presence_timeout_seconds")) / 3.0, 5.0)


def issue_tokens(room):
    """STREAMS tokens, one user each (the per-user stream limit applies
    per process), issued in one statement."""
    out = rc.sql("SELECT roomcast.issue_token('pbt_' || g || '_' || %s, "
                 "can_read => %s, ttl => '1 hour') "
                 "FROM generate_series(1, %d) g ORDER BY g"
                 % (rc.lit(TAG), rc.sql_array([room]), STREAMS))
    return out.split()


def call_counter():
    """(source, function giving the presence_touch calls so far)."""
    loaded = rc.sql("SELECT count(*) FROM pg_settings WHERE name = "
                    "'shared_preload_libraries' AND setting LIKE "
                    "'%pg_stat_statements%'") == "1"
    if loaded:
        rc.sql("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        return "pg_stat_statements", lambda: int(rc.sql(
            "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements "
            "WHERE query LIKE '%presence_touch(%' "
            "AND query NOT LIKE '%pg_stat_statements%'"))
    rc.sql("DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET "
           "track_functions = ''all''', current_database()); END $$")
    return "pg_stat_user_functions", lambda: int(rc.sql(
        "SELECT coalesce(sum(calls), 0) FROM pg_stat_user_functions "
        "WHERE schemaname = 'roomcast' AND funcname = 'presence_touch'"))


def sample(room):
    """{pid: set of last_seen texts} of the room's rows, per process."""
    out = rc.sql("SELECT split_part(conn_id, ':', 2), last_seen "
                 "FROM roomcast.presence WHERE room = %s" % rc.lit(room))
    per = collections.defaultdict(set)
    for line in out.splitlines():
        pid, seen = line.split("|", 1)
        per[pid].add(seen)
    return per


def open_streams(tap, room, tokens):
    streams = []
    for tok in tokens:
        try:
            streams.append(rc.AuthSSE(room, tok).open())
        except OSError as exc:
            tap.diag("stream %d did not open: %r" % (len(streams), exc))
            break
    ok = [s for s in streams if s.status == 200]
    per = collections.Counter(s.worker for s in ok)
    tap.ok(len(ok) == STREAMS, "%d SSE streams open (per worker: %s)"
           % (STREAMS, dict(per)), STREAMS, len(ok))
    return streams, per


def row_count(room):
    return int(rc.sql("SELECT count(*) FROM roomcast.presence WHERE "
                      "room = %s" % rc.lit(room)))


def check_rows(tap, room):
    got = rc.wait_until(lambda: row_count(room) == STREAMS, 20)
    tap.ok(got, "a presence row for every stream", STREAMS, row_count(room))
    # Right after the joins each row still has its own join time; one
    # refresh round later a process's rows share one value.
    settled = rc.wait_until(lambda: all(
        len(v) == 1 for v in sample(room).values()), 15, 0.25)
    tap.ok(settled, "after one refresh round, all rows of a process share "
           "one last_seen", "1 value per process",
           {p: len(v) for p, v in sample(room).items()})


def watch_window(room):
    """Samples for WINDOW_S. Returns (values seen per pid, most distinct
    values in one sample per pid, samples taken)."""
    seen = collections.defaultdict(set)
    widest = collections.Counter()
    count = 0
    # A sample takes some milliseconds; stopping 0.2 s early keeps every
    # value seen within the window.
    end = time.monotonic() + WINDOW_S - 0.2
    while time.monotonic() < end:
        for pid, values in sample(room).items():
            seen[pid] |= values
            widest[pid] = max(widest[pid], len(values))
        count += 1
        time.sleep(SAMPLE_S)
    return seen, widest, count


def check_window(tap, room, per_worker, source, calls):
    interval = touch_interval_s()
    bound = int(WINDOW_S / interval) + 1
    # Live workers refresh their row every 5 s; a killed one's row stays
    # for minutes, so only recent rows count.
    workers = int(rc.sql("SELECT count(*) FROM roomcast.workers WHERE "
                         "kind = 'fcgi' AND last_seen > now() - "
                         "interval '12 seconds'"))
    c0 = calls()
    seen, widest, samples = watch_window(room)
    c1 = calls()
    tap.diag("interval %.1f s, bound %d per process, %d samples, %d "
             "worker processes" % (interval, bound, samples, workers))
    for pid, n in sorted(per_worker.items()):
        tap.ok(widest[pid] == 1, "worker %s: every sample shows one "
               "last_seen for its %d rows" % (pid, n), 1, widest[pid])
        rounds = len(seen[pid])
        tap.ok(1 <= rounds <= bound, "worker %s: %d refresh rounds in "
               "%.0f s for %d streams (at most %d)"
               % (pid, rounds, WINDOW_S, n, bound),
               "1..%d" % bound, rounds)
    delta = c1 - c0
    tap.diag("presence_touch calls in %.0f s by %s: %d"
             % (WINDOW_S, source, delta))
    if delta == 0:
        tap.ok(True, "presence_touch calls per process # skip %s "
               "counted no call: the worker sessions started before "
               "track_functions was set; after the next worker restart "
               "they count" % source)
        return
    tap.ok(delta <= bound * workers,
           "%d presence_touch calls in %.0f s for %d streams on %d "
           "processes: at most %d per process"
           % (delta, WINDOW_S, STREAMS, workers, bound),
           "<= %d" % (bound * workers), delta)


def main(tap):
    rc.require_presence_api(tap)
    room = rc.make_room("pbt")
    streams = []
    try:
        tokens = issue_tokens(room)
        source, calls = call_counter()
        streams, per_worker = open_streams(tap, room, tokens)
        check_rows(tap, room)
        check_window(tap, room, per_worker, source, calls)
    finally:
        for sse in streams:
            sse.close()
        rc.sql("DELETE FROM roomcast.presence WHERE room = %s"
               % rc.lit(room))
        rc.sql("DELETE FROM roomcast.tokens WHERE user_id LIKE %s"
               % rc.lit("pbt\\_%\\_" + TAG))
        rc.sql("DELETE FROM roomcast.rooms WHERE name = %s" % rc.lit(room))


if __name__ == "__main__":
    rc.run(main, limit_s=180)
