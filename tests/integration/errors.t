#!/usr/bin/env python3
"""errors.t - bad requests get the contract's status and JSON error.

Each bad input must be answered with the status and `code` the contract
names, a JSON body {"type":"error","code":..,"message":..}, and nothing
stored (the room's row count is checked with SQL). Also: unknown paths,
wrong methods, and /rt/health. Not for: database loss (db_restart.t) or
message size (large.t). Run by `make test` against the stack.
"""

import json
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rc  # noqa: E402


NO_WORKER = []      # error answers without X-Roomcast-Worker


def expect(tap, res, status, code, what):
    bad = rc.error_problems(res, status, code)
    if res is not None and not (res.worker or "").isdigit():
        NO_WORKER.append(what)
    return tap.ok(not bad, "%s: %d %s" % (what, status, code), [], bad)


def post_raw(room, body, content_type="application/json"):
    headers = {"Content-Type": content_type} if content_type else {}
    return rc.request("POST", "%s/rooms/%s/messages" % (rc.PREFIX, room),
                      body, headers)


def bad_rooms(tap):
    for name, what in (("bad!name", "room with '!'"),
                       ("a" * 65, "room of 65 characters"),
                       ("sp%20ace", "room with a space"),
                       ("caf%C3%A9", "room with a non-ASCII letter")):
        res = rc.publish(name, type="text", data={})
        expect(tap, res, 400, "bad_request", "publish to " + what)
        res = rc.history(name)
        expect(tap, res, 400, "bad_request", "history of " + what)
        res = rc.poll(name, timeout=1)
        expect(tap, res, 400, "bad_request", "poll of " + what)
        sub = rc.SSE(name).open()
        sub.wait_eof(5)
        expect(tap, rc.Resp(sub.status, sub.headers, sub.body), 400,
               "bad_request", "SSE on " + what)
        sub.close()
    stored = rc.sql("SELECT count(*) FROM roomcast.messages WHERE room "
                    "IN ('bad!name', %s, 'sp ace', 'café')" % rc.lit("a" * 65))
    tap.eq(stored, "0", "nothing stored for bad room names")
    for name in ("a" * 64, "A-z_0.9"):
        rc.sql("INSERT INTO roomcast.rooms (name, public_read, public_write) "
               "VALUES (%s, true, true) ON CONFLICT (name) DO UPDATE SET "
               "public_read = true, public_write = true" % rc.lit(name))
    res = rc.publish("a" * 64, type="text", data={})
    tap.eq(res.status, 201, "a room name of 64 characters is fine")
    res = rc.publish("A-z_0.9", type="text", data={})
    tap.eq(res.status, 201, "a room name with A-Z a-z 0-9 _ - . is fine")


def bad_bodies(tap, room):
    cases = [
        ('{"type":"text","data":', "bad JSON body"),
        ("[1,2,3]", "JSON that is not an object"),
        ('"text"', "a JSON string"),
        (b'{"type":"text","data":"\xff\xfe"}', "a body that is not UTF-8"),
        (json.dumps({"type": "Bad Type!"}), "bad type"),
        (json.dumps({"type": "t" * 33}), "type of 33 characters"),
        (json.dumps({"type": ""}), "empty type"),
        (json.dumps({"type": 7}), "type that is not a string"),
        (json.dumps({"type": "text", "id": "i" * 65}), "id of 65 characters"),
        (json.dumps({"type": "text", "id": ""}), "empty id"),
        (json.dumps({"type": "text", "id": "a\u0001b"}),
         "id with a control character"),
        (json.dumps({"type": "text", "id": "caf\u00e9"}),
         "id with non-ASCII"),
        (json.dumps({"type": "text", "id": 12}), "id that is not a string"),
    ]
    for reserved in ("ack", "error", "presence", "typing", "system"):
        cases.append((json.dumps({"type": reserved, "data": {}}),
                      "reserved type %s" % reserved))
    for body, what in cases:
        expect(tap, post_raw(room, body), 400, "bad_request", what)
    tap.eq(rc.stored_count(room), 0, "nothing stored for bad bodies")


def bad_media(tap, room):
    body = json.dumps({"type": "text", "data": {}})
    expect(tap, post_raw(room, body, "text/plain"), 415,
           "unsupported_media_type", "Content-Type text/plain")
    expect(tap, post_raw(room, body, None), 415,
           "unsupported_media_type", "no Content-Type")
    res = post_raw(room, body, "application/json; charset=utf-8")
    tap.eq(res.status, 201, "application/json; charset=utf-8 is accepted")
    tap.eq(rc.stored_count(room), 1, "only the good one was stored")


def too_big(tap, room):
    before = rc.stored_count(room)
    size = 131072 + 100
    body = b'{"type":"text","data":"' + b"x" * (size - 26) + b'"}'
    head = ("POST %s/rooms/%s/messages HTTP/1.1\r\nHost: %s:%d\r\n"
            "Content-Type: application/json\r\nContent-Length: %d\r\n"
            "Connection: close\r\n\r\n"
            % (rc.PREFIX, room, rc.HOST, rc.PORT, len(body)))
    res = rc.raw_request(head.encode() + body, timeout_s=20)
    expect(tap, res, 413, "too_large", "a body over max_body_bytes")
    tap.eq(rc.stored_count(room), before, "the big body stored nothing")


def bad_cursors(tap, room):
    for cur in ("garbage", "%s:abc" % room, "%s:1,:2" % room):
        res = rc.poll(room, cur, timeout=1)
        expect(tap, res, 400, "bad_request", "poll with cursor %r" % cur)
        sub = rc.SSE(room, cursor=cur).open()
        sub.wait_eof(5)
        expect(tap, rc.Resp(sub.status, sub.headers, sub.body), 400,
               "bad_request", "SSE with ?cursor=%r" % cur)
        sub.close()
    res = rc.poll(room, "%s:0" % room, timeout="abc")
    expect(tap, res, 400, "bad_request", "poll with timeout=abc")


def paths_and_methods(tap, room):
    for path in ("/nope", "/rooms", "/rooms/%s" % room,
                 "/rooms/%s/nope" % room):
        res = rc.request("GET", rc.PREFIX + path)
        expect(tap, res, 404, "not_found", "GET %s" % path)
    base = "%s/rooms/%s/messages" % (rc.PREFIX, room)
    for method in ("DELETE", "PUT", "PATCH"):
        res = rc.request(method, base, b"{}",
                         {"Content-Type": "application/json"})
        expect(tap, res, 405, "method_not_allowed", "%s on messages" % method)
    res = rc.request("POST", rc.PREFIX + "/poll?rooms=" + room, b"{}",
                     {"Content-Type": "application/json"})
    expect(tap, res, 405, "method_not_allowed", "POST on /poll")
    tap.eq(rc.stored_count(room), 1, "wrong methods stored nothing")


def health(tap):
    res = rc.request("GET", rc.PREFIX + "/health")
    tap.eq((res.status, res.json), (200, {"status": "ok"}),
           "/rt/health: 200 {\"status\":\"ok\"}")
    tap.ok((res.worker or "").isdigit(), "/rt/health has X-Roomcast-Worker",
           "a pid", res.worker)


def main(tap):
    rc.require_stack(tap)
    room = rc.public_room("err")
    bad_rooms(tap)
    bad_bodies(tap, room)
    bad_media(tap, room)
    too_big(tap, room)
    bad_cursors(tap, room)
    paths_and_methods(tap, room)
    health(tap)
    tap.ok(not NO_WORKER, "every error answer names its worker "
           "(X-Roomcast-Worker)", [], NO_WORKER)


rc.run(main)
