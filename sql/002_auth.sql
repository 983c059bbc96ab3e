-- 002_auth.sql: tokens, tickets, revocation and kicks, room access flags
-- for the workers, and the settings of authentication and request limits.
--
-- What it is for: the database side of the contract's "Authentication and
-- permissions". Tokens are issued with SQL and only their SHA-256 is kept;
-- a page trades its token for a single-use ticket; revoke_token(),
-- revoke_user() and kick() tell every process, through channel 'roomcast',
-- to close the streams concerned.
-- What it is not for: checking a request. The workers hash what a client
-- sends, look the hash up with token_identity() or redeem_ticket(), verify
-- JSON Web Tokens themselves, and match room patterns themselves.
-- Who uses it: deploy/roomcast-migrate applies it once, after 001, in one
-- transaction that also records it in roomcast.schema_version. The workers
-- call token_identity(), issue_ticket(), redeem_ticket() and room_access();
-- administrators call issue_token(), revoke_token(), revoke_user() and
-- kick(), and read token_list.
--
-- Runs once, only through deploy/roomcast-migrate, which provides the
-- transaction. A second run fails on the tables that already exist.
--
-- Control notifications on channel 'roomcast' start with 'c ', beside the
-- 'm ' and 'M ' of messages (001):
--   c revoke-token <hex sha256>   streams of that token end
--   c revoke-user <user>          every stream of that user ends
--   c kick <room> <user>          that user's streams in that room end
-- The user comes last because it may contain spaces; room names never do.


-- ---------------------------------------------------------------------
-- Shapes of users, room patterns and hashes, shared by table constraints
-- and the functions, so each rule lives in one place. NULL in, NULL out,
-- as in 001: a function decides itself whether NULL is allowed.
-- ---------------------------------------------------------------------

-- A user id travels in envelopes ("from"), NOTIFY payloads and log lines.
-- Control characters (C0, DEL and C1) would break a log line or a payload
-- apart; anything else, spaces and non-ASCII letters included, is a name
-- some application may already use.
CREATE FUNCTION roomcast.is_user_id(p_user text)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT p_user ~ '^[^\x01-\x1f\x7f-\x9f]{1,64}$'
$$;

COMMENT ON FUNCTION roomcast.is_user_id(text) IS
    'True for 1 to 64 characters, none of them a control character.';

-- A room pattern is a room name, or a prefix of up to 63 room-name
-- characters followed by '*'. Only a trailing '*' is allowed, so matching
-- is a prefix comparison the workers can do without a regex engine, and a
-- pattern can never match more than its author could read off it.
CREATE FUNCTION roomcast.is_room_pattern(p_pattern text)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT p_pattern ~ '^[A-Za-z0-9_.-]{1,64}$'
        OR p_pattern ~ '^[A-Za-z0-9_.-]{0,63}\*$'
$$;

COMMENT ON FUNCTION roomcast.is_room_pattern(text) IS
    'True for a room name or a name prefix ending in * (* alone: every '
    'room).';

-- A list of patterns is valid when it is one-dimensional (or empty) and
-- every element is a pattern; a NULL element is refused, because a
-- reader could not tell what right it was meant to grant.
CREATE FUNCTION roomcast.are_room_patterns(p_patterns text[])
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE
        WHEN p_patterns IS NULL THEN NULL
        ELSE coalesce(array_ndims(p_patterns), 1) = 1
             AND NOT EXISTS (
                 SELECT 1 FROM unnest(p_patterns) AS u(p)
                  WHERE u.p IS NULL OR NOT roomcast.is_room_pattern(u.p))
    END
$$;

COMMENT ON FUNCTION roomcast.are_room_patterns(text[]) IS
    'True for a one-dimensional array of room patterns without NULLs.';

-- Hashes arrive as hex text from the workers, which hash what the client
-- sent. Anything that is not 64 hex digits cannot be a SHA-256, so the
-- lookups answer "no such token" for it instead of raising an error.
CREATE FUNCTION roomcast.hex_sha256(p_hex text)
RETURNS bytea
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE WHEN p_hex ~ '^[0-9A-Fa-f]{64}$'
                THEN decode(p_hex, 'hex') END
$$;

COMMENT ON FUNCTION roomcast.hex_sha256(text) IS
    'The 32 bytes of a hex SHA-256, or NULL when the text is not one.';

-- The only way a secret becomes a stored value: its SHA-256. One
-- function, so a token and a ticket are hashed the same way the workers
-- hash them (the UTF-8 bytes of the text).
CREATE FUNCTION roomcast.secret_hash(p_secret text)
RETURNS bytea
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$
    SELECT sha256(convert_to(p_secret, 'UTF8'))
$$;

COMMENT ON FUNCTION roomcast.secret_hash(text) IS
    'SHA-256 of the UTF-8 bytes of a token or ticket text.';

-- 256 bits from two version-4 UUIDs, as 64 hex digits. gen_random_uuid()
-- is core PostgreSQL (13 and later) and draws from the same strong source
-- as pgcrypto, so no extension is needed. Each UUID has 6 fixed bits
-- (version and variant), which leaves 244 random bits: far beyond
-- guessing, and the fixed bits reveal nothing about the others.
CREATE FUNCTION roomcast.random_hex64()
RETURNS text
LANGUAGE sql VOLATILE PARALLEL SAFE
AS $$
    SELECT replace(gen_random_uuid()::text, '-', '')
        || replace(gen_random_uuid()::text, '-', '')
$$;

COMMENT ON FUNCTION roomcast.random_hex64() IS
    '64 hex digits with 244 random bits, for token and ticket texts.';

-- Seconds since the epoch, rounded down, or NULL for NULL. Rounding down
-- makes a reader treat a credential as expired up to a second early,
-- never late.
CREATE FUNCTION roomcast.epoch_floor(p_ts timestamptz)
RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT floor(extract(epoch FROM p_ts))::bigint
$$;

COMMENT ON FUNCTION roomcast.epoch_floor(timestamptz) IS
    'Whole seconds since the epoch, rounded down; NULL stays NULL.';


-- ---------------------------------------------------------------------
-- Tokens.
-- ---------------------------------------------------------------------

CREATE TABLE roomcast.tokens (
    token_hash  bytea NOT NULL,
    user_id     text NOT NULL,
    can_read    text[] NOT NULL DEFAULT '{}',
    can_write   text[] NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NULL,
    revoked_at  timestamptz NULL,
    note        text NULL,
    CONSTRAINT tokens_pkey PRIMARY KEY (token_hash),
    CONSTRAINT tokens_hash_check CHECK (octet_length(token_hash) = 32),
    CONSTRAINT tokens_user_check CHECK (roomcast.is_user_id(user_id)),
    CONSTRAINT tokens_can_read_check
        CHECK (roomcast.are_room_patterns(can_read)),
    CONSTRAINT tokens_can_write_check
        CHECK (roomcast.are_room_patterns(can_write)),
    CONSTRAINT tokens_expiry_check CHECK (expires_at > created_at)
);

COMMENT ON TABLE roomcast.tokens IS
    'Bearer tokens, stored as the SHA-256 of their text only. Issue with '
    'issue_token(), end with revoke_token() or revoke_user(); list them '
    'with the token_list view.';
COMMENT ON COLUMN roomcast.tokens.token_hash IS
    'SHA-256 of the token text; the text itself is never stored.';
COMMENT ON COLUMN roomcast.tokens.can_read IS
    'Room patterns this token may read (SSE, long-poll, history, '
    'presence): names, or prefixes ending in *.';
COMMENT ON COLUMN roomcast.tokens.can_write IS
    'Room patterns this token may publish and send typing events to.';
COMMENT ON COLUMN roomcast.tokens.expires_at IS
    'End of validity; NULL: never expires.';
COMMENT ON COLUMN roomcast.tokens.revoked_at IS
    'When it was revoked; a revoked token stays, so its history can be '
    'read and its hash is never issued again by mistake.';
COMMENT ON COLUMN roomcast.tokens.note IS
    'Free text for administrators: what the token is for.';

COMMENT ON CONSTRAINT tokens_pkey ON roomcast.tokens IS
    'Workers look a token up by the hash of what the client sent.';
COMMENT ON CONSTRAINT tokens_hash_check ON roomcast.tokens IS
    'A SHA-256 is 32 bytes; anything else is a caller that stored the '
    'text or a truncated hash.';
COMMENT ON CONSTRAINT tokens_user_check ON roomcast.tokens IS
    'User ids go into envelopes, NOTIFY payloads and logs: 1 to 64 '
    'characters without control characters.';
COMMENT ON CONSTRAINT tokens_can_read_check ON roomcast.tokens IS
    'Workers match only names and trailing-* prefixes; a pattern of any '
    'other shape would silently grant nothing, so it is refused here.';
COMMENT ON CONSTRAINT tokens_can_write_check ON roomcast.tokens IS
    'Same rule as can_read.';
COMMENT ON CONSTRAINT tokens_expiry_check ON roomcast.tokens IS
    'A token that expires before it exists is a mistake in the ttl.';

-- revoke_user() finds a user's tokens by it.
CREATE INDEX tokens_user_id_idx ON roomcast.tokens (user_id);

COMMENT ON INDEX roomcast.tokens_user_id_idx IS
    'revoke_user() and token_list filter by user.';

-- Quotes a bad argument for an error message: JSON string syntax escapes
-- control characters, so a message stays on one line in the server log,
-- and 80 characters are enough to recognise what was passed.
CREATE FUNCTION roomcast.quote_arg(p_text text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT coalesce(to_json(left(p_text, 80))::text, 'NULL')
$$;

COMMENT ON FUNCTION roomcast.quote_arg(text) IS
    'Internal: a short, escaped, quoted copy of a bad argument for an '
    'error message.';

-- Validation shared by issue_token() and issue_ticket(), so a ticket can
-- never carry rights a token could not. Raises 22023 naming the argument.
CREATE FUNCTION roomcast.check_grant_args(p_user text, p_can_read text[],
                                          p_can_write text[])
RETURNS void
LANGUAGE plpgsql IMMUTABLE
AS $$
BEGIN
    IF p_user IS NULL OR NOT roomcast.is_user_id(p_user) THEN
        RAISE EXCEPTION 'bad user id: %', roomcast.quote_arg(p_user)
            USING ERRCODE = '22023', COLUMN = 'user_id',
                  HINT = '1 to 64 characters, no control characters.';
    END IF;
    IF p_can_read IS NULL OR NOT roomcast.are_room_patterns(p_can_read) THEN
        RAISE EXCEPTION 'bad can_read pattern list: %',
                        roomcast.quote_arg(p_can_read::text)
            USING ERRCODE = '22023', COLUMN = 'can_read',
                  HINT = 'Each pattern is a room name, or a prefix of '
                         'room-name characters ending in *.';
    END IF;
    IF p_can_write IS NULL
       OR NOT roomcast.are_room_patterns(p_can_write) THEN
        RAISE EXCEPTION 'bad can_write pattern list: %',
                        roomcast.quote_arg(p_can_write::text)
            USING ERRCODE = '22023', COLUMN = 'can_write',
                  HINT = 'Each pattern is a room name, or a prefix of '
                         'room-name characters ending in *.';
    END IF;
END
$$;

COMMENT ON FUNCTION roomcast.check_grant_args(text, text[], text[]) IS
    'Internal: raises 22023 for a bad user id or pattern list.';

-- Issues a token and returns its text, the only time the text is seen:
-- only its hash is stored. ttl NULL means the token never expires.
-- Parameters carry the names the contract calls them by (can_read =>,
-- ttl =>); inside, they are qualified with the function name.
-- Errors: 22023 for a bad user, pattern or ttl, naming which.
CREATE FUNCTION roomcast.issue_token(
    p_user     text,
    can_read   text[] DEFAULT '{}',
    can_write  text[] DEFAULT '{}',
    ttl        interval DEFAULT '1 day',
    note       text DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql
AS $$
DECLARE
    v_token  text := 'rct_' || roomcast.random_hex64();
BEGIN
    PERFORM roomcast.check_grant_args(p_user, issue_token.can_read,
                                      issue_token.can_write);
    IF issue_token.ttl IS NOT NULL AND issue_token.ttl <= interval '0' THEN
        RAISE EXCEPTION 'ttl must be positive, got %', issue_token.ttl
            USING ERRCODE = '22023', COLUMN = 'ttl',
                  HINT = 'Pass NULL for a token that never expires.';
    END IF;

    INSERT INTO roomcast.tokens AS t
           (token_hash, user_id, can_read, can_write, created_at,
            expires_at, note)
    VALUES (roomcast.secret_hash(v_token), p_user, issue_token.can_read,
            issue_token.can_write, now(), now() + issue_token.ttl,
            issue_token.note);
    RETURN v_token;
END
$$;

COMMENT ON FUNCTION roomcast.issue_token(text, text[], text[], interval,
                                         text) IS
    'Issues a token for a user with read and write room patterns, valid '
    'for ttl (NULL: forever); returns its text, which is not stored.';

-- What the workers call for a token a client sent, by the hex SHA-256 of
-- its text. One row (user, rights, expiry as epoch seconds, NULL for
-- never) while the token is valid; no row when it is unknown, revoked or
-- expired, so the caller has one case to handle for all three and a
-- client cannot tell them apart.
CREATE FUNCTION roomcast.token_identity(p_hash text)
RETURNS TABLE (user_id text, can_read text[], can_write text[],
               expires_at_epoch bigint)
LANGUAGE sql STABLE
AS $$
    SELECT t.user_id, t.can_read, t.can_write,
           roomcast.epoch_floor(t.expires_at)
      FROM roomcast.tokens t
     WHERE t.token_hash = roomcast.hex_sha256(p_hash)
       AND t.revoked_at IS NULL
       AND (t.expires_at IS NULL OR t.expires_at > now())
$$;

COMMENT ON FUNCTION roomcast.token_identity(text) IS
    'The user and rights of a valid token, by the hex SHA-256 of its '
    'text; no row when unknown, revoked or expired.';

-- Revokes one token by its text and tells every process to end the
-- streams that use it. True when the token exists (revoked now or
-- before; the first revocation time is kept), false when it is unknown.
-- Its unused tickets go too: they could not be redeemed anyway, and a
-- deleted row cannot be raced.
CREATE FUNCTION roomcast.revoke_token(p_token text)
RETURNS boolean
LANGUAGE plpgsql
AS $$
DECLARE
    v_hash  bytea := roomcast.secret_hash(p_token);
BEGIN
    UPDATE roomcast.tokens t
       SET revoked_at = coalesce(t.revoked_at, now())
     WHERE t.token_hash = v_hash;
    IF NOT FOUND THEN
        RETURN false;
    END IF;

    DELETE FROM roomcast.tickets k
     WHERE k.token_hash = v_hash AND k.used_at IS NULL;
    -- Sent at commit; a revocation that rolls back closes nothing.
    PERFORM pg_notify('roomcast', 'c revoke-token ' || encode(v_hash, 'hex'));
    RETURN true;
END
$$;

COMMENT ON FUNCTION roomcast.revoke_token(text) IS
    'Revokes a token by its text and closes its streams within seconds; '
    'false when no such token was issued.';

-- Revokes every token of a user and tells every process to end all of the
-- user's streams: also those opened with a JSON Web Token, which has no
-- row here to revoke (such a JWT itself stays valid until its exp; rotate
-- jwt_secret to end it). Unused tickets of the user go too, whatever
-- their origin. Returns how many tokens were revoked by this call.
CREATE FUNCTION roomcast.revoke_user(p_user text)
RETURNS integer
LANGUAGE plpgsql
AS $$
DECLARE
    v_count  integer;
BEGIN
    IF p_user IS NULL OR NOT roomcast.is_user_id(p_user) THEN
        RAISE EXCEPTION 'bad user id: %', roomcast.quote_arg(p_user)
            USING ERRCODE = '22023', COLUMN = 'user_id';
    END IF;

    UPDATE roomcast.tokens t SET revoked_at = now()
     WHERE t.user_id = p_user AND t.revoked_at IS NULL;
    GET DIAGNOSTICS v_count = ROW_COUNT;

    DELETE FROM roomcast.tickets k
     WHERE k.user_id = p_user AND k.used_at IS NULL;
    PERFORM pg_notify('roomcast', 'c revoke-user ' || p_user);
    RETURN v_count;
END
$$;

COMMENT ON FUNCTION roomcast.revoke_user(text) IS
    'Revokes every token of a user and closes all of the user''s streams '
    'within seconds; returns the number of tokens revoked.';

-- Closes a user's streams in one room, now, on every process. It changes
-- no right: a client whose token may still read the room can reconnect;
-- revoke the token, or issue one without that room, to keep it out.
CREATE FUNCTION roomcast.kick(p_user text, p_room text)
RETURNS void
LANGUAGE plpgsql
AS $$
BEGIN
    IF p_user IS NULL OR NOT roomcast.is_user_id(p_user) THEN
        RAISE EXCEPTION 'bad user id: %', roomcast.quote_arg(p_user)
            USING ERRCODE = '22023', COLUMN = 'user_id';
    END IF;
    IF p_room IS NULL OR NOT roomcast.is_room_name(p_room) THEN
        RAISE EXCEPTION 'bad room name: %', roomcast.quote_arg(p_room)
            USING ERRCODE = '22023', COLUMN = 'room';
    END IF;
    PERFORM pg_notify('roomcast', 'c kick ' || p_room || ' ' || p_user);
END
$$;

COMMENT ON FUNCTION roomcast.kick(text, text) IS
    'Closes the user''s open streams in the room on every process; the '
    'user''s rights are unchanged.';

-- For administrators: every token without its hash. state says at a
-- glance which tokens still work.
CREATE VIEW roomcast.token_list AS
SELECT t.user_id,
       CASE WHEN t.revoked_at IS NOT NULL THEN 'revoked'
            WHEN t.expires_at <= now() THEN 'expired'
            ELSE 'active' END AS state,
       t.can_read,
       t.can_write,
       t.created_at,
       t.expires_at,
       t.revoked_at,
       t.note
  FROM roomcast.tokens t;

COMMENT ON VIEW roomcast.token_list IS
    'Tokens with their user, state (active, expired, revoked), rights and '
    'dates; the hash is left out on purpose.';


-- ---------------------------------------------------------------------
-- Tickets: single-use, short-lived stand-ins for a token in a URL, where
-- EventSource and WebSocket cannot send a header.
-- ---------------------------------------------------------------------

CREATE TABLE roomcast.tickets (
    ticket_hash       bytea NOT NULL,
    user_id           text NOT NULL,
    can_read          text[] NOT NULL DEFAULT '{}',
    can_write         text[] NOT NULL DEFAULT '{}',
    token_hash        bytea NULL,
    token_expires_at  timestamptz NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    expires_at        timestamptz NOT NULL,
    used_at           timestamptz NULL,
    CONSTRAINT tickets_pkey PRIMARY KEY (ticket_hash),
    CONSTRAINT tickets_hash_check CHECK (octet_length(ticket_hash) = 32),
    CONSTRAINT tickets_user_check CHECK (roomcast.is_user_id(user_id)),
    CONSTRAINT tickets_can_read_check
        CHECK (roomcast.are_room_patterns(can_read)),
    CONSTRAINT tickets_can_write_check
        CHECK (roomcast.are_room_patterns(can_write)),
    CONSTRAINT tickets_token_hash_check
        CHECK (octet_length(token_hash) = 32)
);

COMMENT ON TABLE roomcast.tickets IS
    'Single-use tickets, stored as the SHA-256 of their text, each '
    'carrying the rights of the token (or JSON Web Token) it was issued '
    'for. issue_ticket() deletes those expired over an hour ago.';
COMMENT ON COLUMN roomcast.tickets.token_hash IS
    'SHA-256 of the token it came from, so a revoked token''s tickets '
    'stop working; NULL when it came from a JSON Web Token.';
COMMENT ON COLUMN roomcast.tickets.token_expires_at IS
    'When the rights behind the ticket end (the token''s or JWT''s '
    'expiry); NULL: never. A stream opened with the ticket lives by it.';
COMMENT ON COLUMN roomcast.tickets.expires_at IS
    'Last moment the ticket can be redeemed.';
COMMENT ON COLUMN roomcast.tickets.used_at IS
    'When it was redeemed; a used ticket is never accepted again.';

COMMENT ON CONSTRAINT tickets_pkey ON roomcast.tickets IS
    'Workers redeem a ticket by the hash of what the client sent.';
COMMENT ON CONSTRAINT tickets_hash_check ON roomcast.tickets IS
    'A SHA-256 is 32 bytes; anything else means the text or a truncated '
    'hash was stored.';
COMMENT ON CONSTRAINT tickets_user_check ON roomcast.tickets IS
    'Same rule as tokens: the user goes into envelopes and NOTIFY '
    'payloads.';
COMMENT ON CONSTRAINT tickets_can_read_check ON roomcast.tickets IS
    'A ticket carries no right a token could not hold.';
COMMENT ON CONSTRAINT tickets_can_write_check ON roomcast.tickets IS
    'A ticket carries no right a token could not hold.';
COMMENT ON CONSTRAINT tickets_token_hash_check ON roomcast.tickets IS
    'A SHA-256 is 32 bytes. No foreign key to tokens: a ticket whose '
    'token is gone is refused by redeem_ticket() all the same, and '
    'issuing one never fails on a token deleted meanwhile.';

-- The cleanup in issue_ticket() deletes by expiry.
CREATE INDEX tickets_expires_at_idx ON roomcast.tickets (expires_at);

COMMENT ON INDEX roomcast.tickets_expires_at_idx IS
    'Lets issue_ticket() find tickets expired over an hour ago without '
    'reading the rest.';

-- Issues a ticket for rights a worker has already checked: a token
-- (p_token_hash, its hex SHA-256) or a JSON Web Token (p_token_hash
-- NULL). p_expires_at_epoch is when those rights end (NULL: never); the
-- ticket expires 60 s from now, or then if that is sooner. Returns the
-- ticket text; only its hash is stored. Also deletes tickets expired more
-- than an hour ago, which keeps the table small without a scheduler; the
-- hour leaves them for an administrator to look at after a failure.
-- Errors: 22023 for a bad user, pattern list or token hash.
CREATE FUNCTION roomcast.issue_ticket(
    p_user              text,
    p_can_read          text[],
    p_can_write         text[],
    p_token_hash        text,
    p_expires_at_epoch  bigint)
RETURNS text
LANGUAGE plpgsql
AS $$
DECLARE
    v_ticket      text := 'rck_' || roomcast.random_hex64();
    -- A JWT without rights claims arrives as NULL: no rights.
    v_can_read    text[] := coalesce(p_can_read, '{}');
    v_can_write   text[] := coalesce(p_can_write, '{}');
    v_token_hash  bytea;
    v_rights_end  timestamptz := to_timestamp(p_expires_at_epoch);
BEGIN
    PERFORM roomcast.check_grant_args(p_user, v_can_read, v_can_write);
    IF p_token_hash IS NOT NULL THEN
        v_token_hash := roomcast.hex_sha256(p_token_hash);
        IF v_token_hash IS NULL THEN
            RAISE EXCEPTION 'token hash is not 64 hex digits'
                USING ERRCODE = '22023', COLUMN = 'token_hash';
        END IF;
    END IF;

    DELETE FROM roomcast.tickets k
     WHERE k.expires_at < now() - interval '1 hour';

    INSERT INTO roomcast.tickets AS k
           (ticket_hash, user_id, can_read, can_write, token_hash,
            token_expires_at, created_at, expires_at)
    VALUES (roomcast.secret_hash(v_ticket), p_user, v_can_read,
            v_can_write, v_token_hash, v_rights_end, now(),
            -- least() skips NULL: rights that never end give 60 s.
            least(now() + interval '60 seconds', v_rights_end));
    RETURN v_ticket;
END
$$;

COMMENT ON FUNCTION roomcast.issue_ticket(text, text[], text[], text,
                                          bigint) IS
    'Issues a single-use ticket, valid 60 s (or until the rights end), '
    'carrying the given rights; returns its text, which is not stored.';

-- Redeems a ticket by the hex SHA-256 of its text: one row the first time
-- (user, rights, hex hash of its token or NULL, and when the rights end as
-- epoch seconds, NULL for never), no row after that, after expiry, or when
-- the token it came from has been revoked, deleted or has expired since.
--
-- Why it is single use even under concurrent redemptions: the UPDATE
-- locks the row; a second redemption waits for the first to commit, then
-- re-checks used_at IS NULL on the new row version and finds it false.
CREATE FUNCTION roomcast.redeem_ticket(p_ticket_hash text)
RETURNS TABLE (user_id text, can_read text[], can_write text[],
               token_hash text, expires_at_epoch bigint)
LANGUAGE sql
AS $$
    UPDATE roomcast.tickets k
       SET used_at = now()
     WHERE k.ticket_hash = roomcast.hex_sha256(p_ticket_hash)
       AND k.used_at IS NULL
       AND k.expires_at > now()
       AND (k.token_expires_at IS NULL OR k.token_expires_at > now())
       AND (k.token_hash IS NULL
            OR EXISTS (SELECT 1 FROM roomcast.tokens t
                        WHERE t.token_hash = k.token_hash
                          AND t.revoked_at IS NULL
                          AND (t.expires_at IS NULL
                               OR t.expires_at > now())))
    RETURNING k.user_id, k.can_read, k.can_write,
              encode(k.token_hash, 'hex'),
              roomcast.epoch_floor(k.token_expires_at)
$$;

COMMENT ON FUNCTION roomcast.redeem_ticket(text) IS
    'Marks a ticket used and returns its user and rights, once; no row '
    'when unknown, used, expired, or its token is no longer valid.';


-- ---------------------------------------------------------------------
-- Room access flags, for the workers.
-- ---------------------------------------------------------------------

-- The public_read and public_write flags of the named rooms, in one query
-- for a request that names several. A room without a row is private
-- (both flags false), so the caller treats a missing row that way.
CREATE FUNCTION roomcast.room_access(p_rooms text[])
RETURNS TABLE (name text, public_read boolean, public_write boolean)
LANGUAGE sql STABLE
AS $$
    SELECT r.name, r.public_read, r.public_write
      FROM roomcast.rooms r
     WHERE r.name = ANY (p_rooms)
$$;

COMMENT ON FUNCTION roomcast.room_access(text[]) IS
    'public_read and public_write of the named rooms that have a row; a '
    'room without one is private.';


-- ---------------------------------------------------------------------
-- Settings of authentication and limits.
-- ---------------------------------------------------------------------

-- Replaces 001's version to know the new integer keys, and the one string
-- key whose format can be checked without guessing at intent: an HS256
-- secret shorter than the hash output (32 bytes) is refused, as RFC 7518
-- section 3.2 requires, because a short one can be found by brute force
-- from any token a client holds.
CREATE OR REPLACE FUNCTION roomcast.setting_is_valid(p_key text,
                                                     p_value text)
RETURNS boolean
LANGUAGE plpgsql STABLE
AS $$
BEGIN
    IF p_key = 'max_age' THEN
        PERFORM p_value::interval;
        RETURN true;
    END IF;
    IF p_key = 'jwt_secret' THEN
        RETURN p_value = '' OR octet_length(p_value) >= 32;
    END IF;
    IF p_key IN ('max_message_bytes', 'max_body_bytes', 'sse_max_seconds',
                 'sse_heartbeat_seconds', 'poll_default_seconds',
                 'poll_max_seconds', 'poll_max_messages',
                 'history_max_limit', 'presence_timeout_seconds',
                 'max_messages', 'max_rooms_per_stream',
                 'max_streams_per_user', 'publish_rate_per_second',
                 'publish_burst', 'token_cache_seconds') THEN
        RETURN p_value ~ '^[0-9]{1,15}$';
    END IF;
    RETURN true;
EXCEPTION
    WHEN invalid_datetime_format OR datetime_field_overflow
         OR interval_field_overflow THEN
        RETURN false;
END
$$;

INSERT INTO roomcast.settings (key, value, description) VALUES
    -- Empty by default: a deployment that issues JWTs chooses its secret;
    -- until then a JWT is refused rather than checked against a known key.
    ('jwt_secret', '',
     'HS256 secret for JSON Web Tokens, at least 32 bytes; empty: JWTs '
     'are refused.'),
    -- Empty by default: a browser page on another origin gets no access
    -- until an administrator names it.
    ('allowed_origins', '',
     'Comma-separated origins allowed by CORS, e.g. '
     'https://app.example.com; * for any; empty: none beyond the same '
     'origin.'),
    -- Bounds the work and memory of one stream; 64 is more rooms than a
    -- page shows at once.
    ('max_rooms_per_stream', '64',
     'Most rooms one SSE stream or long-poll may name.'),
    -- Bounds what one leaked or misused token can hold open in a process.
    ('max_streams_per_user', '50',
     'Most open SSE streams and held long-polls per user, per worker '
     'process.'),
    -- A token bucket per user (per address for anonymous publishers) per
    -- process: publish_burst at once, then publish_rate_per_second. The
    -- defaults stop a runaway client, not a busy one: a chat product
    -- lowers them to a human pace.
    ('publish_rate_per_second', '1000',
     'Publishes per second a user may sustain, per worker process.'),
    ('publish_burst', '2000',
     'Publishes a user may make at once before the rate applies, per '
     'worker process.'),
    -- Workers cache a token's identity this long; revocation notices
    -- clear the cache at once, so this only bounds the staleness of a
    -- change made by a plain UPDATE of roomcast.tokens.
    ('token_cache_seconds', '10',
     'Seconds a worker reuses a token lookup before asking the database '
     'again.');
