#!/usr/bin/env python3
"""auth_jwt.t - JSON Web Tokens signed with HS256 and the jwt_secret setting.

What it is for: checking that, once jwt_secret is set, a JWT whose
payload is {"sub","exp","can_read","can_write"} works as a token on
publish, history, SSE and long-poll (from = its sub), by header, cookie
or ?token=, and for POST /rt/tickets; that a bad signature, a changed
payload, an expired exp, alg "none" and any alg but HS256 are 401; that
the rights claims are enforced (403); that revoke_user() ends a JWT
user's stream; that with jwt_secret empty again JWTs are refused; and
that no log line holds a JWT or the secret.
What it is not for: tokens issued with SQL (auth_tokens.t).
Who uses it: `make test` (through prove), against the running stack. It
changes jwt_secret and puts it back in a finally block.
"""

import base64
import hashlib
import hmac
import json
import os
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rc  # noqa: E402

TAG = "%d_%d" % (os.getpid(), int(time.time()))
RELOAD_S = 10


def b64u(data):
    if isinstance(data, str):
        data = data.encode("utf-8")
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def jwt(payload, secret, header=None, digest=hashlib.sha256):
    """A signed JWT; header defaults to HS256. digest None leaves the
    signature empty (alg none)."""
    head = header or {"alg": "HS256", "typ": "JWT"}
    signing = b64u(json.dumps(head)) + "." + b64u(json.dumps(payload))
    sig = ""
    if digest is not None:
        sig = b64u(hmac.new(secret.encode("utf-8"), signing.encode("ascii"),
                            digest).digest())
    return rc.remember_secret(signing + "." + sig)


def claims(sub, room, exp_in=60, read=True, write=True):
    return {"sub": sub, "exp": int(time.time()) + exp_in,
            "can_read": [room] if read else [],
            "can_write": [room] if write else []}


def expect(tap, res, status, code, name):
    bad = rc.answer_problems(res, status, code)
    return tap.ok(not bad, name, "%s %s" % (status, code or ""),
                  "%s: %s" % ("; ".join(bad), res))


def sse_expect(tap, room, token, via, status, code, name):
    got, body, sse = rc.sse_answer(room, token, via)
    if got == 200:
        sse.close()
    return expect(tap, (got, body), status, code, name)


def check_valid(tap, room, secret):
    good = jwt(claims("carol", room), secret)
    res = rc.publish_as(room, good, id="jwt-1")
    expect(tap, res, 201, None, "valid JWT by header: publish 201")
    stored = rc.sql("SELECT from_user FROM roomcast.messages WHERE room = "
                    "%s AND client_id = 'jwt-1'" % rc.lit(room))
    tap.eq(stored, "carol", "the message is from the JWT's sub, carol")
    hist = rc.history_as(room, good, after=0)
    msgs = hist.json.get("messages") if isinstance(hist.json, dict) else None
    tap.ok(isinstance(msgs, list) and msgs and msgs[-1].get("from") ==
           "carol", "valid JWT: history 200, envelope from carol",
           "from carol", hist)
    for via in ("bearer", "cookie", "query"):
        sse_expect(tap, room, good, via, 200, None,
                   "valid JWT by %s: SSE 200" % via)
    expect(tap, rc.poll_as(room, good, "cookie", timeout=1), 200, None,
           "valid JWT by cookie: long-poll 200")
    res, ticket = rc.ticket_for(good)
    tap.ok(res.status == 200 and ticket is not None,
           "valid JWT: POST /rt/tickets 200", "200 ticket", res)
    if ticket:
        got, body, sse = rc.sse_answer(room, ticket, "ticket")
        try:
            tap.eq(got, 200, "the JWT's ticket opens an SSE stream")
            if got == 200:
                time.sleep(0.3)
                rc.publish_as(room, good, id="jwt-ticket")
                evs = sse.collect(1, 5, lambda e: rc.ev_room(e) == room)
                env = evs[0]["json"] if evs else None
                tap.ok(isinstance(env, dict) and env.get("from") == "carol",
                       "the JWT ticket's stream delivers, from carol",
                       "from carol", env)
        finally:
            if sse is not None:
                sse.close()
        got, body, _ = rc.sse_answer(room, ticket, "ticket")
        expect(tap, (got, body), 401, "unauthorized",
               "the JWT's ticket a second time: 401")


def check_refused(tap, room, secret):
    count_before = rc.stored_count(room)
    other = "x" * 40
    now = int(time.time())
    good = jwt(claims("carol", room), secret)
    head, payload, sig = good.split(".")
    forged = dict(claims("carol", room), sub="mallory")
    cases = [
        ("a signature made with another secret",
         jwt(claims("carol", room), other)),
        ("a changed payload under the old signature",
         rc.remember_secret(head + "." + b64u(json.dumps(forged)) + "." +
                            sig)),
        ("an exp in the past", jwt(dict(claims("carol", room),
                                        exp=now - 60), secret)),
        ("alg none and no signature",
         jwt(claims("carol", room), secret,
             {"alg": "none", "typ": "JWT"}, None)),
        ("alg none with the HS256 signature",
         rc.remember_secret(b64u(json.dumps({"alg": "none"})) + "." +
                            payload + "." + sig)),
        ("alg HS512", jwt(claims("carol", room), secret,
                          {"alg": "HS512", "typ": "JWT"}, hashlib.sha512)),
        ("two parts only", rc.remember_secret(head + "." + payload)),
        ("an empty signature", rc.remember_secret(head + "." + payload +
                                                  ".")),
    ]
    for what, token in cases:
        expect(tap, rc.publish_as(room, token), 401, "unauthorized",
               "JWT with %s: publish 401" % what)
        sse_expect(tap, room, token, "bearer", 401, "unauthorized",
                   "JWT with %s: SSE 401" % what)
    tap.eq(rc.stored_count(room), count_before,
           "the refused JWT publishes stored nothing")
    ro = jwt(claims("carol", room, write=False), secret)
    expect(tap, rc.publish_as(room, ro), 403, "forbidden",
           "JWT without can_write for the room: publish 403")
    wo = jwt(claims("carol", room, read=False), secret)
    sse_expect(tap, room, wo, "bearer", 403, "forbidden",
               "JWT without can_read for the room: SSE 403")


def check_revoke_user(tap, room, secret):
    who = "carol_%s" % TAG
    token = jwt(claims(who, room, exp_in=300), secret)
    got, body, sse = rc.sse_answer(room, token)
    if not tap.eq(got, 200, "a JWT stream of %s opens" % who):
        return
    try:
        time.sleep(0.3)
        rc.sql("SELECT roomcast.revoke_user(%s)" % rc.lit(who))
        start = time.monotonic()
        ended = sse.wait_eof(2.5)
        took = time.monotonic() - start
        tap.ok(ended and took <= 2.0, "revoke_user ends the JWT user's "
               "stream within 2 s", "<= 2 s",
               "%s after %.2f s" % ("ended" if ended else "open", took))
    finally:
        sse.close()


def main(tap):
    rc.require_stack(tap)
    was = rc.setting("jwt_secret")
    restore = rc.settings_restorer(tap, ["jwt_secret"])
    secret = rc.remember_secret("roomcast-test-" + rc.sha256_hex(TAG))
    room = rc.room_name("jwt")
    probe = jwt(claims("carol", room, exp_in=120), secret)
    try:
        rc.set_setting("jwt_secret", secret)
        start = time.monotonic()
        ready = rc.wait_until(
            lambda: rc.history_as(room, probe).status == 200, RELOAD_S, 0.5)
        if not tap.ok(ready, "a valid JWT is accepted within %d s of "
                      "setting jwt_secret" % RELOAD_S, "200",
                      rc.history_as(room, probe)):
            return
        tap.diag("accepted after %.1f s" % (time.monotonic() - start))
        check_valid(tap, room, secret)
        check_refused(tap, room, secret)
        check_revoke_user(tap, room, secret)
    finally:
        restore()
    if was != "":
        tap.diag("jwt_secret was set before this test; not checking that "
                 "an empty one refuses JWTs")
        rc.check_logs_clean(tap)
        return
    gone = rc.wait_until(
        lambda: rc.history_as(room, probe).status == 401, RELOAD_S, 0.5)
    tap.ok(gone, "with jwt_secret empty again, the JWT is refused within "
           "%d s" % RELOAD_S, "401", rc.history_as(room, probe))
    rc.check_logs_clean(tap)


if __name__ == "__main__":
    rc.run(main, limit_s=120)
