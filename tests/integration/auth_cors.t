#!/usr/bin/env python3
"""auth_cors.t - cross-origin requests and the allowed_origins setting.

What it is for: checking that with allowed_origins = 'http://good.example'
a preflight (OPTIONS with Origin and Access-Control-Request-Method POST)
on /rt/rooms/x/messages answers 204 with Access-Control-Allow-Origin,
-Methods (with POST) and -Headers (with Authorization and Content-Type);
that an origin not in the list, or one that merely starts with an allowed
origin, gets no Access-Control-* header at all; that a normal GET, an SSE
stream and a publish from the good origin carry Access-Control-Allow-
Origin; and that with the setting empty again the good origin is no
longer allowed.
What it is not for: WebSocket origins (roomcast-ws).
Who uses it: `make test` (through prove), against the running stack. It
changes allowed_origins and puts it back in a finally block.
"""

import os
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rc  # noqa: E402

TAG = "%d_%d" % (os.getpid(), int(time.time()))
GOOD = "http://good.example"
EVIL = "http://evil.example"
RELOAD_S = 10


def preflight(origin, path="/rooms/x/messages"):
    return rc.request("OPTIONS", rc.PREFIX + path, headers={
        "Origin": origin,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type"})


def acao(res):
    return res.header("access-control-allow-origin")


def cors_headers(res):
    return {k: v for k, v in res.headers.items()
            if k.startswith("access-control-")}


def listed(value, name):
    """True when a comma-separated header value names name (any case)."""
    items = [v.strip().lower() for v in (value or "").split(",")]
    return name.lower() in items


def check_preflight(tap):
    res = preflight(GOOD)
    tap.eq(res.status, 204, "preflight from the allowed origin: 204")
    tap.eq(acao(res), GOOD, "preflight: Access-Control-Allow-Origin is the "
           "origin")
    methods = res.header("access-control-allow-methods")
    tap.ok(listed(methods, "POST"), "preflight: Access-Control-Allow-Methods "
           "lists POST", "POST among them", methods)
    allowed = res.header("access-control-allow-headers")
    tap.ok(listed(allowed, "Authorization") and
           listed(allowed, "Content-Type"),
           "preflight: Access-Control-Allow-Headers lists Authorization and "
           "Content-Type", "both", allowed)
    for what, origin in (("another origin", EVIL),
                         ("an origin that starts with the allowed one",
                          GOOD + ".evil.example"),
                         ("the allowed host on another port",
                          GOOD + ":8443"),
                         ("the allowed host over https",
                          "https://good.example")):
        res = preflight(origin)
        tap.eq(cors_headers(res), {}, "preflight from %s: no "
               "Access-Control-* headers" % what)


def check_requests(tap):
    user = "cors_%s" % TAG
    room = rc.room_name("cors")
    tok = rc.issue_token(user, [room], [room])
    try:
        res = rc.auth_request("GET", "/rooms/%s/messages" % room, tok,
                              headers={"Origin": GOOD})
        tap.ok(res.status == 200 and acao(res) == GOOD,
               "GET with the allowed Origin: 200 with "
               "Access-Control-Allow-Origin", "200 " + GOOD,
               (res.status, cors_headers(res)))
        res = rc.auth_request("GET", "/rooms/%s/messages" % room, tok,
                              headers={"Origin": EVIL})
        tap.ok(res.status == 200 and cors_headers(res) == {},
               "GET with another Origin: no Access-Control-* headers",
               "200 {}", (res.status, cors_headers(res)))
        res = rc.auth_request("POST", "/rooms/%s/messages" % room, tok,
                              body='{"type":"text","data":1}',
                              headers={"Content-Type": "application/json",
                                       "Origin": GOOD})
        tap.ok(res.status == 201 and acao(res) == GOOD,
               "POST with the allowed Origin: 201 with "
               "Access-Control-Allow-Origin", "201 " + GOOD,
               (res.status, cors_headers(res)))
        status, body, sse = rc.sse_answer(room, tok, "bearer",
                                          headers={"Origin": GOOD})
        got = sse.headers.get("access-control-allow-origin")
        if status == 200:
            sse.close()
        tap.ok(status == 200 and got == GOOD,
               "SSE with the allowed Origin: 200 with "
               "Access-Control-Allow-Origin", "200 " + GOOD, (status, got))
    finally:
        rc.sql("SELECT roomcast.revoke_user(%s)" % rc.lit(user))


def every_worker_answers(origin):
    """True once preflights answered by at least two worker processes all
    carry origin as Access-Control-Allow-Origin (None: no header). Each
    worker reloads settings on its own schedule, so one answer says
    nothing about the other worker."""
    pids = set()
    for _ in range(6):
        res = preflight(GOOD)
        if acao(res) != origin:
            return False
        pids.add(res.worker)
    return len(pids) >= 2


def main(tap):
    rc.require_stack(tap)
    was = rc.setting("allowed_origins")
    restore = rc.settings_restorer(tap, ["allowed_origins"])
    try:
        rc.set_setting("allowed_origins", GOOD)
        ready = rc.wait_until(lambda: every_worker_answers(GOOD), RELOAD_S,
                              0.5)
        if not tap.ok(ready, "the allowed origin is honoured within %d s of "
                      "the setting" % RELOAD_S, GOOD,
                      cors_headers(preflight(GOOD))):
            return
        check_preflight(tap)
        check_requests(tap)
    finally:
        restore()
    if was == "":
        gone = rc.wait_until(lambda: every_worker_answers(None), RELOAD_S,
                             0.5)
        tap.ok(gone, "with allowed_origins empty again, the origin gets no "
               "Access-Control-Allow-Origin within %d s" % RELOAD_S, None,
               cors_headers(preflight(GOOD)))
    rc.check_logs_clean(tap)


if __name__ == "__main__":
    rc.run(main, limit_s=90)
