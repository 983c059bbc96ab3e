-- 001_core.sql: the core of schema roomcast: rooms, stored messages,
-- settings, the process registry and the one function that publishes.
--
-- What it is for: everything a message needs from its publication to its
-- delivery: the per-room seq counter, the stored envelope, the NOTIFY that
-- wakes every process, retention, and the admin views over them.
-- What it is not for: tokens, presence and tickets; later migrations add
-- them on top of these tables.
-- Who uses it: deploy/roomcast-migrate applies it once, inside one
-- transaction that also records it in roomcast.schema_version. The workers
-- and the WebSocket daemon call publish(), envelope() and
-- worker_heartbeat(); administrators call publish() from psql, cron jobs and
-- triggers, and read room_stats, workers and settings.
--
-- Runs once: apply it only through deploy/roomcast-migrate. It holds no
-- transaction control of its own, because the runner wraps it in one.
-- A second run fails on the tables that already exist, which is the point:
-- nothing here is written to be re-applied over live data.

-- The runner creates the schema and schema_version before it applies any
-- file (it must record this very file), hence IF NOT EXISTS on both; the
-- definition below and the runner's are the same.
CREATE SCHEMA IF NOT EXISTS roomcast;

CREATE TABLE IF NOT EXISTS roomcast.schema_version (
    version     int PRIMARY KEY,
    name        text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE roomcast.schema_version IS
    'One row per applied file of sql/, written by deploy/roomcast-migrate '
    'in the same transaction as the file itself.';


-- ---------------------------------------------------------------------
-- Shapes of names, shared by table constraints and publish(), so that the
-- rule lives in one place. NULL in, NULL out: a CHECK lets NULL pass and
-- publish() decides itself whether NULL is allowed.
-- ---------------------------------------------------------------------

CREATE FUNCTION roomcast.is_room_name(p_name text)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    -- '$' in a PostgreSQL regex matches only at the very end, so a
    -- trailing newline cannot slip through.
    SELECT p_name ~ '^[A-Za-z0-9_.-]{1,64}$'
$$;

COMMENT ON FUNCTION roomcast.is_room_name(text) IS
    'True for 1 to 64 characters from A-Z a-z 0-9 _ - . (the contract''s '
    'room names).';

CREATE FUNCTION roomcast.is_message_type(p_type text)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT p_type ~ '^[a-z0-9_.-]{1,32}$'
$$;

COMMENT ON FUNCTION roomcast.is_message_type(text) IS
    'True for 1 to 32 characters from a-z 0-9 _ - . (envelope types).';

CREATE FUNCTION roomcast.is_client_id(p_id text)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    -- The range from space to tilde is printable ASCII, 0x20 to 0x7e.
    SELECT p_id ~ '^[ -~]{1,64}$'
$$;

COMMENT ON FUNCTION roomcast.is_client_id(text) IS
    'True for 1 to 64 printable ASCII characters (a client''s message id).';


-- ---------------------------------------------------------------------
-- Settings: one text value per key, read by the programs every few seconds
-- and by publish() on every call, so a change needs no restart.
-- ---------------------------------------------------------------------

CREATE TABLE roomcast.settings (
    key          text PRIMARY KEY,
    value        text NOT NULL,
    description  text
);

COMMENT ON TABLE roomcast.settings IS
    'Run-time settings. Change a value with UPDATE; readers pick it up '
    'within seconds.';

-- Integer settings are parsed on every publish and every poll; a typo must
-- fail at the UPDATE that makes it, not in every request afterwards.
-- Keys this migration does not know are accepted as they are: a later
-- migration that adds a key with a format replaces this function.
CREATE FUNCTION roomcast.setting_is_valid(p_key text, p_value text)
RETURNS boolean
LANGUAGE plpgsql STABLE
AS $$
BEGIN
    IF p_key = 'max_age' THEN
        PERFORM p_value::interval;
        RETURN true;
    END IF;
    IF p_key IN ('max_message_bytes', 'max_body_bytes', 'sse_max_seconds',
                 'sse_heartbeat_seconds', 'poll_default_seconds',
                 'poll_max_seconds', 'poll_max_messages',
                 'history_max_limit', 'presence_timeout_seconds',
                 'max_messages') THEN
        RETURN p_value ~ '^[0-9]{1,15}$';
    END IF;
    RETURN true;
EXCEPTION
    WHEN invalid_datetime_format OR datetime_field_overflow
         OR interval_field_overflow THEN
        RETURN false;
END
$$;

ALTER TABLE roomcast.settings
    ADD CONSTRAINT settings_value_check
    CHECK (roomcast.setting_is_valid(key, value));

COMMENT ON CONSTRAINT settings_value_check ON roomcast.settings IS
    'Rejects a value that readers could not parse (a non-integer for a '
    'count, a bad interval for max_age), so a typo cannot break every '
    'request that reads it.';

INSERT INTO roomcast.settings (key, value, description) VALUES
    -- The whole envelope, JSON text in bytes; publish() rejects a larger
    -- one with SQLSTATE 54000. 64 KiB keeps a stored message well below
    -- what a reader buffers per client.
    ('max_message_bytes', '65536',
     'Largest envelope accepted by publish, in bytes.'),
    -- The HTTP request body, checked before parsing; twice the envelope
    -- limit leaves room for JSON escapes in the client's own encoding.
    ('max_body_bytes', '131072',
     'Largest HTTP request body the workers read, in bytes.'),
    -- An SSE response ends after this long so that no request outlives
    -- the web server's idle and busy timeouts; the browser reconnects
    -- with Last-Event-ID and loses nothing.
    ('sse_max_seconds', '240',
     'Seconds an SSE response lasts before it ends and the client '
     'reconnects.'),
    -- A comment line at least this often keeps proxies from closing an
    -- idle stream and lets the worker notice a client that has gone.
    ('sse_heartbeat_seconds', '15',
     'Seconds between keep-alive comment lines on an idle SSE stream.'),
    -- Held long-poll requests answer empty after this long by default,
    -- below the 30 s idle timeout common in proxies.
    ('poll_default_seconds', '25',
     'Default long-poll timeout when the request gives none, in seconds.'),
    -- Upper bound on the timeout a client may ask for.
    ('poll_max_seconds', '60',
     'Largest long-poll timeout a client may ask for, in seconds.'),
    -- Bounds one poll response; the next poll returns the rest.
    ('poll_max_messages', '500',
     'Most stored messages in one long-poll response.'),
    -- Bounds one history page.
    ('history_max_limit', '1000',
     'Largest limit a history request may ask for.'),
    -- A user with no connection or heartbeat younger than this is offline.
    ('presence_timeout_seconds', '30',
     'Seconds after the last heartbeat before a user counts as gone.'),
    -- Retention default for rooms whose max_messages is NULL; 0 means no
    -- limit by count.
    ('max_messages', '100000',
     'Messages kept per room when the room sets no max_messages '
     '(0: no limit).'),
    -- Retention default for rooms whose max_age is NULL; 0 means no limit
    -- by age.
    ('max_age', '30 days',
     'Age after which messages are trimmed when the room sets no max_age '
     '(0: no limit).');

-- Readers that fall back to a built-in value when an administrator deleted
-- the row: a missing setting should not stop publishing.
CREATE FUNCTION roomcast.setting_int(p_key text, p_fallback bigint)
RETURNS bigint
LANGUAGE sql STABLE
AS $$
    SELECT coalesce(
        (SELECT s.value::bigint FROM roomcast.settings s
          WHERE s.key = p_key),
        p_fallback)
$$;

CREATE FUNCTION roomcast.setting_interval(p_key text, p_fallback interval)
RETURNS interval
LANGUAGE sql STABLE
AS $$
    SELECT coalesce(
        (SELECT s.value::interval FROM roomcast.settings s
          WHERE s.key = p_key),
        p_fallback)
$$;


-- ---------------------------------------------------------------------
-- Rooms and their counters.
-- ---------------------------------------------------------------------

CREATE TABLE roomcast.rooms (
    name          text NOT NULL,
    last_seq      bigint NOT NULL DEFAULT 0,
    public_read   boolean NOT NULL DEFAULT false,
    public_write  boolean NOT NULL DEFAULT false,
    max_messages  bigint NULL,
    max_age       interval NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT rooms_pkey PRIMARY KEY (name),
    CONSTRAINT rooms_name_check CHECK (roomcast.is_room_name(name)),
    CONSTRAINT rooms_last_seq_check CHECK (last_seq >= 0),
    CONSTRAINT rooms_max_messages_check CHECK (max_messages >= 0),
    CONSTRAINT rooms_max_age_check CHECK (max_age >= interval '0')
);

COMMENT ON TABLE roomcast.rooms IS
    'One row per room: its seq counter, access flags and retention. '
    'publish() creates the row on a room''s first message; an '
    'administrator may create it earlier to set flags.';
COMMENT ON COLUMN roomcast.rooms.last_seq IS
    'Seq of the newest message ever published, kept or trimmed. Only '
    'publish() changes it, under this row''s lock.';
COMMENT ON COLUMN roomcast.rooms.max_messages IS
    'Messages kept; NULL: the max_messages setting; 0: no limit.';
COMMENT ON COLUMN roomcast.rooms.max_age IS
    'Age after which messages are trimmed; NULL: the max_age setting; '
    '0: no limit.';

COMMENT ON CONSTRAINT rooms_pkey ON roomcast.rooms IS
    'A room is its name; publish() finds and locks the row by it.';
COMMENT ON CONSTRAINT rooms_name_check ON roomcast.rooms IS
    'Names travel unquoted inside cursors (room:seq) and NOTIFY payloads '
    '(space separated), so only the contract''s characters are allowed.';
COMMENT ON CONSTRAINT rooms_last_seq_check ON roomcast.rooms IS
    'Seqs start at 1; 0 means no message yet.';
COMMENT ON CONSTRAINT rooms_max_messages_check ON roomcast.rooms IS
    'A negative count has no meaning; 0 is the way to say no limit.';
COMMENT ON CONSTRAINT rooms_max_age_check ON roomcast.rooms IS
    'A negative age has no meaning; 0 is the way to say no limit.';


-- ---------------------------------------------------------------------
-- Stored messages.
-- ---------------------------------------------------------------------

CREATE TABLE roomcast.messages (
    room       text NOT NULL,
    seq        bigint NOT NULL,
    type       text NOT NULL,
    client_id  text NULL,
    from_user  text NULL,
    data       jsonb NOT NULL,
    ts         timestamptz NOT NULL DEFAULT clock_timestamp(),
    CONSTRAINT messages_pkey PRIMARY KEY (room, seq),
    CONSTRAINT messages_room_fkey FOREIGN KEY (room)
        REFERENCES roomcast.rooms (name) ON DELETE CASCADE,
    CONSTRAINT messages_seq_check CHECK (seq > 0),
    CONSTRAINT messages_type_check CHECK (
        roomcast.is_message_type(type)
        AND type NOT IN ('ack', 'error', 'presence', 'typing')),
    CONSTRAINT messages_client_id_check
        CHECK (roomcast.is_client_id(client_id)),
    CONSTRAINT messages_from_user_check CHECK (from_user <> '')
);

COMMENT ON TABLE roomcast.messages IS
    'Every stored message, one row per (room, seq). Write it only through '
    'roomcast.publish(), which keeps seqs gap-free and notifies readers.';
COMMENT ON COLUMN roomcast.messages.client_id IS
    'The publisher''s own id for the message ("id" in the envelope).';
COMMENT ON COLUMN roomcast.messages.from_user IS
    'User id of the publisher; NULL for anonymous and SQL publishes.';
COMMENT ON COLUMN roomcast.messages.ts IS
    'Time of the publish, taken under the room lock just before commit.';

COMMENT ON CONSTRAINT messages_pkey ON roomcast.messages IS
    'Readers fetch by room and seq range (history, catch-up after a gap, '
    'large payloads named by NOTIFY); retention deletes by the same range.';
COMMENT ON CONSTRAINT messages_room_fkey ON roomcast.messages IS
    'No message without its room row, which holds the counter; deleting '
    'a room deletes its history.';
COMMENT ON CONSTRAINT messages_seq_check ON roomcast.messages IS
    'Seqs start at 1, so a cursor at 0 means nothing seen yet.';
COMMENT ON CONSTRAINT messages_type_check ON roomcast.messages IS
    'Types become SSE event names, so only the contract''s characters; '
    'ack, error, presence and typing are events that are never stored.';
COMMENT ON CONSTRAINT messages_client_id_check ON roomcast.messages IS
    'Ids are echoed in acks and envelopes; printable ASCII keeps them on '
    'one line.';
COMMENT ON CONSTRAINT messages_from_user_check ON roomcast.messages IS
    'Anonymous is NULL, never the empty string: the idempotency index '
    'folds NULL into '''', so '''' would collide with anonymous.';

-- The unique index behind idempotent publishing: a retry with the same id
-- from the same user in the same room finds the first copy instead of
-- storing a second. Anonymous publishers share the key '' (they cannot be
-- told apart anyway). Messages without an id are not indexed here. An id
-- is remembered as long as retention keeps its message.
CREATE UNIQUE INDEX messages_client_id_key
    ON roomcast.messages (room, (coalesce(from_user, '')), client_id)
    WHERE client_id IS NOT NULL;

COMMENT ON INDEX roomcast.messages_client_id_key IS
    'Finds an earlier message with the same (room, user, id) so a retried '
    'publish returns it instead of storing it twice; unique as a last '
    'guard should that check ever be bypassed.';


-- ---------------------------------------------------------------------
-- The envelope.
-- ---------------------------------------------------------------------

-- Epoch seconds with millisecond precision, the envelope's "ts". One
-- function so that the ack and the envelope always agree.
CREATE FUNCTION roomcast.epoch_seconds(p_ts timestamptz)
RETURNS numeric
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT round(extract(epoch FROM p_ts), 3)
$$;

-- jsonb's text form puts a space after every ':' and ','. Outside strings
-- those are the only blanks it ever writes, so dropping every space that
-- is not inside a string token gives compact JSON. The pattern matches a
-- whole string token (kept) or a lone space (dropped). Control characters
-- inside strings are already escaped by jsonb, so the result holds no raw
-- newline. Cost, measured: about 5 microseconds for a small object and
-- 3 ms for 80 kB.
CREATE FUNCTION roomcast.json_compact(p_data jsonb)
RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$
    SELECT regexp_replace(p_data::text, '("(?:[^"\\]|\\.)*")| ', '\1', 'g')
$$;

COMMENT ON FUNCTION roomcast.json_compact(jsonb) IS
    'The JSON text of a jsonb value without blanks between tokens.';

-- Builds the envelope from its parts; p_data_text must already be compact
-- JSON. publish() uses it before the row exists (to check the size), and
-- envelope() uses it on stored rows, so both give the same bytes.
-- Field order is fixed and every value is a JSON token, which keeps the
-- text deterministic: the same row always gives the same bytes.
CREATE FUNCTION roomcast.envelope_build(
    p_type text, p_room text, p_seq bigint, p_client_id text,
    p_from text, p_data_text text, p_ts timestamptz)
RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT '{"type":' || to_json(p_type)::text
        || ',"room":' || to_json(p_room)::text
        || ',"seq":' || p_seq::text
        || CASE WHEN p_client_id IS NULL THEN ''
                ELSE ',"id":' || to_json(p_client_id)::text END
        || ',"from":' || coalesce(to_json(p_from)::text, 'null')
        || ',"data":' || p_data_text
        || ',"ts":' || roomcast.epoch_seconds(p_ts)::text
        || '}'
$$;

COMMENT ON FUNCTION roomcast.envelope_build(text, text, bigint, text, text,
                                            text, timestamptz) IS
    'Internal to envelope() and publish(); call envelope() instead.';

CREATE FUNCTION roomcast.envelope(m roomcast.messages)
RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT roomcast.envelope_build(m.type, m.room, m.seq, m.client_id,
                                   m.from_user,
                                   roomcast.json_compact(m.data), m.ts)
$$;

COMMENT ON FUNCTION roomcast.envelope(roomcast.messages) IS
    'The stored message as the compact one-line JSON envelope every '
    'transport sends: {"type","room","seq","id" (only when set),"from",'
    '"data","ts"}.';


-- ---------------------------------------------------------------------
-- NOTIFY payloads.
-- ---------------------------------------------------------------------

-- The one place that shapes what goes out on channel 'roomcast':
--   m <room> <seq> <envelope>   the whole message, when it fits
--   M <room> <seq>              too large; readers fetch (room, seq)
-- PostgreSQL refuses a payload of 8000 bytes or more, so 7999 is the
-- largest that can be sent. Room names hold no space (rooms_name_check),
-- which is what lets readers split on the first two spaces.
CREATE FUNCTION roomcast.notify_payload(p_room text, p_seq bigint,
                                        p_envelope text)
RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
DECLARE
    v_payload text := 'm ' || p_room || ' ' || p_seq || ' ' || p_envelope;
BEGIN
    IF octet_length(v_payload) <= 7999 THEN
        RETURN v_payload;
    END IF;
    RETURN 'M ' || p_room || ' ' || p_seq;
END
$$;

COMMENT ON FUNCTION roomcast.notify_payload(text, bigint, text) IS
    'The payload for channel roomcast: "m room seq envelope" when it fits '
    'in 7999 bytes, else "M room seq".';


-- ---------------------------------------------------------------------
-- Retention.
-- ---------------------------------------------------------------------

-- Deletes the oldest messages of one room beyond its max_messages and
-- max_age (or the settings' defaults). Only ever a prefix of seqs goes, so
-- "the first kept seq" is all a reader needs to report a gap.
--
-- Cost stays proportional to what is deleted: the count limit is a range
-- on the primary key, and the age limit walks the primary key from the
-- oldest kept seq to the first message young enough. That walk relies on
-- ts growing with seq, which holds because ts is taken under the room
-- lock; should the clock step back, a few old messages just stay longer.
--
-- Safe without the room lock (trim_all() calls it so): it reads a
-- committed last_seq and deletes only below it, while publishers only add
-- above it.
CREATE FUNCTION roomcast.trim_room(p_room text)
RETURNS bigint
LANGUAGE plpgsql
AS $$
DECLARE
    v_room       roomcast.rooms;
    v_max_count  bigint;
    v_max_age    interval;
    v_keep_from  bigint := 1;
    v_young_seq  bigint;
    v_deleted    bigint;
BEGIN
    SELECT * INTO v_room FROM roomcast.rooms r WHERE r.name = p_room;
    IF NOT FOUND THEN
        RETURN 0;
    END IF;

    v_max_count := coalesce(v_room.max_messages,
                            roomcast.setting_int('max_messages', 100000));
    v_max_age := coalesce(v_room.max_age,
                          roomcast.setting_interval('max_age', '30 days'));

    IF v_max_count > 0 THEN
        v_keep_from := greatest(v_keep_from,
                                v_room.last_seq - v_max_count + 1);
    END IF;

    IF v_max_age > interval '0' THEN
        SELECT m.seq INTO v_young_seq
          FROM roomcast.messages m
         WHERE m.room = p_room AND m.seq >= v_keep_from
           AND m.ts >= clock_timestamp() - v_max_age
         ORDER BY m.seq
         LIMIT 1;
        -- Nothing young enough: every message up to last_seq is too old.
        v_keep_from := coalesce(v_young_seq, v_room.last_seq + 1);
    END IF;

    DELETE FROM roomcast.messages m
     WHERE m.room = p_room AND m.seq < v_keep_from;
    GET DIAGNOSTICS v_deleted = ROW_COUNT;
    RETURN v_deleted;
END
$$;

COMMENT ON FUNCTION roomcast.trim_room(text) IS
    'Deletes the oldest messages of a room beyond its retention; returns '
    'how many. publish() calls it on every 64th seq.';

-- publish() trims a room only on every 64th seq, so a room that has gone
-- quiet keeps messages older than its max_age until it reaches the next
-- multiple of 64. Calling this now and then (hourly is plenty) trims those.
CREATE FUNCTION roomcast.trim_all()
RETURNS bigint
LANGUAGE plpgsql
AS $$
DECLARE
    v_name   text;
    v_total  bigint := 0;
BEGIN
    -- Name order, so two concurrent runs lock rows in the same order.
    FOR v_name IN SELECT r.name FROM roomcast.rooms r ORDER BY r.name LOOP
        v_total := v_total + roomcast.trim_room(v_name);
    END LOOP;
    RETURN v_total;
END
$$;

COMMENT ON FUNCTION roomcast.trim_all() IS
    'Applies retention to every room; returns the number of messages '
    'deleted. For a periodic job: publish() alone trims only busy rooms.';


-- ---------------------------------------------------------------------
-- Publishing.
-- ---------------------------------------------------------------------

-- Raises SQLSTATE 22023 (invalid_parameter_value) for a bad argument. The
-- COLUMN field names the envelope field at fault (room, type or id), so a
-- caller can build its own message without parsing ours.
CREATE FUNCTION roomcast.check_publish_args(p_room text, p_type text,
                                            p_client_id text)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
AS $$
BEGIN
    IF NOT coalesce(roomcast.is_room_name(p_room), false) THEN
        RAISE EXCEPTION 'invalid room name'
            USING ERRCODE = '22023', COLUMN = 'room',
                  HINT = 'A room name is 1 to 64 characters from '
                         'A-Z a-z 0-9 _ - .';
    END IF;
    IF NOT coalesce(roomcast.is_message_type(p_type), false) THEN
        RAISE EXCEPTION 'invalid message type'
            USING ERRCODE = '22023', COLUMN = 'type',
                  HINT = 'A type is 1 to 32 characters from a-z 0-9 _ - .';
    END IF;
    IF p_type IN ('ack', 'error', 'presence', 'typing') THEN
        RAISE EXCEPTION 'message type "%" is reserved', p_type
            USING ERRCODE = '22023', COLUMN = 'type',
                  HINT = 'ack, error, presence and typing are events that '
                         'are never stored.';
    END IF;
    IF p_client_id IS NOT NULL
       AND NOT roomcast.is_client_id(p_client_id) THEN
        RAISE EXCEPTION 'invalid message id'
            USING ERRCODE = '22023', COLUMN = 'id',
                  HINT = 'An id is 1 to 64 printable ASCII characters.';
    END IF;
END
$$;

-- Raises SQLSTATE 54000 (program_limit_exceeded) when an envelope of
-- p_bytes is over the max_message_bytes setting.
CREATE FUNCTION roomcast.check_envelope_size(p_bytes bigint)
RETURNS void
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    v_limit bigint := roomcast.setting_int('max_message_bytes', 65536);
BEGIN
    IF p_bytes > v_limit THEN
        RAISE EXCEPTION 'message too large: % bytes, the limit is %',
                        p_bytes, v_limit
            USING ERRCODE = '54000',
                  HINT = 'The limit is the max_message_bytes setting.';
    END IF;
END
$$;

-- Locks the room's row until the end of the transaction, creating the row
-- first when the room has none. FOR NO KEY UPDATE is the lock the update
-- of last_seq takes anyway, and like FOR UPDATE it excludes every other
-- publisher of the room; unlike FOR UPDATE it lets other tables' foreign
-- keys to rooms be checked meanwhile. The usual case, a room that exists,
-- costs one statement; only a new room pays for the insert.
CREATE FUNCTION roomcast.lock_room(p_room text)
RETURNS void
LANGUAGE plpgsql
AS $$
BEGIN
    PERFORM 1 FROM roomcast.rooms r WHERE r.name = p_room
        FOR NO KEY UPDATE;
    IF FOUND THEN
        RETURN;
    END IF;

    -- Two first publishers race here: one inserts, the other waits for
    -- its commit and then does nothing; both then lock the one row.
    INSERT INTO roomcast.rooms (name) VALUES (p_room)
        ON CONFLICT (name) DO NOTHING;
    PERFORM 1 FROM roomcast.rooms r WHERE r.name = p_room
        FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'room "%" was deleted while publishing', p_room
            USING ERRCODE = '40001',
                  HINT = 'Retry the publish.';
    END IF;
END
$$;

-- Publishes one message: validates, stores it with the room's next seq,
-- and notifies channel 'roomcast'. Returns the seq and ts (epoch seconds,
-- 3 decimals) and duplicate = false; or, when this user already published
-- this id in this room, the first copy's seq and ts and duplicate = true,
-- storing and notifying nothing.
--
-- Why seqs have no gaps and appear in commit order: the room row stays
-- locked from lock_room() until the caller's transaction ends. The next
-- publisher of the room cannot read last_seq before then, so seq n+1 is
-- assigned only after seq n has committed (and is visible), and a publish
-- that rolls back takes its increment with it. The duplicate check runs
-- after the lock for the same reason: two retries of one id in flight at
-- once see each other, and the second returns the first.
--
-- Errors: 22023 for a bad room, type or id (COLUMN says which); 54000 for
-- an envelope over max_message_bytes; nothing is stored in either case.
-- Call it in READ COMMITTED (the default): under REPEATABLE READ a busy
-- room makes it fail with serialization errors. A transaction that
-- publishes to several rooms should do so in name order, or two such
-- transactions may deadlock on each other's room locks.
CREATE FUNCTION roomcast.publish(
    p_room      text,
    p_type      text,
    p_data      jsonb DEFAULT 'null',
    p_from      text DEFAULT NULL,
    p_client_id text DEFAULT NULL)
RETURNS TABLE (seq bigint, ts numeric, duplicate boolean)
LANGUAGE plpgsql
AS $$
DECLARE
    -- Anonymous is NULL; the empty string means the same thing.
    v_from       text := nullif(p_from, '');
    -- SQL NULL data is stored as JSON null.
    v_data       jsonb := coalesce(p_data, 'null'::jsonb);
    v_data_text  text;
    v_seq        bigint;
    v_ts         timestamptz;
    v_envelope   text;
BEGIN
    PERFORM roomcast.check_publish_args(p_room, p_type, p_client_id);

    -- Compacting large data is the costly step: do it before taking the
    -- lock. Data alone over the limit fails here, without the lock.
    v_data_text := roomcast.json_compact(v_data);
    PERFORM roomcast.check_envelope_size(octet_length(v_data_text));

    PERFORM roomcast.lock_room(p_room);

    IF p_client_id IS NOT NULL THEN
        SELECT m.seq, m.ts INTO v_seq, v_ts
          FROM roomcast.messages m
         WHERE m.room = p_room
           AND coalesce(m.from_user, '') = coalesce(v_from, '')
           AND m.client_id = p_client_id;
        IF FOUND THEN
            RETURN QUERY SELECT v_seq, roomcast.epoch_seconds(v_ts), true;
            RETURN;
        END IF;
    END IF;

    UPDATE roomcast.rooms r SET last_seq = r.last_seq + 1
     WHERE r.name = p_room
    RETURNING r.last_seq INTO v_seq;
    v_ts := clock_timestamp();

    v_envelope := roomcast.envelope_build(p_type, p_room, v_seq,
                                          p_client_id, v_from,
                                          v_data_text, v_ts);
    PERFORM roomcast.check_envelope_size(octet_length(v_envelope));

    INSERT INTO roomcast.messages AS m
           (room, seq, type, client_id, from_user, data, ts)
    VALUES (p_room, v_seq, p_type, p_client_id, v_from, v_data, v_ts);

    -- Delivered to listeners at commit, in commit order.
    PERFORM pg_notify('roomcast',
                      roomcast.notify_payload(p_room, v_seq, v_envelope));

    -- Trimming on every publish would add a delete to each; every 64th
    -- keeps a room within 63 messages of its limit at a 64th of the cost.
    IF v_seq % 64 = 0 THEN
        PERFORM roomcast.trim_room(p_room);
    END IF;

    RETURN QUERY SELECT v_seq, roomcast.epoch_seconds(v_ts), false;
END
$$;

COMMENT ON FUNCTION roomcast.publish(text, text, jsonb, text, text) IS
    'Stores a message with the room''s next seq and notifies channel '
    'roomcast. Returns (seq, ts, duplicate); a repeated (room, from, id) '
    'returns the first copy with duplicate = true.';


-- ---------------------------------------------------------------------
-- Running processes.
-- ---------------------------------------------------------------------

CREATE TABLE roomcast.workers (
    kind         text NOT NULL,
    host         text NOT NULL,
    pid          int NOT NULL,
    started      timestamptz NOT NULL DEFAULT now(),
    last_seen    timestamptz NOT NULL DEFAULT now(),
    connections  int NOT NULL DEFAULT 0,
    delivered    bigint NOT NULL DEFAULT 0,
    CONSTRAINT workers_pkey PRIMARY KEY (kind, host, pid),
    CONSTRAINT workers_counts_check CHECK (connections >= 0
                                           AND delivered >= 0)
);

COMMENT ON TABLE roomcast.workers IS
    'One row per running process of roomcast-fcgi or roomcast-ws, '
    'refreshed by worker_heartbeat(); rows not seen for 5 minutes are '
    'deleted.';
COMMENT ON COLUMN roomcast.workers.kind IS 'Program: fcgi or ws.';
COMMENT ON COLUMN roomcast.workers.connections IS
    'Client connections held at the last heartbeat.';
COMMENT ON COLUMN roomcast.workers.delivered IS
    'Messages delivered to clients since the process started.';

COMMENT ON CONSTRAINT workers_pkey ON roomcast.workers IS
    'A process is its program, host and pid; the heartbeat upserts on it.';
COMMENT ON CONSTRAINT workers_counts_check ON roomcast.workers IS
    'Counters cannot go below zero; a negative value is a caller bug.';

-- Upserts the caller's row and deletes rows of processes that stopped
-- sending heartbeats 5 minutes ago (they died without saying so). The
-- table holds one row per process, so the delete costs next to nothing.
-- Parameters carry the column names so named notation reads naturally;
-- inside, they are qualified with the function name.
-- Limitation: a new process that reuses a dead one's pid on the same host
-- within 5 minutes inherits that row's "started".
CREATE FUNCTION roomcast.worker_heartbeat(kind text, host text, pid int,
                                          connections int, delivered bigint)
RETURNS void
LANGUAGE plpgsql
AS $$
BEGIN
    DELETE FROM roomcast.workers w
     WHERE w.last_seen < now() - interval '5 minutes';

    INSERT INTO roomcast.workers AS w
           (kind, host, pid, started, last_seen, connections, delivered)
    VALUES (worker_heartbeat.kind, worker_heartbeat.host,
            worker_heartbeat.pid, now(), now(),
            worker_heartbeat.connections, worker_heartbeat.delivered)
    ON CONFLICT ON CONSTRAINT workers_pkey DO UPDATE
       SET last_seen = excluded.last_seen,
           connections = excluded.connections,
           delivered = excluded.delivered;
END
$$;

COMMENT ON FUNCTION roomcast.worker_heartbeat(text, text, int, int, bigint)
    IS 'Records that a process is alive, with its counters; forgets '
       'processes silent for 5 minutes.';


-- ---------------------------------------------------------------------
-- Admin view.
-- ---------------------------------------------------------------------

-- One scan of each room's stored messages: meant for an administrator's
-- psql, not for a request path.
CREATE VIEW roomcast.room_stats AS
SELECT r.name AS room,
       r.last_seq,
       s.stored_messages,
       s.first_seq,
       s.last_message_at,
       s.messages_last_hour
  FROM roomcast.rooms r
 CROSS JOIN LATERAL (
       SELECT count(*) AS stored_messages,
              min(m.seq) AS first_seq,
              max(m.ts) AS last_message_at,
              count(*) FILTER (WHERE m.ts > now() - interval '1 hour')
                  AS messages_last_hour
         FROM roomcast.messages m
        WHERE m.room = r.name) s;

COMMENT ON VIEW roomcast.room_stats IS
    'Per room: last seq, messages kept, first kept seq (NULL when none), '
    'time of the newest kept message, messages of the last hour.';
