"""rc.py - shared helpers for the Roomcast integration tests.

For: the tests/integration/*.t programs, which run against the real stack
(lighttpd, the roomcast-fcgi workers, PostgreSQL) and print TAP. This module
gives them a TAP printer with a whole-file time limit, an SSE client on a
raw socket, HTTP helpers for publish, long-poll and history, and SQL through
psql. Not for: unit tests, load tests, or anything a user runs.

Python 3 standard library only. Every network call and every wait here has
a time bound, so a silent server fails a test instead of hanging it.
"""

import codecs
import hashlib
import http.client
import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.environ.get("ROOMCAST_ROOT") or os.path.dirname(os.path.dirname(HERE))
STATE = os.environ.get("ROOMCAST_STATE") or os.path.join(ROOT, "state")
STACK = os.environ.get("ROOMCAST_STACK") or os.path.join(
    ROOT, "deploy", "devstack.sh")
URL = os.environ.get("ROOMCAST_URL") or "http://127.0.0.1:8080"
DB = os.environ.get("ROOMCAST_DB") or (
    "host=%s port=5432 dbname=roomcast user=roomcast"
    % os.path.join(STATE, "run"))

_url = urllib.parse.urlsplit(URL)
HOST = _url.hostname or "127.0.0.1"
PORT = _url.port or 80
PREFIX = (_url.path or "").rstrip("/") + "/rt"

ENVELOPE_FIELDS = {"type", "room", "seq", "id", "from", "data", "ts"}


# ---------------------------------------------------------------- TAP

class Tap:
    """Numbers the checks, prints one ok/not ok line each, and the plan
    at the end. A whole-file alarm ends a run that would hang."""

    def __init__(self, limit_s=120):
        self.count = 0
        self.failed = 0
        self.lock = threading.Lock()
        self.cleanups = []
        signal.signal(signal.SIGALRM, self._on_alarm)
        signal.alarm(limit_s)
        self.limit_s = limit_s

    def _on_alarm(self, signum, frame):
        self.ok(False, "the whole test finished within %d s" % self.limit_s)
        for fn in self.cleanups:
            try:
                fn()
            except BaseException as exc:
                self.diag("cleanup failed: %r" % exc)
        self._finish(hard=True)

    def at_timeout(self, fn):
        """fn runs if the whole-file alarm ends the test (a restore that
        must happen even then)."""
        self.cleanups.append(fn)

    def ok(self, cond, name, expected=None, got=None):
        with self.lock:
            self.count += 1
            name = name.replace("\n", " ")
            print("%s %d - %s" % ("ok" if cond else "not ok", self.count, name))
            if not cond:
                self.failed += 1
                if expected is not None or got is not None:
                    self.diag("expected %s" % _short(expected))
                    self.diag("got      %s" % _short(got))
            sys.stdout.flush()
        return bool(cond)

    def eq(self, got, expected, name):
        return self.ok(got == expected, name, expected, got)

    def diag(self, msg):
        for line in str(msg).splitlines() or [""]:
            print("# " + line)
        sys.stdout.flush()

    def _finish(self, hard=False):
        print("1..%d" % self.count)
        sys.stdout.flush()
        code = 1 if self.failed or self.count == 0 else 0
        if hard:
            os._exit(code)
        sys.exit(code)

    def done(self):
        signal.alarm(0)
        self._finish()


def _short(value, limit=600):
    text = value if isinstance(value, str) else repr(value)
    if len(text) > limit:
        text = text[:limit] + "... (%d chars)" % len(text)
    return text


def run(main, limit_s=120):
    """Runs main(tap); an exception is one failed check with its trace."""
    tap = Tap(limit_s)
    try:
        main(tap)
    except SystemExit:
        raise
    except BaseException:
        tap.ok(False, "test ran without an unexpected exception")
        tap.diag(traceback.format_exc())
    tap.done()


def room_name(tag):
    """A room name no earlier run used: tag, pid and time."""
    name = "t_%s_%d_%d" % (tag, os.getpid(), int(time.time() * 1000))
    return name[:64]


def public_room(tag):
    """A fresh room that anyone may read and write without a token, for
    the tests of everything but permissions."""
    name = room_name(tag)
    sql("INSERT INTO roomcast.rooms (name, public_read, public_write) "
        "VALUES (%s, true, true)" % lit(name))
    return name


def wait_until(pred, timeout_s, step_s=0.2):
    """Calls pred until it returns a true value or time runs out."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = pred()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(step_s)


def parse_cursor(text):
    """'a:1,b:2' -> {'a': 1, 'b': 2}; None when it is not a cursor."""
    out = {}
    if not text:
        return None
    for part in text.split(","):
        room, sep, seq = part.rpartition(":")
        if not sep or not room or not seq.isdigit():
            return None
        out[room] = int(seq)
    return out


# ---------------------------------------------------------------- HTTP

class Resp:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers          # lower-case names
        self.body = body
        try:
            self.json = json.loads(body.decode("utf-8")) if body else None
        except ValueError:
            self.json = None

    @property
    def worker(self):
        return self.headers.get("x-roomcast-worker")

    def header(self, name):
        return self.headers.get(name.lower())

    def __repr__(self):
        return "<%s %s>" % (self.status, _short(self.body.decode(
            "utf-8", "replace"), 300))


def request(method, path, body=None, headers=None, timeout_s=15):
    """One HTTP request on a fresh connection. path is under the server
    root (pass PREFIX + '/...'). Returns Resp."""
    conn = http.client.HTTPConnection(HOST, PORT, timeout=timeout_s)
    try:
        hdrs = {"Connection": "close"}
        hdrs.update(headers or {})
        if isinstance(body, str):
            body = body.encode("utf-8")
        conn.request(method, path, body=body, headers=hdrs)
        res = conn.getresponse()
        data = res.read()
        names = {k.lower(): v for k, v in res.getheaders()}
        return Resp(res.status, names, data)
    finally:
        conn.close()


def raw_request(data, timeout_s=15):
    """Sends bytes as they are and reads the answer even when the server
    stops reading early (an oversized body). Returns Resp or None."""
    sock = socket.create_connection((HOST, PORT), timeout=timeout_s)
    try:
        try:
            sock.sendall(data)
        except OSError:
            pass
        buf = b""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except socket.timeout:
                break
            except OSError:
                break
            if not chunk:
                break
            buf += chunk
        head, sep, rest = buf.partition(b"\r\n\r\n")
        if not sep:
            return None
        status, headers = _parse_head(head)
        if headers.get("transfer-encoding", "").lower() == "chunked":
            dec = Dechunker()
            rest = dec.feed(rest)
        return Resp(status, headers, rest)
    finally:
        sock.close()


def _parse_head(head):
    lines = head.decode("iso-8859-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
    headers = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return status, headers


def _query(params):
    """Query string that keeps ':' and ',' literal, as a browser would."""
    items = [(k, v) for k, v in params.items() if v is not None]
    return urllib.parse.urlencode(items, safe=":,")


def publish(room, type=None, data=None, id=None, body=None,
            content_type="application/json", timeout_s=15):
    """POST /rt/rooms/{room}/messages. body overrides the JSON built from
    type, data and id."""
    if body is None:
        msg = {}
        if type is not None:
            msg["type"] = type
        if id is not None:
            msg["id"] = id
        if data is not None:
            msg["data"] = data
        body = json.dumps(msg)
    headers = {"Content-Type": content_type} if content_type else {}
    return request("POST", "%s/rooms/%s/messages" % (PREFIX, room), body,
                   headers, timeout_s)


def history(room, timeout_s=15, **params):
    qs = _query(params)
    return request("GET", "%s/rooms/%s/messages%s"
                   % (PREFIX, room, "?" + qs if qs else ""),
                   timeout_s=timeout_s)


def poll(rooms, cursor=None, timeout=None, http_timeout_s=None):
    """GET /rt/poll. rooms is a name or a list of names."""
    if not isinstance(rooms, str):
        rooms = ",".join(rooms)
    qs = _query({"rooms": rooms, "cursor": cursor, "timeout": timeout})
    try:
        limit = http_timeout_s or float(timeout) + 15
    except (TypeError, ValueError):
        limit = 45
    return request("GET", "%s/poll?%s" % (PREFIX, qs), timeout_s=limit)


def health(timeout_s=5):
    try:
        return request("GET", PREFIX + "/health", timeout_s=timeout_s)
    except OSError:
        return None


def stack_up():
    """True when /rt/health answers at all (any status)."""
    res = health()
    return res is not None and res.status in (200, 503)


# ---------------------------------------------------------------- SQL

def lit(text):
    """SQL literal for text (or NULL for None)."""
    if text is None:
        return "NULL"
    return "'" + str(text).replace("'", "''") + "'"


def sql(query, timeout_s=30):
    """Runs query with psql; returns its unaligned, tuples-only output
    (columns split by '|'). Raises RuntimeError when psql fails."""
    proc = subprocess.run(
        ["psql", DB, "-XAtq", "-v", "ON_ERROR_STOP=1", "-c", query],
        capture_output=True, text=True, timeout=timeout_s)
    if proc.returncode != 0:
        raise RuntimeError("psql failed (%d): %s" % (proc.returncode,
                                                     proc.stderr.strip()))
    return proc.stdout.rstrip("\n")


def sql_publish(room, type, data=None, client_id=None):
    """SELECT seq FROM roomcast.publish(...); returns the seq as int."""
    out = sql("SELECT seq FROM roomcast.publish(%s, %s, %s::jsonb, NULL, %s)"
              % (lit(room), lit(type), lit(json.dumps(data)), lit(client_id)))
    return int(out)


def stored_seqs(room):
    """The seqs stored for room, in order."""
    out = sql("SELECT seq FROM roomcast.messages WHERE room = %s ORDER BY seq"
              % lit(room))
    return [int(x) for x in out.split()] if out else []


def stored_count(room):
    return int(sql("SELECT count(*) FROM roomcast.messages WHERE room = %s"
                   % lit(room)))


def setting(key):
    return sql("SELECT value FROM roomcast.settings WHERE key = %s" % lit(key))


def set_setting(key, value):
    sql("UPDATE roomcast.settings SET value = %s WHERE key = %s"
        % (lit(value), lit(key)))


def stack(command, timeout_s=90):
    """Runs the devstack script with one subcommand; returns the
    CompletedProcess."""
    return subprocess.run([STACK, command], capture_output=True, text=True,
                          timeout=timeout_s)


# ---------------------------------------------------------------- SSE

class Dechunker:
    """Incremental decoder for Transfer-Encoding: chunked."""

    def __init__(self):
        self.buf = b""
        self.left = 0           # bytes of chunk data still to come
        self.need_crlf = False  # the CRLF after a chunk's data
        self.done = False

    def feed(self, data):
        self.buf += data
        out = []
        while not self.done:
            if self.left:
                take = self.buf[:self.left]
                if not take:
                    break
                out.append(take)
                self.buf = self.buf[len(take):]
                self.left -= len(take)
                if self.left == 0:
                    self.need_crlf = True
                continue
            if self.need_crlf:
                if len(self.buf) < 2:
                    break
                self.buf = self.buf[2:]
                self.need_crlf = False
                continue
            line, sep, rest = self.buf.partition(b"\r\n")
            if not sep:
                break
            self.buf = rest
            size = int(line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                self.done = True
            self.left = size
        return b"".join(out)


class SSE:
    """An EventSource on a raw socket.

    open() connects, sends the request and reads the response head, so
    status, headers and worker are known when it returns. A thread then
    reads the body and puts parsed items on a queue: dicts with 'kind'
    'event' (id, event, data, json, conn), 'comment', 'retry' (value),
    'eof' (conn). With reconnect=True it behaves like a browser: after
    the end of a 200 stream it waits the retry delay and reconnects with
    Last-Event-ID set to the last id seen, until close()."""

    def __init__(self, rooms, cursor=None, last_event_id=None, backlog=None,
                 extra=None, reconnect=False, timeout_s=10):
        if not isinstance(rooms, str):
            rooms = ",".join(rooms)
        params = {"rooms": rooms, "cursor": cursor, "backlog": backlog}
        params.update(extra or {})
        self.path = "%s/events?%s" % (PREFIX, _query(params))
        self.last_event_id = last_event_id
        self.reconnect = reconnect
        self.timeout_s = timeout_s
        self.items = queue.Queue()
        self.lines = []             # raw body lines of the first connection
        self.body = b""             # de-chunked body of the last connection
        self.conns = 0
        self.retry_ms = 2000
        self.workers = []
        self.opened = []            # when each connection got its head
        self.status = None
        self.headers = {}
        self.sock = None
        self.closed = False
        self.eof = threading.Event()
        self.thread = None

    @property
    def worker(self):
        return self.headers.get("x-roomcast-worker")

    def open(self):
        self._connect()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        return self

    def _connect(self):
        sock = socket.create_connection((HOST, PORT), timeout=self.timeout_s)
        req = ["GET %s HTTP/1.1" % self.path,
               "Host: %s:%d" % (HOST, PORT),
               "Accept: text/event-stream",
               "Cache-Control: no-cache",
               "Connection: close"]
        if self.last_event_id is not None:
            req.append("Last-Event-ID: %s" % self.last_event_id)
        # Set by AuthSSE only: the token's header or cookie.
        req.extend(getattr(self, "extra_headers", []))
        sock.sendall(("\r\n".join(req) + "\r\n\r\n").encode("utf-8"))
        buf = b""
        deadline = time.monotonic() + self.timeout_s
        while b"\r\n\r\n" not in buf:
            if time.monotonic() > deadline:
                sock.close()
                raise TimeoutError("no response head from %s" % self.path)
            chunk = sock.recv(65536)
            if not chunk:
                sock.close()
                raise ConnectionError("closed before the response head")
            buf += chunk
        head, _, rest = buf.partition(b"\r\n\r\n")
        self.status, self.headers = _parse_head(head)
        self.workers.append(self.worker)
        self.opened.append(time.monotonic())
        self.sock = sock
        self.conns += 1
        self._first_rest = rest

    def _run(self):
        while True:
            self._read_stream()
            if not self.reconnect or self.closed or self.status != 200:
                break
            time.sleep(min(self.retry_ms, 5000) / 1000.0)
            if self.closed:
                break
            try:
                self._connect()
            except OSError:
                # The server is away; try again after the retry delay,
                # as a browser would, until close().
                self.status = 200
                self._first_rest = b""
                self.sock = None
        self.eof.set()

    def _read_stream(self):
        sock, rest = self.sock, self._first_rest
        conn = self.conns
        if sock is None:
            return
        chunked = self.headers.get("transfer-encoding", "").lower() \
            == "chunked"
        length = self.headers.get("content-length")
        length = int(length) if length and length.isdigit() else None
        dec = Dechunker() if chunked else None
        text = codecs.getincrementaldecoder("utf-8")("replace")
        self.body = b""
        parser = _EventParser(self, conn)
        sock.settimeout(1.0)
        data = rest
        while True:
            if data:
                plain = dec.feed(data) if dec else data
                self.body += plain
                parser.feed(text.decode(plain))
                if dec and dec.done:
                    break
                if length is not None and len(self.body) >= length:
                    break
            if self.closed:
                break
            try:
                data = sock.recv(65536)
            except socket.timeout:
                data = b""
                continue
            except OSError:
                break
            if not data:
                break
        try:
            sock.close()
        except OSError:
            pass
        # clean: the body stopped just after a complete event (or comment),
        # not inside one; terminated: the chunked body had its last chunk.
        self.items.put({"kind": "eof", "conn": conn,
                        "clean": parser.is_between_events(),
                        "terminated": dec.done if dec else None,
                        "at": time.monotonic()})

    def close(self):
        self.closed = True
        if self.sock is not None:
            try:
                self.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self.thread is not None:
            self.thread.join(5)

    # Reading what arrived.

    def next_item(self, timeout_s):
        try:
            return self.items.get(timeout=max(timeout_s, 0.001))
        except queue.Empty:
            return None

    def collect(self, count, timeout_s, pred=None, stop_at_eof=True):
        """Events (kind 'event') matching pred, until count of them or the
        time is up. Other items are kept in self.others."""
        got = []
        deadline = time.monotonic() + timeout_s
        while len(got) < count:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            item = self.next_item(left)
            if item is None:
                break
            if item["kind"] == "event" and (pred is None or pred(item)):
                got.append(item)
            elif item["kind"] == "eof" and stop_at_eof and not self.reconnect:
                self.others.append(item)
                break
            else:
                self.others.append(item)
        return got

    @property
    def others(self):
        if not hasattr(self, "_others"):
            self._others = []
        return self._others

    def quiet(self, seconds):
        """Events that arrive in the next seconds (expecting none)."""
        got = []
        deadline = time.monotonic() + seconds
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            item = self.next_item(left)
            if item is None:
                break
            if item["kind"] == "event":
                got.append(item)
            else:
                self.others.append(item)
        return got

    def wait_eof(self, timeout_s):
        """True when the (first) stream ended within timeout_s."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            item = self.next_item(deadline - time.monotonic())
            if item is None:
                break
            self.others.append(item)
            if item["kind"] == "eof":
                return True
        return False

    def body_json(self):
        try:
            return json.loads(self.body.decode("utf-8"))
        except ValueError:
            return None


class _EventParser:
    """Turns SSE text into items, following the EventSource rules: fields
    until a blank line, data lines joined by newlines, an event with no
    data is not dispatched, 'id' sets the last event id."""

    def __init__(self, sse, conn):
        self.sse = sse
        self.conn = conn
        self.pending = ""
        self.reset()

    def reset(self):
        self.data = []
        self.event = None
        self.id = None
        self.has_fields = False

    def is_between_events(self):
        return self.pending == "" and not self.has_fields

    def feed(self, text):
        self.pending += text
        while True:
            line, sep, rest = self.pending.partition("\n")
            if not sep:
                break
            self.pending = rest
            self.line(line[:-1] if line.endswith("\r") else line)

    def line(self, line):
        sse = self.sse
        if self.conn == 1:
            sse.lines.append(line)
        if line == "":
            self.dispatch()
            return
        if line.startswith(":"):
            sse.items.put({"kind": "comment", "text": line[1:],
                           "conn": self.conn})
            return
        self.has_fields = True
        name, sep, value = line.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self.data.append(value)
        elif name == "event":
            self.event = value
        elif name == "id":
            if "\0" not in value:
                self.id = value
                sse.last_event_id = value
        elif name == "retry":
            if value.isdigit():
                sse.retry_ms = int(value)
                sse.items.put({"kind": "retry", "value": int(value),
                               "conn": self.conn})

    def dispatch(self):
        if not self.data:
            self.reset()
            return
        data = "\n".join(self.data)
        try:
            parsed = json.loads(data)
        except ValueError:
            parsed = None
        self.sse.items.put({"kind": "event", "id": self.id,
                            "event": self.event or "message", "data": data,
                            "json": parsed, "conn": self.conn})
        self.reset()


def ev_seq(item):
    """The seq in an SSE event's envelope, or None."""
    env = item.get("json")
    return env.get("seq") if isinstance(env, dict) else None


def ev_room(item):
    env = item.get("json")
    return env.get("room") if isinstance(env, dict) else None


def is_reset(item):
    """A system event whose envelope data says 'reset'."""
    env = item.get("json")
    return (item.get("event") == "system" and isinstance(env, dict)
            and env.get("type") == "system"
            and isinstance(env.get("data"), dict)
            and env["data"].get("event") == "reset")


# ---------------------------------------------------------------- checks

def check_sequence(tap, got_seqs, expected_seqs, what):
    """One check: got exactly expected, in order, each once. On failure
    says what was lost, repeated or out of order."""
    if tap.ok(got_seqs == expected_seqs, what):
        return True
    lost = sorted(set(expected_seqs) - set(got_seqs))
    extra = sorted(set(got_seqs) - set(expected_seqs))
    repeated = sorted({s for s in got_seqs if got_seqs.count(s) > 1})
    tap.diag("expected %d seqs %s" % (len(expected_seqs),
                                     _short(expected_seqs, 200)))
    tap.diag("got      %d seqs %s" % (len(got_seqs), _short(got_seqs, 200)))
    tap.diag("lost %s, repeated %s, unexpected %s, in order %s"
             % (_short(lost, 200), _short(repeated, 200),
                _short(extra, 200), got_seqs == sorted(got_seqs)))
    return False


def envelope_problems(env, room, seq=None, type=None, data=None,
                      id="absent"):
    """What is wrong with a stored message's envelope, as a list of
    strings (empty when it is right). id='absent' means no id field."""
    bad = []
    if not isinstance(env, dict):
        return ["not a JSON object: %s" % _short(env, 200)]
    extra = set(env) - ENVELOPE_FIELDS
    if extra:
        bad.append("unknown fields %s" % sorted(extra))
    for field in ("type", "room", "seq", "from", "data", "ts"):
        if field not in env:
            bad.append("no %s" % field)
    if env.get("room") != room:
        bad.append("room %r" % env.get("room"))
    if seq is not None and env.get("seq") != seq:
        bad.append("seq %r not %r" % (env.get("seq"), seq))
    if type is not None and env.get("type") != type:
        bad.append("type %r not %r" % (env.get("type"), type))
    if data is not None and env.get("data") != data:
        bad.append("data differs: %s" % _short(env.get("data"), 200))
    if env.get("from", 0) is not None:
        bad.append("from %r, not null" % env.get("from"))
    if id == "absent":
        if "id" in env:
            bad.append("id %r present" % env["id"])
    elif env.get("id") != id:
        bad.append("id %r not %r" % (env.get("id"), id))
    ts = env.get("ts")
    if not isinstance(ts, (int, float)) or abs(ts - time.time()) > 600:
        bad.append("ts %r not near now" % ts)
    return bad


def error_problems(res, status, code):
    """What is wrong with an error response, as a list of strings."""
    bad = []
    if res is None:
        return ["no response"]
    if res.status != status:
        bad.append("status %s not %s" % (res.status, status))
    body = res.json
    if not isinstance(body, dict):
        bad.append("body not a JSON object: %s"
                   % _short(res.body.decode("utf-8", "replace"), 200))
        return bad
    if body.get("type") != "error":
        bad.append("type %r not 'error'" % body.get("type"))
    if body.get("code") != code:
        bad.append("code %r not %r" % (body.get("code"), code))
    if not isinstance(body.get("message"), str) or not body.get("message"):
        bad.append("no message text")
    ctype = res.header("content-type") or ""
    if not ctype.startswith("application/json"):
        bad.append("content-type %r" % ctype)
    return bad


def require_stack(tap):
    """Ends the test with one failed check when the stack does not answer."""
    if stack_up():
        return
    tap.ok(False, "the stack answers at %s%s/health" % (URL, PREFIX))
    tap.diag("start it with deploy/devstack.sh start")
    tap.done()


# ---------------------------------------------------------------- auth

# Every token, ticket and JSON Web Token text this process handed to the
# server, so a test can check at its end that no log line holds one.
SECRETS = []


def remember_secret(text):
    """Adds a token, ticket or JWT text to SECRETS; returns it."""
    if text and text not in SECRETS:
        SECRETS.append(text)
    return text


def sha256_hex(text):
    """Lower-case hex SHA-256 of the UTF-8 text, as the server hashes a
    token or ticket."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def sql_array(items):
    """SQL literal of a text[] (never NULL)."""
    return "ARRAY[%s]::text[]" % ", ".join(lit(x) for x in items)


def issue_token(user, can_read=(), can_write=(), ttl="1 hour", note=None):
    """SELECT roomcast.issue_token(...); returns the token text, which is
    remembered in SECRETS. ttl None issues one that never expires."""
    out = sql("SELECT roomcast.issue_token(%s, can_read => %s, "
              "can_write => %s, ttl => %s::interval, note => %s)"
              % (lit(user), sql_array(can_read), sql_array(can_write),
                 lit(ttl), lit(note)))
    return remember_secret(out)


def revoke_token(token):
    """SELECT roomcast.revoke_token(token); returns True when it existed."""
    return sql("SELECT roomcast.revoke_token(%s)" % lit(token)) == "t"


def make_room(tag, public_read=False, public_write=False):
    """A fresh room with a row in roomcast.rooms and the given flags."""
    name = room_name(tag)
    sql("INSERT INTO roomcast.rooms (name, public_read, public_write) "
        "VALUES (%s, %s, %s)" % (lit(name), public_read, public_write))
    return name


def credential(token, via="bearer"):
    """(headers, query params) that carry token the way via says:
    'bearer' (Authorization header), 'cookie' (roomcast_token), 'query'
    (?token=), 'ticket' (?ticket=, token being the ticket) or None for
    no credential at all."""
    if token is None or via is None:
        return {}, {}
    if via == "bearer":
        return {"Authorization": "Bearer " + token}, {}
    if via == "cookie":
        return {"Cookie": "roomcast_token=" + token}, {}
    if via == "query":
        return {}, {"token": token}
    if via == "ticket":
        return {}, {"ticket": token}
    raise ValueError("unknown credential kind %r" % via)


def _with_query(path, params):
    qs = _query(params)
    if not qs:
        return path
    return path + ("&" if "?" in path else "?") + qs


def auth_request(method, path, token=None, via="bearer", body=None,
                 headers=None, params=None, timeout_s=15):
    """request() with a credential added. path is under PREFIX (pass
    '/rooms/x/messages'); params are more query parameters."""
    hdrs, query = credential(token, via)
    hdrs.update(headers or {})
    query.update(params or {})
    return request(method, _with_query(PREFIX + path, query), body, hdrs,
                   timeout_s)


def publish_as(room, token=None, via="bearer", type="text", data=None,
               id=None, timeout_s=15):
    """POST /rt/rooms/{room}/messages with a credential."""
    msg = {"type": type, "data": data if data is not None else {"n": 1}}
    if id is not None:
        msg["id"] = id
    return auth_request("POST", "/rooms/%s/messages" % room, token, via,
                        json.dumps(msg),
                        {"Content-Type": "application/json"},
                        timeout_s=timeout_s)


def history_as(room, token=None, via="bearer", **params):
    """GET /rt/rooms/{room}/messages with a credential."""
    return auth_request("GET", "/rooms/%s/messages" % room, token, via,
                        params=params)


def poll_as(rooms, token=None, via="bearer", cursor=None, timeout=1,
            http_timeout_s=None):
    """GET /rt/poll with a credential; timeout is the poll's own."""
    if not isinstance(rooms, str):
        rooms = ",".join(rooms)
    return auth_request("GET", "/poll", token, via,
                        params={"rooms": rooms, "cursor": cursor,
                                "timeout": timeout},
                        timeout_s=http_timeout_s or float(timeout) + 15)


def ticket_for(token, via="bearer"):
    """POST /rt/tickets; returns (Resp, ticket text or None). The ticket
    is remembered in SECRETS."""
    res = auth_request("POST", "/tickets", token, via)
    text = None
    if res.status == 200 and isinstance(res.json, dict):
        text = res.json.get("ticket")
        if isinstance(text, str):
            remember_secret(text)
        else:
            text = None
    return res, text


class AuthSSE(SSE):
    """An SSE client that sends a credential (see credential())."""

    def __init__(self, rooms, token=None, via="bearer", extra=None,
                 headers=None, **kwargs):
        hdrs, query = credential(token, via)
        hdrs.update(headers or {})
        query.update(extra or {})
        SSE.__init__(self, rooms, extra=query, **kwargs)
        self.extra_headers = ["%s: %s" % kv for kv in hdrs.items()]


def sse_answer(rooms, token=None, via="bearer", extra=None, headers=None,
               timeout_s=10):
    """Opens an SSE stream and returns (status, error body or None,
    stream). A 200 stream is left open for the caller (close it); any
    other answer is read to its end (bounded) and its JSON body given."""
    sse = AuthSSE(rooms, token, via, extra=extra, headers=headers,
                  timeout_s=timeout_s)
    try:
        sse.open()
    except OSError as exc:
        return None, {"connection": repr(exc)}, sse
    if sse.status == 200:
        return sse.status, None, sse
    sse.wait_eof(timeout_s)
    sse.close()
    return sse.status, sse.body_json(), sse


def answer_problems(res, status, code=None):
    """Like error_problems() for any status, for a Resp or an
    (status, body) pair; code None skips the body checks."""
    if res is None:
        return ["no response"]
    if isinstance(res, tuple):
        got_status, body = res
    else:
        got_status, body = res.status, res.json
    bad = []
    if got_status != status:
        bad.append("status %s not %s" % (got_status, status))
    if code is not None:
        if not isinstance(body, dict):
            bad.append("body not a JSON object: %s" % _short(body, 200))
        elif body.get("type") != "error" or body.get("code") != code:
            bad.append("type/code %r/%r not 'error'/%r"
                       % (body.get("type"), body.get("code"), code))
    return bad


def settings_restorer(tap, keys):
    """Remembers the values of keys now; returns a function that writes
    them back (run it in a finally block). It also runs if the whole-file
    alarm ends the test."""
    saved = {k: setting(k) for k in keys}

    def restore():
        for key, value in saved.items():
            set_setting(key, value)
    tap.at_timeout(restore)
    return restore


def log_files():
    """Every *.log file under state/log (worker, lighttpd, PostgreSQL)."""
    folder = os.path.join(STATE, "log")
    try:
        names = sorted(os.listdir(folder))
    except OSError:
        return []
    return [os.path.join(folder, n) for n in names if n.endswith(".log")]


def secret_marks(text):
    """What must not appear in a log for one secret: the whole text and,
    to catch a shortened copy, its 24 characters after the prefix (for a
    JWT, the start of its signature)."""
    marks = [text]
    if text.count(".") == 2:
        sig = text.rsplit(".", 1)[1]
        if len(sig) >= 24:
            marks.append(sig[:24])
    elif len(text) >= 28:
        marks.append(text[4:28])
    return marks


def check_logs_clean(tap, secrets=None, settle_s=1.0):
    """One check: no log file holds any secret (default: SECRETS). Waits
    settle_s first so buffered log lines are written."""
    secrets = list(SECRETS if secrets is None else secrets)
    time.sleep(settle_s)
    found = []
    files = log_files()
    for path in files:
        try:
            with open(path, "rb") as fh:
                data = fh.read().decode("utf-8", "replace")
        except OSError as exc:
            found.append("%s unreadable: %s" % (path, exc))
            continue
        for secret in secrets:
            for mark in secret_marks(secret):
                at = data.find(mark)
                if at >= 0:
                    line_start = data.rfind("\n", 0, at) + 1
                    found.append("%s: %s" % (os.path.basename(path),
                                             _short(data[line_start:at + 40],
                                                    200)))
                    break
    tap.ok(files and not found,
           "no log file holds any of the %d tokens, tickets and JWTs used"
           % len(secrets),
           "none in %s" % [os.path.basename(f) for f in files], found)


def sql_state(query, timeout_s=30):
    """Runs query with psql; returns (output, None) when it succeeds, or
    (error text, SQLSTATE) when it fails."""
    proc = subprocess.run(
        ["psql", DB, "-XAtq", "-v", "ON_ERROR_STOP=1", "-v",
         "VERBOSITY=verbose", "-c", query],
        capture_output=True, text=True, timeout=timeout_s)
    if proc.returncode == 0:
        return proc.stdout.rstrip("\n"), None
    err = proc.stderr.strip()
    m = re.search(r"ERROR:\s+([0-9A-Z]{5}):", err)
    return err, (m.group(1) if m else "?????")


def sql_notifications(statements, timeout_s=30):
    """Runs statements (a list) in one psql session that first LISTENs on
    channel roomcast; returns the payloads that session received, in
    order (other sessions' traffic on the channel included)."""
    args = ["psql", DB, "-Xq", "-v", "ON_ERROR_STOP=1",
            "-c", "LISTEN roomcast"]
    for st in statements:
        args += ["-c", st]
    proc = subprocess.run(args, capture_output=True, text=True,
                          timeout=timeout_s)
    if proc.returncode != 0:
        raise RuntimeError("psql failed (%d): %s" % (proc.returncode,
                                                     proc.stderr.strip()))
    return re.findall(r'Asynchronous notification "roomcast" with payload '
                      r'"(.*)" received from server process', proc.stdout)


# ---------------------------------------------------------------- presence

def sql_session(statements, timeout_s=30):
    """Runs statements (a list) in one psql session that first LISTENs on
    channel roomcast. Returns (rows, payloads): the output lines of the
    statements (unaligned, tuples only) and the notifications that
    session received, both in order. A statement may be 'BEGIN' or
    'COMMIT', so several can share a transaction."""
    args = ["psql", DB, "-XAtq", "-v", "ON_ERROR_STOP=1",
            "-c", "LISTEN roomcast"]
    for st in statements:
        args += ["-c", st]
    proc = subprocess.run(args, capture_output=True, text=True,
                          timeout=timeout_s)
    if proc.returncode != 0:
        raise RuntimeError("psql failed (%d): %s" % (proc.returncode,
                                                     proc.stderr.strip()))
    rows, notes = [], []
    pattern = re.compile(r'^Asynchronous notification "roomcast" with '
                         r'payload "(.*)" received from server process '
                         r'with PID \d+\.$')
    for line in proc.stdout.splitlines():
        m = pattern.match(line)
        if m:
            notes.append(m.group(1))
        else:
            rows.append(line)
    return rows, notes


class Listener:
    """A psql session that LISTENs on channel roomcast for a fixed time in
    the background, for what other sessions notify meanwhile. start()
    returns once the LISTEN is in force; payloads() waits for the end of
    the window and returns what arrived, in order."""

    def __init__(self, seconds):
        self.seconds = seconds
        self.name = "rc_listen_%d_%d" % (os.getpid(), id(self) % 100000)
        self.proc = None

    def start(self, timeout_s=10):
        env = dict(os.environ, PGAPPNAME=self.name)
        self.proc = subprocess.Popen(
            ["psql", DB, "-XAtq", "-c", "LISTEN roomcast",
             "-c", "SELECT pg_sleep(%s)" % self.seconds],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=env)
        # The sleep is the second statement: once it shows, LISTEN is on.
        seen = wait_until(lambda: sql(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name "
            "= %s AND query LIKE 'SELECT pg_sleep%%'" % lit(self.name))
            == "1", timeout_s, 0.05)
        if not seen:
            self.proc.kill()
            raise RuntimeError("the LISTEN session did not start")
        return self

    def payloads(self):
        out, err = self.proc.communicate(timeout=self.seconds + 30)
        return re.findall(r'Asynchronous notification "roomcast" with '
                          r'payload "(.*)" received from server process',
                          out)


def ephemeral(payloads, room):
    """The envelopes (parsed) of the 'e <room> ...' payloads for room."""
    head = "e %s " % room
    out = []
    for p in payloads:
        if p.startswith(head):
            try:
                out.append(json.loads(p[len(head):]))
            except ValueError:
                out.append({"unparsed": p})
    return out


def presence_events(envelopes, user=None):
    """(event, user, state) for each presence envelope, optionally only
    those of one user."""
    out = []
    for env in envelopes:
        if not isinstance(env, dict) or env.get("type") != "presence":
            continue
        data = env.get("data") if isinstance(env.get("data"), dict) else {}
        if user is None or env.get("from") == user:
            out.append((data.get("event"), env.get("from"),
                        data.get("state")))
    return out


def presence_post(room, token=None, state=None, via="bearer",
                  body=None, timeout_s=15):
    """POST /rt/rooms/{room}/presence: a heartbeat, with {"state": state}
    when state is given (body overrides it; '' sends no body)."""
    headers = {}
    if body is None and state is not None:
        body = json.dumps({"state": state})
    if body:
        headers["Content-Type"] = "application/json"
    return auth_request("POST", "/rooms/%s/presence" % room, token, via,
                        body or None, headers, timeout_s=timeout_s)


def presence_get(room, token=None, via="bearer", timeout_s=15):
    return auth_request("GET", "/rooms/%s/presence" % room, token, via,
                        timeout_s=timeout_s)


def presence_delete(room, token=None, via="bearer", timeout_s=15):
    return auth_request("DELETE", "/rooms/%s/presence" % room, token, via,
                        timeout_s=timeout_s)


def typing_post(room, token=None, via="bearer", timeout_s=15):
    return auth_request("POST", "/rooms/%s/typing" % room, token, via,
                        timeout_s=timeout_s)


def online_users(res):
    """The user ids of a presence answer (Resp), or None when the answer
    is not the contract's {"room":..,"online":[...]}."""
    body = res.json if res is not None else None
    if not isinstance(body, dict) or not isinstance(body.get("online"),
                                                    list):
        return None
    return [u.get("user") if isinstance(u, dict) else u
            for u in body["online"]]


def is_presence(item, event=None, user=None):
    """An SSE item that is a presence event (of that kind, from that
    user when given)."""
    env = item.get("json")
    if item.get("kind", "event") != "event" or not isinstance(env, dict):
        return False
    if env.get("type") != "presence":
        return False
    data = env.get("data") if isinstance(env.get("data"), dict) else {}
    return ((event is None or data.get("event") == event)
            and (user is None or env.get("from") == user))


def presence_api_up():
    """True when the workers serve /rt/rooms/{room}/presence (any answer
    but 404 not_found for the route)."""
    try:
        res = request("GET", PREFIX + "/rooms/presence_probe/presence",
                      timeout_s=5)
    except OSError:
        return False
    return res.status != 404


def require_presence_api(tap):
    """Ends the test with one failed check when the workers do not serve
    the presence endpoints."""
    require_stack(tap)
    if presence_api_up():
        return
    tap.ok(False, "the workers serve GET %s/rooms/{room}/presence" % PREFIX)
    tap.diag("got 404: this roomcast-fcgi has no presence endpoints")
    tap.done()
