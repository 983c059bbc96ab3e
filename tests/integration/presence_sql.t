#!/usr/bin/env python3
"""presence_sql.t - the SQL side of presence and typing.

What it is for: checking sql/003_presence.sql through psql alone: one join
per user and room however many rows (connections) it has, also when two
sessions add them at once; a leave only when the last row goes; an update
when the state changes and none when it does not; presence_list() and the
online view (live rows only, one per user, state, since, last_seen);
presence_touch() in one statement; presence_sweep() deleting expired rows
with their leaves, and its advisory lock (another holder: -1 at once);
kick() removing a user's rows with the leave; room_stats.online_users; a
state too large for a payload going out as null; the typing payload; and
SQLSTATE 22023 for bad arguments.
What it is not for: HTTP and SSE; the other presence_*.t files test the
workers.
Who uses it: `make test` (through prove). Rooms, users and connection ids
carry this run's pid and time, and its rows are deleted at the end. The
running workers may sweep at any moment: the sweep cases take the sweep
lock themselves so that what they count is their own work.
"""

import json
import os
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rc  # noqa: E402

TAG = "%d_%d" % (os.getpid(), int(time.time()))
SWEEP_LOCK = "1919905645, 2"


def user(name):
    return "ps_%s_%s" % (name, TAG)


def conn(name):
    return "pst:%s:%s" % (TAG, name)


def room(name):
    return rc.room_name("p" + name)


def join(c, rooms, who, state=None):
    if isinstance(rooms, str):
        rooms = [rooms]
    return "SELECT roomcast.presence_join(%s, %s, %s, %s)" % (
        rc.lit(c), rc.sql_array(rooms), rc.lit(who),
        "NULL" if state is None else rc.lit(json.dumps(state)) + "::jsonb")


def leave(c, rooms=None):
    arg = "NULL" if rooms is None else rc.sql_array(
        [rooms] if isinstance(rooms, str) else rooms)
    return "SELECT roomcast.presence_leave(%s, %s)" % (rc.lit(c), arg)


def events(notes, r, who=None):
    return rc.presence_events(rc.ephemeral(notes, r), who)


def listed(r):
    """presence_list(r) as [(user, state, since, last_seen)]."""
    out = rc.sql("SELECT user_id, coalesce(state::text, 'null'), since, "
                 "last_seen FROM roomcast.presence_list(%s)" % rc.lit(r))
    rows = []
    for line in out.splitlines():
        u, state, since, seen = line.split("|")
        rows.append((u, json.loads(state), float(since), float(seen)))
    return rows


def check_two_rows_one_join(tap):
    r, alice = room("two"), user("alice")
    _, notes = rc.sql_session([join(conn("a1"), r, alice),
                               join(conn("a2"), r, alice),
                               join(conn("a1"), r, alice)])
    tap.eq(events(notes, r), [("join", alice, None)],
           "two connections of one user (and a repeated heartbeat): "
           "one join")
    got = [(u, s) for u, s, _, _ in listed(r)]
    tap.eq(got, [(alice, None)], "presence_list shows the user once")
    n = rc.sql("SELECT count(*) FROM roomcast.presence WHERE room = %s"
               % rc.lit(r))
    tap.eq(n, "2", "one row per connection")

    _, notes = rc.sql_session([leave(conn("a1"))])
    tap.eq(events(notes, r), [], "the first connection leaves: no leave "
           "event, another row is left")
    tap.eq([u for u, _, _, _ in listed(r)], [alice],
           "the user is still listed")
    _, notes = rc.sql_session([leave(conn("a2")), leave(conn("a2"))])
    tap.eq(events(notes, r), [("leave", alice, None)],
           "the last connection leaves: one leave (and none for a second "
           "leave of the same connection)")
    tap.eq(listed(r), [], "nobody is listed any more")


def check_multi_room(tap):
    r1, r2, bob = room("m1"), room("m2"), user("bob")
    _, notes = rc.sql_session([join(conn("b1"), [r1, r2, r1], bob)])
    tap.ok(events(notes, r1) == [("join", bob, None)]
           and events(notes, r2) == [("join", bob, None)],
           "one connection in two rooms: one join in each",
           "one join each", notes)
    _, notes = rc.sql_session([leave(conn("b1"), r1)])
    tap.ok(events(notes, r1) == [("leave", bob, None)]
           and events(notes, r2) == [],
           "leaving one room of the connection: a leave there only",
           "leave in %s only" % r1, notes)
    _, notes = rc.sql_session([leave(conn("b1"))])
    tap.eq(events(notes, r2), [("leave", bob, None)],
           "leave with rooms NULL: the connection leaves its other room")


def check_update(tap):
    r, carol = room("upd"), user("carol")
    _, notes = rc.sql_session([
        join(conn("c1"), r, carol, {"status": "here"}),
        join(conn("c2"), r, carol),
        join(conn("c1"), r, carol, {"status": "here"}),
        join(conn("c2"), r, carol, {"status": "away"}),
        join(conn("c1"), r, carol),
    ])
    tap.eq(events(notes, r), [("join", carol, {"status": "here"}),
                              ("update", carol, {"status": "away"})],
           "join with the first state, update only when the state changes "
           "(not for the same state, not for a heartbeat without one)")
    got = [(u, s) for u, s, _, _ in listed(r)]
    tap.eq(got, [(carol, {"status": "away"})],
           "presence_list shows the state set last, whichever row "
           "heartbeats last")
    _, notes = rc.sql_session([leave(conn("c2"))])
    tap.eq(events(notes, r), [("update", carol, {"status": "here"})],
           "the row that set the state leaves: an update to the state "
           "that shows now")
    _, notes = rc.sql_session([leave(conn("c1"))])
    tap.eq(events(notes, r), [("leave", carol, None)],
           "the last row leaves: a leave")


def check_list_shape(tap):
    r = room("list")
    zed, amy = user("zed"), user("amy")
    t0 = time.time()
    rc.sql_session([join(conn("z1"), r, zed, {"n": 1}),
                    "SELECT pg_sleep(0.2)",
                    join(conn("z2"), r, zed),
                    join(conn("y1"), r, amy)])
    rows = listed(r)
    tap.eq([u for u, _, _, _ in rows], sorted([amy, zed]),
           "presence_list is ordered by user")
    z = [x for x in rows if x[0] == zed]
    ok = (len(z) == 1 and z[0][1] == {"n": 1}
          and z[0][3] - z[0][2] >= 0.15
          and abs(z[0][2] - t0) < 10
          and z[0][2] == round(z[0][2], 3))
    tap.ok(ok, "since is the earliest join, last_seen the latest "
           "heartbeat, epochs with 3 decimals",
           "since <= last_seen - 0.2, near %.3f" % t0, z)
    view = rc.sql("SELECT \"user\", coalesce(state::text, 'null') "
                  "FROM roomcast.online WHERE room = %s ORDER BY 1"
                  % rc.lit(r))
    tap.eq(view.splitlines(), sorted(["%s|null" % amy,
                                      '%s|{"n": 1}' % zed]),
           "the online view has one row per user of the room")
    rc.sql("INSERT INTO roomcast.rooms (name) VALUES (%s) "
           "ON CONFLICT DO NOTHING" % rc.lit(r))
    tap.eq(rc.sql("SELECT online_users FROM roomcast.room_stats "
                  "WHERE room = %s" % rc.lit(r)), "2",
           "room_stats.online_users counts users, not connections")
    rc.sql("UPDATE roomcast.presence SET last_seen = now() - "
           "interval '1 day' WHERE conn_id = %s" % rc.lit(conn("y1")))
    tap.eq([u for u, _, _, _ in listed(r)], [zed],
           "an expired row is not listed, even before a sweep")
    tap.eq(rc.sql("SELECT online_users FROM roomcast.room_stats "
                  "WHERE room = %s" % rc.lit(r)), "1",
           "room_stats.online_users counts live users only")
    rc.sql_session([leave(conn("z1")), leave(conn("z2")),
                    leave(conn("y1"))])


def check_touch(tap):
    r1, r2, dan = room("t1"), room("t2"), user("dan")
    rc.sql_session([join(conn("d1"), [r1, r2], dan),
                    join(conn("d2"), r1, dan)])
    rc.sql("UPDATE roomcast.presence SET last_seen = now() - "
           "interval '10 seconds' WHERE user_id = %s" % rc.lit(dan))
    out = rc.sql("SELECT roomcast.presence_touch(%s)"
                 % rc.sql_array([conn("d1"), conn("d2"), conn("nope")]))
    tap.eq(out, "3", "presence_touch returns the rows it refreshed "
           "(two rooms of one connection, one of another)")
    distinct = rc.sql("SELECT count(DISTINCT last_seen), "
                      "bool_and(last_seen > now() - interval '5 seconds') "
                      "FROM roomcast.presence WHERE user_id = %s"
                      % rc.lit(dan))
    tap.eq(distinct, "1|t", "one statement: every row got the same "
           "last_seen, and it is now")
    tap.eq(rc.sql("SELECT roomcast.presence_touch('{}')"), "0",
           "presence_touch of no connection: 0")
    rc.sql_session([leave(conn("d1")), leave(conn("d2"))])


def sweep_now(statements):
    """Runs statements and then presence_sweep() in one transaction that
    holds the sweep lock from its start (waiting for a worker's sweep to
    end), so no other sweep touches these rows. Returns (sweep result,
    payloads)."""
    rows, notes = rc.sql_session(
        ["BEGIN", "SELECT 'locked' FROM pg_advisory_xact_lock(%s)"
         % SWEEP_LOCK] + statements
        + ["SELECT 'swept', roomcast.presence_sweep()", "COMMIT"])
    swept = [x.split("|")[1] for x in rows if x.startswith("swept|")]
    return (int(swept[0]) if swept else None), notes


def check_sweep(tap):
    r, eve, fay = room("sw"), user("eve"), user("fay")
    rc.sql_session([join(conn("e1"), r, eve), join(conn("e2"), r, eve),
                    join(conn("f1"), r, fay)])
    back = ("UPDATE roomcast.presence SET last_seen = now() - "
            "interval '1 hour' WHERE conn_id IN (%s, %s)"
            % (rc.lit(conn("e1")), rc.lit(conn("f1"))))
    swept, notes = sweep_now([back])
    tap.ok(swept is not None and swept >= 2,
           "presence_sweep deletes the expired rows and counts them",
           ">= 2", swept)
    left = rc.sql("SELECT conn_id FROM roomcast.presence WHERE room = %s"
                  % rc.lit(r))
    tap.eq(left.splitlines(), [conn("e2")],
           "only the live row is left")
    tap.eq(events(notes, r), [("leave", fay, None)],
           "a leave for the user left with no row, none for the user "
           "with a live row")

    rc.sql("UPDATE roomcast.presence SET last_seen = now() - "
           "interval '1 hour' WHERE conn_id = %s" % rc.lit(conn("e2")))
    _, notes = rc.sql_session([join(conn("e3"), r, eve)])
    tap.eq(events(notes, r), [("leave", eve, None), ("join", eve, None)],
           "a user whose rows all expired comes back: the owed leave, "
           "then a join")
    _, notes = rc.sql_session([leave(conn("e3"))])
    tap.eq(events(notes, r), [("leave", eve, None)], "and a leave at the end")
    gone = rc.sql("SELECT count(*) FROM roomcast.presence WHERE room = %s"
                  % rc.lit(r))
    tap.eq(gone, "0", "the expired row went with the join's leave")


def check_sweep_lock(tap):
    holder = subprocess.Popen(
        ["psql", rc.DB, "-XAtq", "-c", "BEGIN",
         "-c", "SELECT pg_advisory_xact_lock(%s)" % SWEEP_LOCK,
         "-c", "SELECT pg_sleep(2)", "-c", "COMMIT"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        held = rc.wait_until(lambda: rc.sql(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
            "AND classid = 1919905645 AND objid = 2 AND objsubid = 2 "
            "AND granted AND pid <> pg_backend_pid()") != "0", 5, 0.05)
        t0 = time.monotonic()
        out = rc.sql("SELECT roomcast.presence_sweep()")
        took = time.monotonic() - t0
        tap.ok(held and out == "-1" and took < 1.0,
               "while another session holds (0x726f6f6d, 2), "
               "presence_sweep returns -1 at once",
               "-1 within 1 s", "%s after %.2f s (held: %s)"
                                % (out, took, held))
    finally:
        holder.communicate(timeout=30)
    got = rc.wait_until(lambda: rc.sql("SELECT roomcast.presence_sweep()")
                        != "-1", 10, 0.2)
    tap.ok(got, "once it is released, presence_sweep runs again",
           "a count >= 0", got)


def check_concurrent_join(tap):
    """Two sessions add rows of one user at once: the second waits for
    the first's pair lock, sees its row, and stays silent."""
    r, gus = room("cc"), user("gus")
    listener = rc.Listener(4).start()
    first = subprocess.Popen(
        ["psql", rc.DB, "-XAtq", "-v", "ON_ERROR_STOP=1", "-c", "BEGIN",
         "-c", join(conn("g1"), r, gus), "-c", "SELECT pg_sleep(1.5)",
         "-c", "COMMIT"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(0.5)
    t0 = time.monotonic()
    rc.sql(join(conn("g2"), r, gus))
    waited = time.monotonic() - t0
    first.communicate(timeout=30)
    got = events(listener.payloads(), r)
    tap.eq(got, [("join", gus, None)],
           "two sessions join one user at once: one join")
    tap.ok(waited > 0.5, "the second join waited for the first's lock",
           "> 0.5 s", "%.2f s" % waited)

    listener = rc.Listener(4).start()
    first = subprocess.Popen(
        ["psql", rc.DB, "-XAtq", "-v", "ON_ERROR_STOP=1", "-c", "BEGIN",
         "-c", leave(conn("g1")), "-c", "SELECT pg_sleep(1.5)",
         "-c", "COMMIT"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(0.5)
    rc.sql(leave(conn("g2")))
    first.communicate(timeout=30)
    got = events(listener.payloads(), r)
    tap.eq(got, [("leave", gus, None)],
           "two sessions remove the user's two rows at once: one leave")


def check_kick(tap):
    r, hal = room("kick"), user("hal")
    rc.sql_session([join(conn("h1"), r, hal), join(conn("h2"), r, hal)])
    _, notes = rc.sql_session(["SELECT roomcast.kick(%s, %s)"
                               % (rc.lit(hal), rc.lit(r))])
    ctl = "c kick %s %s" % (r, hal)
    tap.ok(ctl in notes, "kick still sends the control notification",
           ctl, notes[-5:])
    tap.eq(events(notes, r), [("leave", hal, None)],
           "kick removes the user from the room with one leave")
    tap.eq(rc.sql("SELECT count(*) FROM roomcast.presence WHERE room = %s"
                  % rc.lit(r)), "0", "kick deletes the user's rows")
    _, notes = rc.sql_session([leave(conn("h1")), leave(conn("h2"))])
    tap.eq(events(notes, r), [], "the kicked streams' own leave: nothing "
           "more")


def check_large_state(tap):
    r, ivy = room("big"), user("ivy")
    big = {"blob": "x" * 9000}
    _, notes = rc.sql_session([join(conn("i1"), r, ivy, big)])
    tap.eq(events(notes, r), [("join", ivy, None)],
           "a state too large for a payload: the join goes with state null")
    tap.ok(all(len(p.encode("utf-8")) <= 7999 for p in notes),
           "every payload is within 7999 bytes", "<= 7999",
           [len(p) for p in notes])
    got = [(u, s) for u, s, _, _ in listed(r)]
    tap.eq(got, [(ivy, big)], "the state itself is kept and listed")
    small = {"blob": "y"}
    _, notes = rc.sql_session([join(conn("i1"), r, ivy, small)])
    tap.eq(events(notes, r), [("update", ivy, small)],
           "then a small state: an update that carries it")
    rc.sql_session([leave(conn("i1"))])


def check_typing(tap):
    r, jay = room("typ"), user("jay") + " j"
    rows, notes = rc.sql_session(["SELECT roomcast.typing(%s, %s)"
                                  % (rc.lit(r), rc.lit(jay)),
                                  "SELECT roomcast.typing(%s, NULL)"
                                  % rc.lit(r)])
    want = ['e %s {"type":"typing","room":"%s","from":"%s"}' % (r, r, jay),
            'e %s {"type":"typing","room":"%s","from":null}' % (r, r)]
    got = [p for p in notes if p.startswith("e %s " % r)]
    tap.eq(got, want, "typing payloads, byte for byte (from null for "
           "NULL)")
    tap.eq(rc.sql("SELECT count(*) FROM roomcast.messages WHERE room = %s"
                  % rc.lit(r)), "0", "typing stores nothing")


def check_payload_bytes(tap):
    r, kim = room("pay"), user("kim")
    _, notes = rc.sql_session([join(conn("k1"), r, kim,
                                    {"b": [1, 2], "a": "x y"})])
    want = ('e %s {"type":"presence","room":"%s","from":"%s","data":'
            '{"event":"join","state":{"a":"x y","b":[1,2]}}}' % (r, r, kim))
    got = [p for p in notes if p.startswith("e %s " % r)]
    tap.eq(got, [want], "a presence payload, byte for byte: compact JSON, "
           "spaces inside strings kept")
    rc.sql_session([leave(conn("k1"))])


def check_bad_args(tap):
    r = room("bad")
    cases = [
        ("a room with a space", join(conn("x"), "a b", user("x"))),
        ("a NULL room in the list",
         "SELECT roomcast.presence_join('c', ARRAY[NULL]::text[], 'u')"),
        ("a NULL room list",
         "SELECT roomcast.presence_join('c', NULL, 'u')"),
        ("a user with a newline",
         "SELECT roomcast.presence_join('c', %s, E'a\\nb')"
         % rc.sql_array([r])),
        ("a NULL user",
         "SELECT roomcast.presence_join('c', %s, NULL)" % rc.sql_array([r])),
        ("an empty connection id",
         "SELECT roomcast.presence_join('', %s, 'u')" % rc.sql_array([r])),
        ("typing to a bad room", "SELECT roomcast.typing('a b', 'u')"),
        ("typing from a bad user", "SELECT roomcast.typing(%s, '')"
         % rc.lit(r)),
    ]
    for what, query in cases:
        out, state = rc.sql_state(query)
        tap.eq(state, "22023", "%s is refused with 22023" % what)
    tap.eq(rc.sql("SELECT count(*) FROM roomcast.presence WHERE room = %s"
                  % rc.lit(r)), "0", "and nothing was stored")


def cleanup():
    rc.sql("DELETE FROM roomcast.presence WHERE conn_id LIKE %s"
           % rc.lit("pst:%s:%%" % TAG))
    rc.sql("DELETE FROM roomcast.rooms WHERE name LIKE %s"
           % rc.lit("t_p%%_%d_%%" % os.getpid()))


def main(tap):
    try:
        check_two_rows_one_join(tap)
        check_multi_room(tap)
        check_update(tap)
        check_list_shape(tap)
        check_touch(tap)
        check_sweep(tap)
        check_sweep_lock(tap)
        check_concurrent_join(tap)
        check_kick(tap)
        check_large_state(tap)
        check_typing(tap)
        check_payload_bytes(tap)
        check_bad_args(tap)
    finally:
        cleanup()


if __name__ == "__main__":
    rc.run(main, limit_s=120)
