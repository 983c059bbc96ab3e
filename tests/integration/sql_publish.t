#!/usr/bin/env python3
"""sql_publish.t - schema roomcast against a live PostgreSQL.

What it is for: checking the migration runner and the SQL side of the
message path through psql: gap-free seqs under concurrent publishers,
idempotent publishing, argument checks (SQLSTATE 22023) and the size limit
(54000), the NOTIFY payloads, the envelope text, retention, the worker
heartbeat and room_stats.
What it is not for: HTTP, SSE or anything a worker does; other tests cover
those through the web server.
Who uses it: `make test` (through prove), with ROOMCAST_DB set to the
development database and ROOMCAST_ROOT to the checkout. Every room it
creates starts with a prefix made of its pid and the time, so runs never
share a room; the rooms are deleted again when every case passed and kept
for inspection otherwise.

Output is TAP; a failing case prints what it expected and what it got.
"""

import json
import os
import re
import select
import subprocess
import sys
import tempfile
import time

DB = os.environ.get("ROOMCAST_DB")
ROOT = os.environ.get("ROOMCAST_ROOT") or os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MIGRATE = os.path.join(ROOT, "deploy", "roomcast-migrate")
PREFIX = "t%d-%d-" % (os.getpid(), int(time.time()))
PSQL_TIMEOUT_S = 60

case_no = 0
failures = 0


def room(name):
    """A room name private to this run."""
    return PREFIX + name


def report(passed, name, expected=None, got=None):
    """Prints one TAP line; on failure, what was expected and what came."""
    global case_no, failures
    case_no += 1
    print("%s %d - %s" % ("ok" if passed else "not ok", case_no, name))
    if not passed:
        failures += 1
        print("#   expected: %r" % (expected,))
        print("#   got:      %r" % (got,))
    sys.stdout.flush()
    return passed


def check(name, expected, got):
    return report(expected == got, name, expected, got)


def skip(name, reason):
    global case_no
    case_no += 1
    print("ok %d - %s # SKIP %s" % (case_no, name, reason))


def psql_args(conninfo, variables):
    args = ["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
            "-v", "VERBOSITY=verbose", "-d", conninfo]
    for key, value in (variables or {}).items():
        args += ["-v", "%s=%s" % (key, value)]
    return args


def psql(sql, variables=None, conninfo=None):
    """Runs sql (psql variables come in as :'name'); returns
    (exit code, stdout lines, stderr)."""
    proc = subprocess.run(psql_args(conninfo or DB, variables),
                          input=sql, capture_output=True, text=True,
                          timeout=PSQL_TIMEOUT_S)
    # Not splitlines(): that also splits at U+2028 and friends, which are
    # ordinary characters inside an envelope.
    return proc.returncode, proc.stdout.split("\n")[:-1], proc.stderr


def query(sql, variables=None):
    """Runs sql that must succeed; returns its output lines."""
    rc, out, err = psql(sql, variables)
    if rc != 0:
        raise RuntimeError("psql failed: %s" % err.strip())
    return out


def sqlstate(stderr):
    """The SQLSTATE of the first error psql printed, or None."""
    match = re.search(r"ERROR:\s+([0-9A-Z]{5}):", stderr)
    return match.group(1) if match else None


def publish_sql(data="'null'", from_user="NULL", client_id="NULL"):
    return ("SELECT seq || '|' || ts || '|' || duplicate FROM "
            "roomcast.publish(:'room', :'type', %s, %s, %s);"
            % (data, from_user, client_id))


def publish(room_name, type_="text", data=None, from_user=None,
            client_id=None):
    """Publishes through psql; returns (seq, ts text, duplicate) or the
    SQLSTATE of the error."""
    variables = {"room": room_name, "type": type_}
    args = {}
    if data is not None:
        variables["data"] = json.dumps(data)
        args["data"] = ":'data'::jsonb"
    if from_user is not None:
        variables["from"] = from_user
        args["from_user"] = ":'from'"
    if client_id is not None:
        variables["id"] = client_id
        args["client_id"] = ":'id'"
    rc, out, err = psql(publish_sql(**args), variables)
    if rc != 0:
        return sqlstate(err) or err.strip()
    seq, ts, dup = out[0].split("|")
    return int(seq), ts, dup == "true"


def room_counts(room_name):
    """(rows in rooms, last_seq or None, stored messages) of a room."""
    line = query(
        "SELECT (SELECT count(*) FROM roomcast.rooms WHERE name = :'r')"
        " || '|' || coalesce((SELECT last_seq FROM roomcast.rooms"
        " WHERE name = :'r')::text, '')"
        " || '|' || (SELECT count(*) FROM roomcast.messages"
        " WHERE room = :'r');", {"r": room_name})[0]
    rows, last, stored = line.split("|")
    return int(rows), (int(last) if last else None), int(stored)


def stored_seqs(room_name):
    return [int(x) for x in query(
        "SELECT seq FROM roomcast.messages WHERE room = :'r' ORDER BY seq;",
        {"r": room_name})]


def envelope_of(room_name, seq):
    return query("SELECT roomcast.envelope(m) FROM roomcast.messages m"
                 " WHERE room = :'r' AND seq = :'s';",
                 {"r": room_name, "s": seq})[0]


def blank_outside_strings(text):
    """Whether JSON text has whitespace between tokens."""
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in " \t\r\n":
            return True
    return False


def run_migrate(conninfo):
    proc = subprocess.run([MIGRATE, conninfo], capture_output=True,
                          text=True, timeout=PSQL_TIMEOUT_S)
    return proc.returncode, proc.stdout, proc.stderr


# -------------------------------------------------------------------------

def test_runner():
    rc, out, err = run_migrate(DB)
    check("runner exits 0 on the test database", (0, ""), (rc, err))
    versions = query("SELECT version FROM roomcast.schema_version"
                     " ORDER BY version;")
    report("1" in versions, "schema_version records version 1",
           "a row for version 1", versions)
    rc, out, err = run_migrate(DB)
    applied = [l for l in out.splitlines() if " applied " in l]
    check("second run applies nothing", (0, []), (rc, applied))


def fresh_database_conninfo(name):
    """DB with another dbname, or None when DB is a URI (left alone)."""
    if DB.startswith(("postgres://", "postgresql://")):
        return None
    # In a key=value conninfo the last keyword wins.
    return DB + " dbname=" + name


def test_runner_race():
    """Two runners at once on an empty database: each file once."""
    name = "roomcast_mig_%d" % os.getpid()
    conninfo = fresh_database_conninfo(name)
    names = ["two runners on an empty database both exit 0",
             "each migration applied exactly once between them"]
    if conninfo is None:
        for n in names:
            skip(n, "ROOMCAST_DB is a URI")
        return
    rc, _, err = psql("CREATE DATABASE %s;" % name)
    if rc != 0:
        for n in names:
            skip(n, "cannot create a database: " + err.strip()[:60])
        return
    try:
        procs = [subprocess.Popen([MIGRATE, conninfo],
                                  stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
                 for _ in range(2)]
        results = [p.communicate(timeout=PSQL_TIMEOUT_S) for p in procs]
        check(names[0], [0, 0], [p.returncode for p in procs])
        lines = [l for out, _ in results for l in out.splitlines()
                 if " applied " in l]
        files = sorted(f[:-4] for f in os.listdir(os.path.join(ROOT, "sql"))
                       if re.match(r"^[0-9]{3}_.*\.sql$", f))
        got = sorted(l.split(" applied ")[1] for l in lines)
        check(names[1], files, got)
    finally:
        psql("DROP DATABASE IF EXISTS %s WITH (FORCE);" % name)


def wait_for_waiters(lock_key, count, timeout_s):
    """Waits until count sessions wait for the advisory lock lock_key."""
    deadline = time.time() + timeout_s
    waiting = -1
    while time.time() < deadline:
        waiting = int(query(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
            " AND NOT granted AND objsubid = 1"
            " AND (classid::bigint << 32 | objid::bigint) = :'k';",
            {"k": lock_key})[0])
        if waiting >= count:
            return waiting
        time.sleep(0.05)
    return waiting


def run_at_once(scripts, variables, name):
    """Runs each SQL script in its own psql process, all released at the
    same moment: they connect, queue behind an advisory lock a holder
    session keeps, and start when it lets go. Reports whether every
    process reached the barrier; returns [(exit code, stdout, stderr)]."""
    lock_key = 7000000000 + os.getpid()
    holder = Session()
    holder.send("SELECT pg_advisory_lock(%d);\n" % lock_key)
    holder.sync(10)
    procs, files = [], []
    try:
        for sql in scripts:
            barrier = ("SELECT pg_advisory_lock_shared(%d);\n"
                       "SELECT pg_advisory_unlock_shared(%d);\n"
                       % (lock_key, lock_key))
            script = tempfile.NamedTemporaryFile("w", suffix=".sql")
            script.write(barrier + sql)
            script.flush()
            files.append(script)
            procs.append(subprocess.Popen(
                psql_args(DB, variables) + ["-f", script.name],
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, text=True))
        waiting = wait_for_waiters(lock_key, len(scripts), 10)
    finally:
        holder.send("SELECT pg_advisory_unlock(%d);\n" % lock_key)
        holder.close()
    results = [p.communicate(timeout=PSQL_TIMEOUT_S) for p in procs]
    for script in files:
        script.close()
    check(name, len(scripts), waiting)
    return [(p.returncode, out, err)
            for p, (out, err) in zip(procs, results)]


def test_concurrent_publishers():
    r = room("concurrent")
    writers, per_writer = 8, 50
    scripts = ["".join("SELECT seq FROM roomcast.publish(:'room', 'text',"
                       " jsonb_build_object('w', %d, 'n', %d));\n" % (w, n)
                       for n in range(per_writer))
               for w in range(writers)]
    results = run_at_once(scripts, {"room": r},
                          "8 publishers wait at the barrier")

    check("8 concurrent publishers all exit 0", [0] * writers,
          [rc for rc, _, _ in results])
    # The barrier's lock calls print a line each; seqs are the numbers.
    got = [[int(x) for x in out.split() if x.isdigit()]
           for _, out, _ in results]
    in_order = all(len(s) == per_writer and s == sorted(s) for s in got)
    report(in_order, "each publisher got 50 rising seqs",
           "50 rising seqs per publisher", [s[:5] for s in got])
    interleaved = sum(1 for s in got if s and s[-1] - s[0] >= per_writer)
    print("# %d of %d publishers had their seqs interleaved with others'"
          % (interleaved, writers))
    total = writers * per_writer
    seqs = stored_seqs(r)
    check("stored seqs are exactly 1..400", list(range(1, total + 1)), seqs)
    pairs = query("SELECT count(DISTINCT (data->>'w', data->>'n'))"
                  " FROM roomcast.messages WHERE room = :'r';", {"r": r})
    check("every publish stored exactly once", [str(total)], pairs)
    stats = query("SELECT last_seq, stored_messages, first_seq,"
                  " messages_last_hour, last_message_at IS NOT NULL"
                  " FROM roomcast.room_stats WHERE room = :'r';", {"r": r})
    check("room_stats: last_seq, stored, first seq, last hour",
          ["400|400|1|400|t"], stats)


def test_idempotent():
    r = room("idem")
    first = publish(r, data={"a": 1}, from_user="alice", client_id="id-1")
    again = publish(r, data={"a": 2}, from_user="alice", client_id="id-1")
    report(isinstance(first, tuple) and first[2] is False,
           "first publish with an id is stored", "(seq, ts, False)", first)
    check("same id again: same seq and ts, duplicate",
          (first[0], first[1], True) if isinstance(first, tuple) else None,
          again)

    anon = publish(r, data={"b": 1}, client_id="id-1")
    anon_again = publish(r, data={"b": 2}, client_id="id-1")
    anon_empty = publish(r, data={"b": 3}, from_user="", client_id="id-1")
    report(isinstance(anon, tuple) and anon[0] == 2 and not anon[2],
           "same id from anonymous is a new message", "(2, ts, False)", anon)
    check("anonymous retry: same seq, duplicate",
          [(anon[0], True)] * 2 if isinstance(anon, tuple) else None,
          [(x[0], x[2]) if isinstance(x, tuple) else x
           for x in (anon_again, anon_empty)])
    bob = publish(r, client_id="id-1", from_user="bob")
    check("same id from another user is a new message", (3, False),
          (bob[0], bob[2]) if isinstance(bob, tuple) else bob)
    check("duplicates stored nothing: rooms, last_seq, messages",
          (1, 3, 3), room_counts(r))
    stored = query("SELECT data FROM roomcast.messages WHERE room = :'r'"
                   " ORDER BY seq;", {"r": r})
    check("the first copy's data is kept", ['{"a": 1}', '{"b": 1}', 'null'],
          stored)


def test_concurrent_retries():
    """Eight copies of one publish at the same moment: one is stored,
    seven see it. The duplicate check must run under the room lock for
    the seven to find the first instead of failing on the unique index."""
    r = room("retries")
    # The room exists beforehand: creating it would itself serialise the
    # eight and hide a missing lock.
    query("INSERT INTO roomcast.rooms (name) VALUES (:'r');", {"r": r})
    sql = ("SELECT seq || '|' || duplicate FROM roomcast.publish(:'room',"
           " 'text', '{}', 'carol', 'same-id');\n")
    results = run_at_once([sql] * 8, {"room": r},
                          "8 retries wait at the barrier")
    got = sorted((rc, out.strip().split("\n")[-1], sqlstate(err))
                 for rc, out, err in results)
    check("8 concurrent retries: one stored, seven duplicates, no error",
          [(0, "1|false", None)] + [(0, "1|true", None)] * 7, got)
    check("8 concurrent retries stored one message", (1, 1, 1),
          room_counts(r))


BAD_ARGS = [
    ("room with a space", "has space", "text", None),
    ("empty room", "", "text", None),
    ("65-character room", "r" * 65, "text", None),
    ("room with a slash", "a/b", "text", None),
    ("room with a non-ASCII letter", "caf\u00e9", "text", None),
    ("room with a trailing newline", "room\n", "text", None),
    ("type with a capital", None, "Text", None),
    ("empty type", None, "", None),
    ("33-character type", None, "t" * 33, None),
    ("reserved type typing", None, "typing", None),
    ("reserved type ack", None, "ack", None),
    ("empty id", None, "text", ""),
    ("65-character id", None, "text", "i" * 65),
    ("id with a tab", None, "text", "a\tb"),
    ("id with a non-ASCII letter", None, "text", "caf\u00e9"),
]


def test_bad_arguments():
    r = room("bad")
    publish(r)
    before = room_counts(r)
    for label, bad_room, type_, client_id in BAD_ARGS:
        if bad_room is None:
            # A bad type or id in an existing room: the room is unchanged.
            got = publish(r, type_=type_, client_id=client_id)
            expected, after = ("22023", before), (got, room_counts(r))
        else:
            # A bad room name: not even the room row may appear.
            got = publish(bad_room, type_=type_, client_id=client_id)
            expected, after = ("22023", 0), (got, room_counts(bad_room)[0])
        check("%s: 22023, nothing stored" % label, expected, after)

    good = publish(room("r" * (64 - len(PREFIX))), type_="t" * 32,
                   client_id=" ~" + "i" * 62)
    report(isinstance(good, tuple) and good[0] == 1,
           "limits themselves are accepted (64-char room, 32-char type,"
           " 64-char id)", "(1, ts, False)", good)


def test_size_limit():
    r = room("size")
    limit = int(query("SELECT value FROM roomcast.settings"
                      " WHERE key = 'max_message_bytes';")[0])
    # The envelope of seq 1 with an empty string as data; ts always has
    # ten digits, a point and three decimals.
    base = int(query(
        "SELECT octet_length(roomcast.envelope_build('text', :'r', 1,"
        " NULL, NULL, '\"\"', now()));", {"r": r})[0])
    fill = limit - base
    over = publish(r, data="x" * (fill + 1))
    check("envelope one byte over max_message_bytes: 54000, nothing stored",
          ("54000", (0, None, 0)), (over, room_counts(r)))
    at = publish(r, data="x" * fill)
    size = query("SELECT octet_length(roomcast.envelope(m))"
                 " FROM roomcast.messages m WHERE room = :'r';", {"r": r})
    check("envelope of exactly max_message_bytes is stored as seq 1",
          (1, [str(limit)]),
          (at[0] if isinstance(at, tuple) else at, size))
    huge = publish(r, data={"s": "y" * (limit + 10)})
    check("data alone over the limit: 54000, nothing stored",
          ("54000", (1, 1, 1)), (huge, room_counts(r)))


class Session:
    """A psql process fed statements one at a time, for what must stay
    open while other sessions act (a LISTEN, a lock held as a barrier)."""

    def __init__(self):
        self.proc = subprocess.Popen(psql_args(DB, None),
                                     stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        self.output = b""
        self.ticks = 0

    def send(self, sql):
        self.proc.stdin.write(sql.encode())
        self.proc.stdin.flush()

    def sync(self, timeout_s):
        """Runs a marker query and reads output up to its result, so
        everything psql printed before it is in self.output. Returns
        whether the marker came back within timeout_s."""
        self.ticks += 1
        marker = b"sync%d" % self.ticks
        self.send("SELECT '%s';\n" % marker.decode())
        deadline = time.time() + timeout_s
        while time.time() < deadline:
            ready, _, _ = select.select([self.proc.stdout], [], [], 0.2)
            if not ready:
                continue
            chunk = os.read(self.proc.stdout.fileno(), 65536)
            if not chunk:
                return False
            self.output += chunk
            if (b"\n" + marker + b"\n") in (b"\n" + self.output):
                return True
        return False

    def text(self):
        return self.output.decode("utf-8", "replace")

    def close(self):
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


NOTIFY_RE = re.compile(r'^Asynchronous notification "roomcast" with payload'
                       r' "(.*)" received from server process with PID'
                       r' \d+\.$')


def test_listen():
    r = room("listen")
    listener = Session()
    payloads = []
    try:
        listener.send("LISTEN roomcast;\n")
        ready = listener.sync(10)
        small = publish(r, data={"hello": "world"}, client_id="small-1")
        large = publish(r, data={"blob": "z" * 10240})

        # psql prints a notification after its next command, so sync until
        # both arrived, for at most 10 s.
        deadline = time.time() + 10
        for _ in range(100):
            listener.sync(max(0.1, deadline - time.time()))
            payloads = [m.group(1) for m in map(NOTIFY_RE.match,
                                                listener.text().split("\n"))
                        if m and m.group(1).split(" ")[1] == r]
            kinds = {p[0] for p in payloads}
            if kinds >= {"m", "M"} or time.time() > deadline:
                break
    finally:
        listener.close()

    report(ready, "LISTEN session is ready", True, ready)
    small_env = envelope_of(r, 1)
    check("small message: one 'm room seq envelope' payload",
          ["m %s 1 %s" % (r, small_env)],
          [p for p in payloads if p.startswith("m ")])
    check("10 KB message: one 'M room seq' payload",
          ["M %s 2" % r], [p for p in payloads if p.startswith("M ")])
    body = next((p.split(" ", 3)[3] for p in payloads
                 if p.startswith("m ")), "{}")
    try:
        parsed = json.loads(body)
    except ValueError as e:
        parsed = str(e)
    check("payload envelope parses, with the published data",
          ({"hello": "world"}, "small-1", small[1]),
          (parsed.get("data"), parsed.get("id"),
           "%.3f" % parsed.get("ts", 0)) if isinstance(parsed, dict)
          else parsed)
    report(isinstance(large, tuple) and large[0] == 2,
           "10 KB message stored as seq 2", 2, large)


def test_envelope():
    r = room("env")
    data = {"s": "line1\nline2 \"q\", x: y\\", "u": "\u00e9\u2028",
            "n": [1, 2, {"k": None}], "b": True, "ctl": "\x01\r"}
    pub = publish(r, data=data, from_user="bob", client_id='id "q"')
    text = envelope_of(r, 1)
    try:
        env = json.loads(text)
    except ValueError as e:
        env = {"error": str(e)}
    check("envelope fields in order",
          ["type", "room", "seq", "id", "from", "data", "ts"],
          list(env.keys()))
    check("envelope values",
          ("text", r, 1, 'id "q"', "bob", data),
          tuple(env.get(k) for k in ("type", "room", "seq", "id", "from",
                                     "data")))
    ts_text = re.search(r',"ts":([0-9.]+)\}$', text)
    check("ts has 3 decimals and equals the ts publish returned",
          pub[1] if isinstance(pub, tuple) else None,
          ts_text.group(1) if ts_text else text[-30:])
    report(abs(float(env.get("ts", 0)) - time.time()) < 300,
           "ts is near the current time", "within 300 s", env.get("ts"))
    check("envelope: no raw newline, no blank between tokens",
          (False, False, False),
          ("\n" in text, "\r" in text, blank_outside_strings(text)))

    publish(r, type_="system", data={"text": "maintenance"})
    anon = json.loads(envelope_of(r, 2))
    check("anonymous message without id: no id, from null",
          (["type", "room", "seq", "from", "data", "ts"], None),
          (list(anon.keys()), anon.get("from")))


def test_retention():
    r = room("keep10")
    query("INSERT INTO roomcast.rooms (name, max_messages)"
          " VALUES (:'r', 10);", {"r": r})
    query("SELECT count(*) FROM generate_series(1, 130) i,"
          " LATERAL roomcast.publish(:'r', 'text', to_jsonb(i));", {"r": r})
    # Trimmed at seq 128 down to 119..128, then 129 and 130 arrived.
    check("max_messages 10: after 130 publishes seqs 119..130 remain",
          list(range(119, 131)), stored_seqs(r))

    r = room("age")
    query("INSERT INTO roomcast.rooms (name, max_age)"
          " VALUES (:'r', '1 hour');", {"r": r})
    query("SELECT count(*) FROM generate_series(1, 63) i,"
          " LATERAL roomcast.publish(:'r', 'text', to_jsonb(i));", {"r": r})
    query("UPDATE roomcast.messages SET ts = ts - interval '2 hours'"
          " WHERE room = :'r' AND seq <= 40;", {"r": r})
    publish(r)
    check("max_age 1 hour: the 64th publish trims the 40 aged ones",
          list(range(41, 65)), stored_seqs(r))
    query("UPDATE roomcast.messages SET ts = ts - interval '2 hours'"
          " WHERE room = :'r' AND seq <= 50;", {"r": r})
    deleted = query("SELECT roomcast.trim_room(:'r');", {"r": r})
    check("trim_room deletes the next 10 aged ones",
          (["10"], list(range(51, 65))), (deleted, stored_seqs(r)))


def test_heartbeat():
    pid = os.getpid()
    stale_pid = pid + 1000000
    v = {"pid": pid, "stale": stale_pid}
    query("INSERT INTO roomcast.workers (kind, host, pid, started,"
          " last_seen) VALUES ('test', 'sql_publish.t', :'stale',"
          " now() - interval '1 hour', now() - interval '10 minutes');", v)
    query("SELECT roomcast.worker_heartbeat(kind => 'test',"
          " host => 'sql_publish.t', pid => :'pid', connections => 3,"
          " delivered => 7);", v)
    first = query("SELECT connections || '|' || delivered || '|' || started"
                  " FROM roomcast.workers WHERE kind = 'test'"
                  " AND pid = :'pid';", v)
    query("SELECT roomcast.worker_heartbeat('test', 'sql_publish.t',"
          " :'pid', 4, 9);", v)
    second = query("SELECT connections || '|' || delivered || '|' || started"
                   " FROM roomcast.workers WHERE kind = 'test'"
                   " AND pid = :'pid';", v)
    started = first[0].split("|")[2] if first else None
    check("heartbeat inserts, then updates counters and keeps started",
          (["3|7|" + str(started)], ["4|9|" + str(started)]),
          (first, second))
    stale = query("SELECT count(*) FROM roomcast.workers"
                  " WHERE pid = :'stale';", v)
    check("heartbeat deletes a process silent for 10 minutes", ["0"], stale)
    query("DELETE FROM roomcast.workers WHERE kind = 'test'"
          " AND host = 'sql_publish.t';")


def main():
    if not DB:
        print("1..0 # SKIP ROOMCAST_DB is not set")
        return 0
    if not os.access(MIGRATE, os.X_OK):
        print("1..0 # SKIP %s is missing" % MIGRATE)
        return 0
    for test in (test_runner, test_runner_race, test_concurrent_publishers,
                 test_idempotent, test_concurrent_retries,
                 test_bad_arguments, test_size_limit,
                 test_listen, test_envelope, test_retention, test_heartbeat):
        try:
            test()
        except Exception as e:  # one broken step must not hide the rest
            report(False, "%s ran to the end" % test.__name__,
                   "no exception", repr(e))
    # The plan comes last, so a test that stops early still counts.
    print("1..%d" % case_no)
    if failures == 0:
        query("DELETE FROM roomcast.rooms WHERE name LIKE :'p' || '%';",
              {"p": PREFIX})
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
