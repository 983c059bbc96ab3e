#!/usr/bin/env python3
"""presence_heartbeat.t - staying online by heartbeats, and expiry.

What it is for: checking, with presence_timeout_seconds set to 6 for the
run, that a client present by HTTP heartbeats alone (POST presence every
2 s) stays online, with one join and no leave, for twice the timeout; that
once it stops, it is still listed until the timeout and its leave reaches
another subscriber within the timeout plus 5 s of its last heartbeat; and
that an open SSE stream stays present across several timeouts with no
heartbeat of its own (the workers refresh it).
What it is not for: killed workers (presence_kill.t) or the batching of
refreshes (presence_batch.t).
Who uses it: `make test` (through prove), against the running stack. It
changes presence_timeout_seconds for about 30 s and restores it, also
when the whole-file time limit ends it; presence tests of other files
running at the same moment would see the short timeout.
"""

import os
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rc  # noqa: E402

TAG = "%d_%d" % (os.getpid(), int(time.time()))
TIMEOUT_S = 6
BEAT_S = 2.0
BEATS_FOR_S = 2 * TIMEOUT_S
GRACE_S = 5             # the contract: leave within the timeout plus 5 s
SETTLE_S = 11           # workers reread settings every 5 s, then a round


def user(name):
    return "pb_%s_%s" % (name, TAG)


class Watch:
    """Reads an SSE stream and keeps every presence event it carries, so
    that a check about one user never drops another user's events."""

    def __init__(self, sse):
        self.sse = sse
        self.log = []           # (monotonic time, event, user)

    def _take(self, item):
        if rc.is_presence(item):
            env = item["json"]
            self.log.append((time.monotonic(), env["data"].get("event"),
                             env.get("from")))
            return True
        return False

    def read(self, seconds):
        """Everything for seconds; the presence events that came."""
        got = []
        for it in self.sse.quiet(seconds):
            if self._take(it):
                got.append(self.log[-1])
        return got

    def until(self, event, who, timeout_s):
        """Reads until who's event arrives; its log entry, or None."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            item = self.sse.next_item(deadline - time.monotonic())
            if item is None:
                break
            if self._take(item) and self.log[-1][1:] == (event, who):
                return self.log[-1]
        return None

    def events_of(self, who):
        return [e for _, e, u in self.log if u == who]


def heartbeat_phase(tap, room, toks, watch):
    hank = user("hank")
    listed_each = True
    statuses = []
    t_start = time.monotonic()
    t_last = t_start
    while time.monotonic() - t_start < BEATS_FOR_S:
        res = rc.presence_post(room, toks["hank"], state={"beat": True})
        t_last = time.monotonic()
        statuses.append(res.status)
        users = rc.online_users(res)
        listed_each = listed_each and users is not None and hank in users
        watch.read(BEAT_S)
    tap.ok(set(statuses) == {200} and listed_each,
           "%d heartbeats %.0f s apart: each 200 and listing the user"
           % (len(statuses), BEAT_S), "all 200, listed", statuses)
    tap.eq(watch.events_of(hank), ["join"],
           "over %d s (twice the timeout) of heartbeats: one join and no "
           "leave" % BEATS_FOR_S)
    return t_last


def expiry_phase(tap, room, toks, watch, t_last):
    hank = user("hank")
    # Still online shortly before the timeout runs out.
    watch.read(max(t_last + TIMEOUT_S - 1.5 - time.monotonic(), 0))
    users = rc.online_users(rc.presence_get(room, toks["carol"]))
    tap.ok(watch.events_of(hank) == ["join"] and users is not None
           and hank in users,
           "no heartbeat for %.1f s (< the timeout): still listed, no "
           "leave" % (TIMEOUT_S - 1.5), "listed, events ['join']",
           (users, watch.events_of(hank)))
    got = watch.until("leave", hank, TIMEOUT_S + GRACE_S + 3)
    took = (got[0] if got else time.monotonic()) - t_last
    tap.diag("leave %.2f s after the last heartbeat" % took)
    tap.ok(got is not None and took <= TIMEOUT_S + GRACE_S,
           "the leave arrives within the timeout plus %d s of the last "
           "heartbeat" % GRACE_S, "<= %d s" % (TIMEOUT_S + GRACE_S),
           "%s after %.2f s" % ("a leave" if got else "no leave", took))
    users = rc.online_users(rc.presence_get(room, toks["carol"]))
    tap.ok(users is not None and hank not in users,
           "after the leave the user is not listed", "not listed", users)


def main(tap):
    rc.require_presence_api(tap)
    room = rc.make_room("phb")
    names = ["hank", "carol", "ivan"]
    toks = {n: rc.issue_token(user(n), [room], [room]) for n in names}
    restore = rc.settings_restorer(tap, ["presence_timeout_seconds"])
    streams = []
    try:
        rc.set_setting("presence_timeout_seconds", str(TIMEOUT_S))
        time.sleep(SETTLE_S)
        carol = rc.AuthSSE(room, toks["carol"]).open()
        ivan = rc.AuthSSE(room, toks["ivan"]).open()
        streams += [carol, ivan]
        tap.ok(carol.status == 200 and ivan.status == 200,
               "two SSE streams open", "200 200",
               [carol.status, ivan.status])
        watch = Watch(carol)
        got = watch.until("join", user("ivan"), 5)
        tap.ok(got is not None, "the other stream's user joins", "a join",
               watch.log)

        t_last = heartbeat_phase(tap, room, toks, watch)
        expiry_phase(tap, room, toks, watch, t_last)

        watch.read(0.5)
        ivan_events = watch.events_of(user("ivan"))[1:]
        users = rc.online_users(rc.presence_get(room, toks["carol"]))
        tap.ok(not ivan_events and users is not None
               and user("ivan") in users,
               "an SSE stream open for %.0f s (several timeouts) stays "
               "listed, with no leave" % (time.monotonic()
                                          - ivan.opened[0]),
               "listed, no event", (users, ivan_events))
    finally:
        for sse in streams:
            sse.close()
        restore()
        rc.sql("DELETE FROM roomcast.presence WHERE room = %s"
               % rc.lit(room))
        rc.sql("DELETE FROM roomcast.tokens WHERE user_id IN (%s)"
               % ", ".join(rc.lit(user(n)) for n in names))
        rc.sql("DELETE FROM roomcast.rooms WHERE name = %s" % rc.lit(room))


if __name__ == "__main__":
    rc.run(main, limit_s=120)
