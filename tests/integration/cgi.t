#!/usr/bin/env python3
"""cgi.t - roomcast-fcgi run as plain CGI.

Runs the binary the way a web server runs a CGI program: stdin a pipe (not
a socket) holding the body, the request in environment variables, and
ROOMCAST_DB. A publish and a history request must each print a CGI
response (a Status: line, headers, a blank line, the JSON body) and exit.
Needs PostgreSQL but not lighttpd. Not for: FastCGI behaviour (the other
.t files). Run by `make test`.
"""

import json
import os
import subprocess
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rc  # noqa: E402

BIN = os.environ.get("ROOMCAST_FCGI_BIN") or os.path.join(
    rc.ROOT, "bin", "roomcast-fcgi")


def cgi(method, path, query="", body=b"", content_type=None):
    """Runs one CGI request; returns (exit code, status, headers, body,
    stderr) with status taken from the Status: line (None if missing)."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "ROOMCAST_DB": rc.DB,
        "GATEWAY_INTERFACE": "CGI/1.1",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "SERVER_SOFTWARE": "roomcast-test",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8080",
        "REMOTE_ADDR": "127.0.0.1",
        "REQUEST_METHOD": method,
        "SCRIPT_NAME": "/rt",
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "REQUEST_URI": "/rt" + path + ("?" + query if query else ""),
        "HTTP_HOST": "127.0.0.1:8080",
        "HTTP_ACCEPT": "application/json",
    }
    if body:
        env["CONTENT_LENGTH"] = str(len(body))
    if content_type:
        env["CONTENT_TYPE"] = content_type
    proc = subprocess.run([BIN], input=body, env=env, capture_output=True,
                          timeout=20)
    head, sep, rest = proc.stdout.partition(b"\r\n\r\n")
    if not sep:
        head, sep, rest = proc.stdout.partition(b"\n\n")
    headers = {}
    status = None
    for line in head.decode("iso-8859-1").splitlines():
        name, colon, value = line.partition(":")
        if colon:
            headers[name.strip().lower()] = value.strip()
    if "status" in headers:
        code = headers["status"].split(" ")[0]
        status = int(code) if code.isdigit() else headers["status"]
    return proc.returncode, status, headers, rest if sep else None, \
        proc.stderr


def check(tap, what, result, status):
    code, got_status, headers, body, err = result
    tap.eq(code, 0, "%s: the program exits 0" % what)
    tap.ok(body is not None, "%s: headers, a blank line, a body" % what,
           "a CGI response", result[3] if body is not None else
           "stdout without a blank line")
    tap.eq(got_status, status, "%s: Status: %d" % (what, status))
    ctype = headers.get("content-type", "")
    tap.ok(ctype.startswith("application/json"),
           "%s: Content-Type application/json" % what, "application/json",
           ctype)
    try:
        parsed = json.loads(body.decode("utf-8")) if body else None
    except ValueError:
        parsed = None
    tap.ok(isinstance(parsed, dict), "%s: the body is a JSON object" % what,
           "JSON", body)
    if code != 0:
        tap.diag("stderr: %s" % err.decode("utf-8", "replace")[-500:])
    return parsed if isinstance(parsed, dict) else {}


def main(tap):
    if not os.access(BIN, os.X_OK):
        tap.ok(False, "%s exists" % BIN)
        return
    room = rc.public_room("cgi")
    body = json.dumps({"type": "text", "id": "c1", "data": {"via": "cgi"}})
    ack = check(tap, "CGI publish",
                cgi("POST", "/rooms/%s/messages" % room,
                    body=body.encode(), content_type="application/json"), 201)
    tap.eq((ack.get("type"), ack.get("room"), ack.get("seq"), ack.get("id")),
           ("ack", room, 1, "c1"), "CGI publish: the ack")
    tap.eq(rc.stored_seqs(room), [1], "CGI publish: stored")

    hist = check(tap, "CGI history",
                 cgi("GET", "/rooms/%s/messages" % room, query="after=0"),
                 200)
    msgs = hist.get("messages") or []
    tap.eq([(m.get("seq"), m.get("id"), m.get("data")) for m in msgs],
           [(1, "c1", {"via": "cgi"})], "CGI history: the message")

    err = check(tap, "CGI bad room",
                cgi("GET", "/rooms/bad!room/messages"), 400)
    tap.eq(err.get("code"), "bad_request", "CGI bad room: code bad_request")


rc.run(main)
