#!/usr/bin/env python3
"""auth_sql.t - the SQL side of tokens, tickets, revocation and kicks.

What it is for: checking sql/002_auth.sql through psql alone: token and
ticket texts and what is stored of them (the hash only), the shapes of
users and room patterns (SQLSTATE 22023 otherwise), token_identity() for
valid, unknown, expired and revoked tokens, the control notifications of
revoke_token(), revoke_user() and kick(), single use of tickets (also
under two concurrent redemptions), room_access(), the new settings and
their checks, and that no view shows a hash.
What it is not for: HTTP; the other auth_*.t files test the workers.
Who uses it: `make test` (through prove). Users and rooms carry this run's
pid and time, and its tokens and tickets are deleted at the end.
"""

import os
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rc  # noqa: E402

TAG = "%d_%d" % (os.getpid(), int(time.time()))


def user(name):
    return "sq_%s_%s" % (name, TAG)


def identity(token):
    """token_identity() of a token text: (user, read, write, epoch) or
    None."""
    out = rc.sql("SELECT user_id, can_read::text, can_write::text, "
                 "coalesce(expires_at_epoch::text, 'never') "
                 "FROM roomcast.token_identity(%s)"
                 % rc.lit(rc.sha256_hex(token)))
    return tuple(out.split("|")) if out else None


def redeem(ticket):
    out = rc.sql("SELECT user_id, can_read::text, can_write::text, "
                 "coalesce(token_hash, 'null'), "
                 "coalesce(expires_at_epoch::text, 'never') "
                 "FROM roomcast.redeem_ticket(%s)"
                 % rc.lit(rc.sha256_hex(ticket)))
    return tuple(out.split("|")) if out else None


def issue_ticket(who, read, write, token_hex, epoch):
    out = rc.sql("SELECT roomcast.issue_ticket(%s, %s, %s, %s, %s)"
                 % (rc.lit(who), rc.sql_array(read), rc.sql_array(write),
                    rc.lit(token_hex),
                    "NULL" if epoch is None else int(epoch)))
    return rc.remember_secret(out)


def check_token_text(tap):
    alice = user("alice")
    tok = rc.issue_token(alice, ["general", "team-*"], ["general"],
                         "1 day", "auth_sql")
    other = rc.issue_token(alice)
    tap.ok(rc.re.match(r"^rct_[0-9a-f]{64}$", tok) is not None,
           "issue_token returns rct_ and 64 hex digits", "rct_<64 hex>", tok)
    tap.ok(tok != other, "two tokens differ", "different", [tok, other])
    stored = rc.sql("SELECT count(*) FROM roomcast.tokens t WHERE "
                    "t.token_hash = decode(%s, 'hex')"
                    % rc.lit(rc.sha256_hex(tok)))
    tap.eq(stored, "1", "the token's SHA-256 is stored")
    leaked = rc.sql("SELECT count(*) FROM roomcast.tokens t WHERE "
                    "strpos(t::text, %s) > 0 OR strpos(t::text, %s) > 0"
                    % (rc.lit(tok[4:]), rc.lit(tok[4:36])))
    tap.eq(leaked, "0", "no column of roomcast.tokens holds the token text")
    got = identity(tok)
    want_epoch = time.time() + 86400
    tap.ok(got is not None and got[:3] == (alice, "{general,team-*}",
                                           "{general}")
           and abs(int(got[3]) - want_epoch) < 30,
           "token_identity gives user, rights and the expiry epoch",
           (alice, "{general,team-*}", "{general}", "~%d" % want_epoch),
           got)
    upper = rc.sql("SELECT count(*) FROM roomcast.token_identity(%s)"
                   % rc.lit(rc.sha256_hex(tok).upper()))
    tap.eq(upper, "1", "token_identity accepts upper-case hex too")
    for bad in ["", "zz", rc.sha256_hex("rct_unknown"),
                rc.sha256_hex(tok)[:-1]]:
        out, state = rc.sql_state("SELECT count(*) FROM "
                                  "roomcast.token_identity(%s)" % rc.lit(bad))
        tap.ok(state is None and out == "0",
               "token_identity(%r) answers no row, no error" % bad[:12],
               "0 rows", (out, state))
    forever = rc.issue_token(user("forever"), ["*"], [], None)
    got = identity(forever)
    tap.ok(got is not None and got[3] == "never",
           "ttl NULL: expires_at_epoch is NULL", "never", got)
    return tok


def check_shapes(tap):
    ok_cases = [("bob b", ["*"], []), ("h\u00e9llo", ["a" * 64], []),
                ("x" * 64, ["a" * 63 + "*"], ["team-*", "x.y_z-"]),
                (user("empty"), [], [])]
    for who, read, write in ok_cases:
        out, state = rc.sql_state(
            "SELECT roomcast.issue_token(%s, %s, %s, '1 minute')"
            % (rc.lit(who), rc.sql_array(read), rc.sql_array(write)))
        if state is None:
            rc.remember_secret(out)
            rc.sql("DELETE FROM roomcast.tokens WHERE token_hash = "
                   "sha256(convert_to(%s, 'UTF8'))" % rc.lit(out))
        tap.ok(state is None, "issue_token accepts user %r, read %r"
               % (who[:10], [r[:10] for r in read]), "success", out)
    bad_cases = [
        ("empty user", "''", "'{}'"),
        ("65-char user", rc.lit("x" * 65), "'{}'"),
        ("user with a newline", "E'bo\\nb'", "'{}'"),
        ("user with DEL", "E'bo\\x7fb'", "'{}'"),
        ("NULL user", "NULL", "'{}'"),
        ("pattern a*b", "'u'", "'{a*b}'"),
        ("pattern **", "'u'", "'{**}'"),
        ("pattern with a space", "'u'", "ARRAY['a b']"),
        ("empty pattern", "'u'", "ARRAY['']"),
        ("65-char name", "'u'", rc.sql_array(["a" * 65])),
        ("64 chars and *", "'u'", rc.sql_array(["a" * 64 + "*"])),
        ("NULL pattern", "'u'", "ARRAY[NULL]::text[]"),
        ("NULL list", "'u'", "NULL"),
        ("two-dimensional list", "'u'", "'{{a},{b}}'"),
    ]
    for what, who, read in bad_cases:
        out, state = rc.sql_state(
            "SELECT roomcast.issue_token(%s, can_read => %s::text[])"
            % (who, read))
        tap.eq(state, "22023", "issue_token refuses %s with 22023" % what)
    out, state = rc.sql_state("SELECT roomcast.issue_token('u', "
                              "can_write => '{a*b}')")
    tap.eq(state, "22023", "a bad can_write pattern is refused too")
    for ttl in ("0 seconds", "-1 hour"):
        out, state = rc.sql_state("SELECT roomcast.issue_token('u', "
                                  "ttl => %s)" % rc.lit(ttl))
        tap.eq(state, "22023", "ttl %s is refused with 22023" % ttl)
    out, state = rc.sql_state(
        "INSERT INTO roomcast.tokens (token_hash, user_id) "
        "VALUES ('\\x00', 'u')")
    tap.eq(state, "23514", "the table refuses a hash that is not 32 bytes")


def check_expiry(tap):
    tok = rc.issue_token(user("brief"), ["*"], [], "1 second")
    first = identity(tok)
    time.sleep(1.5)
    tap.ok(first is not None and identity(tok) is None,
           "a token with ttl 1 second is gone from token_identity after "
           "1.5 s", "valid, then no row", (first, identity(tok)))


def check_revoke(tap):
    who = user("rev") + " x"
    t1 = rc.issue_token(who, ["*"])
    t2 = rc.issue_token(who, ["*"])
    keep = rc.issue_token(user("keep"), ["*"])
    notes = rc.sql_notifications(["SELECT roomcast.revoke_token(%s)"
                                  % rc.lit(t1)])
    want = "c revoke-token " + rc.sha256_hex(t1)
    tap.ok(want in notes, "revoke_token notifies 'c revoke-token <hash>'",
           want, notes[-5:])
    tap.ok(not any(t1[4:] in n for n in notes),
           "the notification does not carry the token text", "absent",
           notes[-5:])
    tap.ok(identity(t1) is None and identity(t2) is not None,
           "the revoked token is gone, the user's other token stays",
           "None, row", (identity(t1), identity(t2)))
    tap.eq(rc.sql("SELECT roomcast.revoke_token(%s)" % rc.lit(t1)), "t",
           "revoke_token of a revoked token still answers true")
    tap.eq(rc.sql("SELECT roomcast.revoke_token('rct_%s')" % ("0" * 64)),
           "f", "revoke_token of an unknown token answers false")
    first = rc.sql("SELECT revoked_at FROM roomcast.tokens WHERE "
                   "token_hash = decode(%s, 'hex')"
                   % rc.lit(rc.sha256_hex(t1)))
    tap.ok(first != "", "revoked_at is set", "a time", first)
    rc.issue_token(who, ["*"])
    notes = rc.sql_notifications(["SELECT roomcast.revoke_user(%s)"
                                  % rc.lit(who)])
    count = rc.sql("SELECT count(*) FROM roomcast.tokens WHERE user_id = "
                   "%s AND revoked_at IS NULL" % rc.lit(who))
    tap.eq(count, "0", "revoke_user revokes every token of the user")
    tap.ok("c revoke-user " + who in notes,
           "revoke_user notifies 'c revoke-user <user>' (user with a "
           "space)", "c revoke-user " + who, notes[-5:])
    tap.ok(identity(keep) is not None, "another user's token stays valid",
           "a row", identity(keep))
    again = rc.sql("SELECT roomcast.revoke_user(%s)" % rc.lit(who))
    tap.eq(again, "0", "revoke_user again revokes 0 tokens")
    out, state = rc.sql_state("SELECT roomcast.revoke_user('')")
    tap.eq(state, "22023", "revoke_user('') is refused with 22023")


def check_kick(tap):
    who = user("kick") + " y"
    room = rc.room_name("kick")
    notes = rc.sql_notifications(["SELECT roomcast.kick(%s, %s)"
                                  % (rc.lit(who), rc.lit(room))])
    want = "c kick %s %s" % (room, who)
    tap.ok(want in notes, "kick notifies 'c kick <room> <user>'", want,
           notes[-5:])
    for what, args in [("a bad room", (who, "a b")),
                       ("a bad user", ("a\nb", room)),
                       ("a NULL room", (who, None))]:
        out, state = rc.sql_state("SELECT roomcast.kick(%s, %s)"
                                  % (rc.lit(args[0]), rc.lit(args[1])))
        tap.eq(state, "22023", "kick with %s is refused with 22023" % what)


def check_tickets(tap, token):
    th = rc.sha256_hex(token)
    who = user("alice")
    day = int(time.time()) + 86400
    k1 = issue_ticket(who, ["general"], ["general"], th, day)
    tap.ok(rc.re.match(r"^rck_[0-9a-f]{64}$", k1) is not None,
           "issue_ticket returns rck_ and 64 hex digits", "rck_<64 hex>", k1)
    row = rc.sql("SELECT round(extract(epoch FROM expires_at - now())), "
                 "encode(token_hash, 'hex') FROM roomcast.tickets WHERE "
                 "ticket_hash = decode(%s, 'hex')"
                 % rc.lit(rc.sha256_hex(k1)))
    tap.eq(row, "60|" + th, "the ticket is stored by its hash, expires in "
           "60 s and names its token")
    leaked = rc.sql("SELECT count(*) FROM roomcast.tickets k WHERE "
                    "strpos(k::text, %s) > 0" % rc.lit(k1[4:]))
    tap.eq(leaked, "0", "no column of roomcast.tickets holds the ticket text")
    got = redeem(k1)
    tap.eq(got, (who, "{general}", "{general}", th, str(day)),
           "redeem_ticket gives user, rights, token hash, the rights' "
           "expiry")
    tap.eq(redeem(k1), None, "a ticket redeems only once")
    soon = int(time.time()) + 10
    k2 = issue_ticket(who, [], [], th, soon)
    left = rc.sql("SELECT round(extract(epoch FROM expires_at - now())) "
                  "FROM roomcast.tickets WHERE ticket_hash = "
                  "decode(%s, 'hex')" % rc.lit(rc.sha256_hex(k2)))
    tap.ok(left.lstrip("-").isdigit() and int(left) <= 10,
           "a ticket expires with its token when that is sooner than 60 s",
           "<= 10", left)
    k3 = issue_ticket(who, [], [], th, day)
    rc.sql("UPDATE roomcast.tickets SET expires_at = now() - interval "
           "'1 s' WHERE ticket_hash = decode(%s, 'hex')"
           % rc.lit(rc.sha256_hex(k3)))
    tap.eq(redeem(k3), None, "an expired ticket is refused")
    jwt = issue_ticket(user("carol"), ["r"], [], None, None)
    tap.eq(redeem(jwt), (user("carol"), "{r}", "{}", "null", "never"),
           "a ticket without a token (from a JWT) redeems, token_hash NULL")
    for what, q in [
            ("a bad user", "roomcast.issue_ticket('', '{}', '{}', NULL, "
                           "NULL)"),
            ("a bad pattern", "roomcast.issue_ticket('u', '{a b}', '{}', "
                              "NULL, NULL)"),
            ("a bad token hash", "roomcast.issue_ticket('u', '{}', '{}', "
                                 "'abc', NULL)")]:
        out, state = rc.sql_state("SELECT " + q)
        tap.eq(state, "22023", "issue_ticket refuses %s with 22023" % what)
    nothing = rc.sql("SELECT count(*) FROM roomcast.redeem_ticket('zz')")
    tap.eq(nothing, "0", "redeem_ticket of a malformed hash: no row")

    # Revoked or expired tokens take their tickets with them.
    rt = rc.issue_token(who, ["*"])
    k4 = issue_ticket(who, ["*"], [], rc.sha256_hex(rt), day)
    rc.sql("UPDATE roomcast.tokens SET revoked_at = now() WHERE "
           "token_hash = decode(%s, 'hex')" % rc.lit(rc.sha256_hex(rt)))
    tap.eq(redeem(k4), None, "a ticket of a token revoked meanwhile is "
           "refused")
    et = rc.issue_token(who, ["*"], [], "1 second")
    k5 = issue_ticket(who, ["*"], [], rc.sha256_hex(et),
                      int(time.time()) + 3600)
    time.sleep(1.5)
    tap.eq(redeem(k5), None, "a ticket of a token expired meanwhile is "
           "refused")
    rv = rc.issue_token(who, ["*"])
    k6 = issue_ticket(who, ["*"], [], rc.sha256_hex(rv), day)
    rc.revoke_token(rv)
    tap.eq(redeem(k6), None, "revoke_token ends the token's tickets")
    ju = user("jwtuser")
    k7 = issue_ticket(ju, ["*"], [], None, None)
    rc.sql("SELECT roomcast.revoke_user(%s)" % rc.lit(ju))
    tap.eq(redeem(k7), None, "revoke_user ends the user's tickets, also "
           "those from a JWT")

    old = rc.sql("INSERT INTO roomcast.tickets (ticket_hash, user_id, "
                 "expires_at) VALUES (sha256(%s), %s, now() - interval "
                 "'61 minutes') RETURNING 1"
                 % (rc.lit("old" + TAG), rc.lit(user("old"))))
    issue_ticket(user("carol"), [], [], None, None)
    gone = rc.sql("SELECT count(*) FROM roomcast.tickets WHERE user_id = %s"
                  % rc.lit(user("old")))
    tap.ok(old == "1" and gone == "0", "issue_ticket deletes tickets "
           "expired more than an hour ago", "0 left", gone)


def check_concurrent_redeem(tap):
    """Session A redeems inside a transaction held open for a second;
    session B redeems the same ticket meanwhile and must wait, then get
    nothing."""
    k = issue_ticket(user("race"), [], [], None, None)
    h = rc.lit(rc.sha256_hex(k))
    results = {}

    def session(name, script):
        proc = subprocess.run(["psql", rc.DB, "-XAtq", "-v",
                               "ON_ERROR_STOP=1"], input=script,
                              capture_output=True, text=True, timeout=30)
        results[name] = proc.stdout.split()
    a = threading.Thread(target=session, args=("a", (
        "BEGIN;\nSELECT count(*) FROM roomcast.redeem_ticket(%s);\n"
        "SELECT pg_sleep(1);\nCOMMIT;\n" % h)))
    b = threading.Thread(target=session, args=("b", (
        "SELECT count(*) FROM roomcast.redeem_ticket(%s);\n" % h)))
    a.start()
    time.sleep(0.3)
    b.start()
    a.join(30)
    b.join(30)
    got = (results.get("a", [None])[0], results.get("b", [None])[0])
    tap.eq(got, ("1", "0"), "two concurrent redemptions: exactly one row")


def check_rooms_and_settings(tap):
    pub = rc.make_room("acc", public_read=True)
    wr = rc.make_room("acc", public_write=True)
    priv = rc.make_room("acc")
    missing = rc.room_name("accnone")
    out = rc.sql("SELECT name, public_read, public_write FROM "
                 "roomcast.room_access(%s) ORDER BY name"
                 % rc.sql_array([pub, wr, priv, missing]))
    want = "\n".join(sorted(["%s|t|f" % pub, "%s|f|t" % wr,
                             "%s|f|f" % priv]))
    tap.eq(out, want, "room_access gives flags of existing rooms only")
    keys = rc.sql("SELECT string_agg(key, ',' ORDER BY key) FROM "
                  "roomcast.settings WHERE key IN ('jwt_secret', "
                  "'allowed_origins', 'max_rooms_per_stream', "
                  "'max_streams_per_user', 'publish_rate_per_second', "
                  "'publish_burst', 'token_cache_seconds')")
    tap.eq(keys, "allowed_origins,jwt_secret,max_rooms_per_stream,"
           "max_streams_per_user,publish_burst,publish_rate_per_second,"
           "token_cache_seconds", "the auth and limit settings exist")
    checks = [("max_rooms_per_stream", "abc", "f"),
              ("max_streams_per_user", "-1", "f"),
              ("publish_rate_per_second", "20", "t"),
              ("publish_burst", "1.5", "f"),
              ("token_cache_seconds", "10", "t"),
              ("jwt_secret", "", "t"),
              ("jwt_secret", "short", "f"),
              ("jwt_secret", "k" * 32, "t"),
              ("allowed_origins", "https://a.example,https://b.example",
               "t"),
              ("max_message_bytes", "x", "f")]
    got = [rc.sql("SELECT roomcast.setting_is_valid(%s, %s)"
                  % (rc.lit(k), rc.lit(v))) for k, v, _ in checks]
    tap.eq(got, [w for _, _, w in checks],
           "setting_is_valid knows the new integer keys and jwt_secret")
    views = rc.sql(
        "SELECT string_agg(c.table_name || '.' || c.column_name, ',') "
        "FROM information_schema.columns c JOIN information_schema.views v "
        "ON v.table_schema = c.table_schema AND v.table_name = c.table_name "
        "WHERE c.table_schema = 'roomcast' AND (c.data_type = 'bytea' OR "
        "c.column_name LIKE '%hash%')")
    tap.eq(views, "", "no view of schema roomcast selects a hash column")
    cols = rc.sql("SELECT string_agg(column_name, ',' ORDER BY "
                  "ordinal_position) FROM information_schema.columns WHERE "
                  "table_schema = 'roomcast' AND table_name = 'token_list'")
    tap.ok("user_id" in cols.split(",") and "state" in cols.split(","),
           "token_list lists tokens by user and state", "user_id,state,...",
           cols)


def cleanup():
    pattern = rc.lit("sq\\_%\\_" + TAG + "%")
    rc.sql("DELETE FROM roomcast.tokens WHERE user_id LIKE %s" % pattern)
    rc.sql("DELETE FROM roomcast.tickets WHERE user_id LIKE %s" % pattern)


def main(tap):
    version = rc.sql("SELECT count(*) FROM roomcast.schema_version "
                     "WHERE version = 2")
    if not tap.eq(version, "1", "migration 002 is applied"):
        return
    try:
        tok = check_token_text(tap)
        check_shapes(tap)
        check_expiry(tap)
        check_revoke(tap)
        check_kick(tap)
        check_tickets(tap, tok)
        check_concurrent_redeem(tap)
        check_rooms_and_settings(tap)
    finally:
        cleanup()


if __name__ == "__main__":
    rc.run(main, limit_s=120)
