#!/usr/bin/env python3
"""presence_kill.t - a user whose worker is killed leaves by expiry.

What it is for: checking that when the worker process holding a user's
only SSE stream is killed with SIGKILL (so it can neither say goodbye nor
refresh its rows), another subscriber gets that user's leave within
presence_timeout_seconds plus 5 s, through the sweep of a surviving
worker; and that the workers come back afterwards.
What it is not for: a stream that closes normally (presence_http.t) or
heartbeats (presence_heartbeat.t).
Who uses it: `make test` (through prove), against the running stack with
at least two workers. It kills one worker, which ends every stream that
worker held, other tests' streams included, and then restarts all workers
with `devstack.sh restart-workers`. It sets presence_timeout_seconds to 6
for the run and restores it, also when the whole-file time limit ends it.
"""

import os
import signal
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rc  # noqa: E402

TAG = "%d_%d" % (os.getpid(), int(time.time()))
TIMEOUT_S = 6
GRACE_S = 5             # the contract: leave within the timeout plus 5 s
SETTLE_S = 11           # workers reread settings every 5 s, then a round
TRIES = 12              # streams opened to find one on the other worker


def user(name):
    return "pk_%s_%s" % (name, TAG)


def observer_elsewhere(room, token, pid):
    """An SSE stream on a worker other than pid, or None. The streams
    that landed on pid are closed again."""
    for _ in range(TRIES):
        sse = rc.AuthSSE(room, token).open()
        if sse.status == 200 and sse.worker != pid:
            return sse
        sse.close()
    return None


def leave_after_kill(tap, room, toks, observer, pid):
    jack = user("jack")
    users = rc.wait_until(lambda: jack in (rc.online_users(rc.presence_get(
        room, toks["carol"])) or []), 5)
    tap.ok(users, "the victim's user is listed before the kill", "listed",
           rc.presence_get(room, toks["carol"]))
    t0 = time.monotonic()
    os.kill(int(pid), signal.SIGKILL)
    tap.diag("sent SIGKILL to worker %s at t0" % pid)
    got = observer.collect(1, TIMEOUT_S + GRACE_S + 5,
                           lambda it: rc.is_presence(it, "leave", jack))
    took = time.monotonic() - t0
    tap.diag("leave %.2f s after the kill" % took)
    ends = [it for it in observer.others if it.get("kind") == "eof"]
    tap.ok(len(got) == 1 and took <= TIMEOUT_S + GRACE_S,
           "the leave reaches a subscriber on the other worker within "
           "the timeout plus %d s" % GRACE_S,
           "one leave within %d s" % (TIMEOUT_S + GRACE_S),
           "%d leave(s) after %.2f s%s" % (
               len(got), took,
               " (the observer's stream ended)" if ends else ""))
    rows = rc.sql("SELECT count(*) FROM roomcast.presence WHERE room = %s "
                  "AND user_id = %s" % (rc.lit(room), rc.lit(jack)))
    tap.eq(rows, "0", "the dead worker's row was swept")


def restart_workers(tap):
    proc = rc.stack("restart-workers")
    up = rc.wait_until(rc.presence_api_up, 20, 0.5)
    tap.ok(proc.returncode == 0 and up,
           "devstack.sh restart-workers brings the workers back",
           "exit 0 and presence served",
           "exit %d, up %s: %s" % (proc.returncode, up,
                                   (proc.stderr or proc.stdout)[-300:]))


def main(tap):
    rc.require_presence_api(tap)
    room = rc.make_room("pk")
    toks = {n: rc.issue_token(user(n), [room], [room])
            for n in ("jack", "carol")}
    restore = rc.settings_restorer(tap, ["presence_timeout_seconds"])
    killed = False
    streams = []
    try:
        rc.set_setting("presence_timeout_seconds", str(TIMEOUT_S))
        time.sleep(SETTLE_S)
        victim = rc.AuthSSE(room, toks["jack"]).open()
        streams.append(victim)
        pid = victim.worker
        tap.ok(victim.status == 200 and pid and pid.isdigit(),
               "the victim's stream is open and names its worker",
               "200 and a pid", (victim.status, pid))
        observer = observer_elsewhere(room, toks["carol"], pid)
        if observer is None:
            tap.ok(False, "an observing stream on another worker than %s "
                   "(needs ROOMCAST_WORKERS >= 2)" % pid)
            return
        streams.append(observer)
        tap.ok(True, "observer on worker %s, victim on worker %s"
               % (observer.worker, pid))
        killed = True
        tap.at_timeout(lambda: rc.stack("restart-workers"))
        leave_after_kill(tap, room, toks, observer, pid)
    finally:
        for sse in streams:
            sse.close()
        restore()
        if killed:
            restart_workers(tap)
        rc.sql("DELETE FROM roomcast.presence WHERE room = %s"
               % rc.lit(room))
        rc.sql("DELETE FROM roomcast.tokens WHERE user_id IN (%s)"
               % ", ".join(rc.lit(user(n)) for n in ("jack", "carol")))
        rc.sql("DELETE FROM roomcast.rooms WHERE name = %s" % rc.lit(room))


if __name__ == "__main__":
    rc.run(main, limit_s=120)
