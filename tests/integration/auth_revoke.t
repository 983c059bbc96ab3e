#!/usr/bin/env python3
"""auth_revoke.t - revoke_token(), revoke_user() and kick() close streams.

What it is for: checking, with streams held on both worker processes,
that open SSE streams end and held long-polls (timeout=20) answer within
2 s of SELECT roomcast.revoke_token(...), of roomcast.revoke_user(...),
and, for one room only, of roomcast.kick(user, room); that streams of
other tokens, other users and other rooms stay open; and that afterwards
a new request with a revoked token is 401 while a kicked user may come
back.
What it is not for: the SQL side alone (auth_sql.t) or tickets
(auth_tickets.t).
Who uses it: `make test` (through prove), against the running stack with
ROOMCAST_WORKERS >= 2.
"""

import json
import os
import sys
import threading
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rc  # noqa: E402

TAG = "%d_%d" % (os.getpid(), int(time.time()))
LIMIT_S = 2.0           # the contract's bound
WATCH_S = 3.0           # how long the test watches after the SQL call


class HeldPoll:
    """A long-poll held in a thread; remembers when and how it ended."""

    def __init__(self, rooms, token, timeout):
        self.res = None
        self.error = None
        self.done_at = None
        self.thread = threading.Thread(target=self._run, daemon=True,
                                       args=(rooms, token, timeout))
        self.thread.start()

    def _run(self, rooms, token, timeout):
        try:
            self.res = rc.poll_as(rooms, token, timeout=timeout,
                                  http_timeout_s=timeout + 10)
        except OSError as exc:
            self.error = exc
        self.done_at = time.monotonic()


def open_streams(tap, rooms, token, what, want_pids=2, most=8):
    """SSE streams of token until they sit on want_pids worker pids (at
    most `most` streams). Returns the open streams."""
    streams = []
    pids = set()
    while len(streams) < most and len(pids) < want_pids:
        status, body, sse = rc.sse_answer(rooms, token)
        if status != 200:
            tap.ok(False, "%s: SSE stream opens" % what, 200,
                   (status, body))
            break
        streams.append(sse)
        pids.add(sse.worker)
    tap.ok(len(pids) >= want_pids, "%s: %d streams held on %d worker pids"
           % (what, len(streams), len(pids)), "%d pids" % want_pids,
           sorted(pids))
    return streams


def eof_time(sse, deadline):
    """When the stream's connection ended (monotonic), or None if it was
    still open at deadline."""
    while True:
        left = deadline - time.monotonic()
        item = sse.next_item(left) if left > 0 else None
        if item is None:
            return None
        sse.others.append(item)
        if item["kind"] == "eof":
            return item


def check_ended(tap, streams, polls, t0, what):
    """Every stream ended, and every poll answered, within LIMIT_S of t0."""
    deadline = t0 + WATCH_S
    late = []
    unclean = 0
    for sse in streams:
        item = eof_time(sse, deadline)
        if item is None:
            late.append("SSE on %s still open" % sse.worker)
        else:
            if item["at"] - t0 > LIMIT_S:
                late.append("SSE on %s ended after %.2f s"
                            % (sse.worker, item["at"] - t0))
            if not item.get("clean"):
                unclean += 1
    tap.ok(streams and not late, "%s: all %d SSE streams ended within %.0f s"
           % (what, len(streams), LIMIT_S), "all ended", late)
    tap.eq(unclean, 0, "%s: each stream ended between events" % what)
    for p in polls:
        p.thread.join(max(0.0, deadline - time.monotonic()))
    late = []
    pids = set()
    for p in polls:
        if p.done_at is None:
            late.append("poll still held")
        elif p.done_at - t0 > LIMIT_S:
            late.append("poll answered after %.2f s (%s)"
                        % (p.done_at - t0, p.res or p.error))
        if p.res is not None:
            pids.add(p.res.worker)
    tap.ok(polls and not late, "%s: all %d held long-polls answered within "
           "%.0f s" % (what, len(polls), LIMIT_S), "all answered", late)
    tap.diag("%s: long-polls were held on worker pids %s"
             % (what, sorted(p for p in pids if p)))


def check_still_open(tap, streams, polls, what):
    closed = [s.worker for s in streams if s.eof.is_set()]
    tap.ok(streams and not closed, "%s: %d streams stay open"
           % (what, len(streams)), "all open", "closed on %s" % closed)
    if polls:
        # A held poll may rightly be answered by an ephemeral event (the
        # kicked user's presence leave); what must not happen is an
        # answer that carries no event at all, which is how an ended
        # poll looks.
        answered = [p.res for p in polls if p.done_at is not None
                    and not presence_only(p.res)]
        tap.ok(not answered, "%s: %d long-polls stay held or get only "
               "presence events" % (what, len(polls)), "all held", answered)


def presence_only(res):
    try:
        msgs = json.loads(res.body)["messages"]
    except (ValueError, KeyError, TypeError, AttributeError):
        return False
    return bool(msgs) and all(m.get("type") == "presence" for m in msgs)


def close_all(streams):
    for s in streams:
        s.close()


def start_polls(rooms, token, count, timeout):
    polls = [HeldPoll(rooms, token, timeout) for _ in range(count)]
    # Long enough for each poll to reach a worker and be parked there.
    time.sleep(0.8)
    return polls


def check_revoke_token(tap):
    user = "rvt_%s" % TAG
    room = rc.room_name("rvt")
    target = rc.issue_token(user, [room], [room])
    sibling = rc.issue_token(user, [room], [room])
    streams = open_streams(tap, room, target, "revoke_token, target token")
    keep = open_streams(tap, room, sibling, "revoke_token, same user's "
                        "other token", most=4)
    polls = start_polls(room, target, 4, 20)
    keep_polls = start_polls(room, sibling, 2, 8)
    try:
        rc.revoke_token(target)
        t0 = time.monotonic()
        check_ended(tap, streams, polls, t0, "revoke_token")
        check_still_open(tap, keep, keep_polls, "revoke_token, the other "
                         "token of the same user")
        res = rc.history_as(room, target)
        tap.eq(res.status, 401, "after revoke_token, a new request with the "
               "token is 401")
        res = rc.history_as(room, sibling)
        tap.eq(res.status, 200, "the user's other token still works")
    finally:
        close_all(streams + keep)
        rc.sql("SELECT roomcast.revoke_user(%s)" % rc.lit(user))


def check_revoke_user(tap):
    user = "rvu_%s a" % TAG
    other = "rvu_%s b" % TAG
    room = rc.room_name("rvu")
    t1 = rc.issue_token(user, [room], [room])
    t2 = rc.issue_token(user, [room], [room])
    t3 = rc.issue_token(other, [room], [room])
    streams = open_streams(tap, room, t1, "revoke_user, first token")
    streams += open_streams(tap, room, t2, "revoke_user, second token",
                            want_pids=1, most=2)
    keep = open_streams(tap, room, t3, "revoke_user, another user",
                        most=4)
    polls = start_polls(room, t1, 2, 20) + start_polls(room, t2, 2, 20)
    keep_polls = start_polls(room, t3, 2, 8)
    try:
        got = rc.sql("SELECT roomcast.revoke_user(%s)" % rc.lit(user))
        t0 = time.monotonic()
        tap.eq(got, "2", "revoke_user revoked the user's 2 tokens")
        check_ended(tap, streams, polls, t0, "revoke_user")
        check_still_open(tap, keep, keep_polls, "revoke_user, another user")
        codes = [rc.history_as(room, t).status for t in (t1, t2, t3)]
        tap.eq(codes, [401, 401, 200], "after revoke_user, both tokens of "
               "the user are 401, the other user's is 200")
    finally:
        close_all(streams + keep)
        rc.sql("SELECT roomcast.revoke_user(%s)" % rc.lit(other))


def check_kick(tap):
    user = "kck_%s" % TAG
    other = "kck_%s_other" % TAG
    room = rc.room_name("kck")
    elsewhere = rc.room_name("kckb")
    tok = rc.issue_token(user, [room, elsewhere], [room, elsewhere])
    otok = rc.issue_token(other, [room], [room])
    streams = open_streams(tap, room, tok, "kick, the user in the room")
    keep = open_streams(tap, elsewhere, tok, "kick, the user in another "
                        "room", want_pids=1, most=2)
    keep += open_streams(tap, room, otok, "kick, another user in the room",
                         most=4)
    polls = start_polls(room, tok, 4, 20)
    keep_polls = start_polls(elsewhere, tok, 1, 8) + \
        start_polls(room, otok, 1, 8)
    try:
        rc.sql("SELECT roomcast.kick(%s, %s)" % (rc.lit(user), rc.lit(room)))
        t0 = time.monotonic()
        check_ended(tap, streams, polls, t0, "kick")
        check_still_open(tap, keep, keep_polls, "kick, the user's stream in "
                         "another room and another user's in the room")
        status, body, sse = rc.sse_answer(room, tok)
        if sse is not None and status == 200:
            sse.close()
        tap.eq(status, 200, "a kicked user's token still opens the room "
               "(kick changes no right)")
    finally:
        close_all(streams + keep)
        rc.sql("SELECT roomcast.revoke_user(%s)" % rc.lit(user))
        rc.sql("SELECT roomcast.revoke_user(%s)" % rc.lit(other))


def main(tap):
    rc.require_stack(tap)
    check_revoke_token(tap)
    check_revoke_user(tap)
    check_kick(tap)
    rc.check_logs_clean(tap)


if __name__ == "__main__":
    rc.run(main, limit_s=150)
