-- 003_presence.sql: who is online in which room, and the ephemeral
-- presence and typing events.
--
-- What it is for: one row per (connection, room) with its last heartbeat;
-- the functions the workers call when a stream opens or ends, when they
-- refresh their streams, when they sweep expired rows, and when a client
-- heartbeats or types; the join, leave and update events those changes
-- cause; the admin view online; and kick() and room_stats extended to
-- presence.
-- What it is not for: delivering events (the workers read the NOTIFY
-- payloads) or deciding who may see a room's presence (the workers check
-- can_read before they call presence_list()).
-- Who uses it: deploy/roomcast-migrate applies it once, after 002, in one
-- transaction that also records it in roomcast.schema_version. The
-- workers call presence_join(), presence_leave(), presence_touch(),
-- presence_sweep(), presence_list() and typing(); administrators read
-- online and room_stats and call kick().
--
-- Runs once, only through deploy/roomcast-migrate, which provides the
-- transaction. A second run fails on the table that already exists.
--
-- Ephemeral notifications on channel 'roomcast' start with 'e ', beside
-- 'm ', 'M ' (001) and 'c ' (002):
--   e <room> <envelope>   an event for whoever listens to the room now
-- The envelope is compact JSON on one line without seq or ts:
--   {"type":"presence","room":R,"from":U,
--    "data":{"event":"join"|"leave"|"update","state":S}}
--   {"type":"typing","room":R,"from":U}
--
-- How join and leave stay exact. Events are per user and room, rows per
-- connection and room: a user with two tabs has two rows and must cause
-- one join, and a leave only when its last row goes. The functions that
-- add or remove rows of a (room, user) pair first take a transaction
-- advisory lock on that pair (presence_lock()), so "does the user have
-- another row" is answered with no insert or delete of that pair in
-- flight. Several pairs are always locked in the order of their lock
-- keys, so two of these transactions cannot deadlock on each other; and
-- other connections' expired rows are deleted with SKIP LOCKED, so they
-- never wait for a row that presence_touch() holds. Two pairs whose keys
-- collide merely take turns.
-- The invariant they keep: a join has been announced for a pair, and no
-- leave since, exactly when the pair has rows. Expired rows not yet
-- swept still count as announced; whoever deletes a pair's last row
-- announces the leave, and a join or leave of a pair first deletes the
-- pair's expired rows, so a user who expired and comes back is seen as
-- leave, then join. presence_touch() may bring back a row that expired
-- but was not swept yet: no leave went out for it, so no join is owed,
-- and only presence_list() missed the user for that while.
--
-- A user's state in a room, as presence_list() shows it, changes only
-- with an event: a join carries it, an update carries the new one, also
-- when the connection that set it leaves and an older state shows again.
--
-- The advisory locks used here: presence_lock() uses the one-key form
-- (one bigint); PostgreSQL keeps it apart from the two-key form, so it
-- never meets the migration runner's (0x726f6f6d, 1) or presence_sweep()'s
-- (0x726f6f6d, 2).


-- ---------------------------------------------------------------------
-- The rows.
-- ---------------------------------------------------------------------

CREATE TABLE roomcast.presence (
    conn_id    text NOT NULL,
    room       text NOT NULL,
    user_id    text NOT NULL,
    state      jsonb NULL,
    joined_at  timestamptz NOT NULL DEFAULT now(),
    last_seen  timestamptz NOT NULL DEFAULT now(),
    state_at   timestamptz NULL,
    CONSTRAINT presence_pkey PRIMARY KEY (conn_id, room),
    CONSTRAINT presence_conn_id_check
        CHECK (conn_id ~ '^[^\x01-\x1f\x7f-\x9f]{1,200}$'),
    CONSTRAINT presence_room_check CHECK (roomcast.is_room_name(room)),
    CONSTRAINT presence_user_check CHECK (roomcast.is_user_id(user_id)),
    CONSTRAINT presence_state_at_check
        CHECK ((state IS NULL) = (state_at IS NULL))
);

COMMENT ON TABLE roomcast.presence IS
    'One row per connection and room that keeps a user present. Written '
    'only through the presence_* functions, which announce joins and '
    'leaves; read it through the online view.';
COMMENT ON COLUMN roomcast.presence.conn_id IS
    'The connection: host:pid:n for a worker''s stream, http:<user> for a '
    'client that heartbeats over HTTP, poll:<user> for a long-poll '
    'client.';
COMMENT ON COLUMN roomcast.presence.state IS
    'The state the client last sent (any JSON), NULL when it sent none.';
COMMENT ON COLUMN roomcast.presence.state_at IS
    'When the client last sent a state on this row. A user''s state in a '
    'room is that of its live row with the latest state_at: the state set '
    'last wins, and a heartbeat without a state changes nothing.';
COMMENT ON COLUMN roomcast.presence.joined_at IS
    'When this connection joined the room.';
COMMENT ON COLUMN roomcast.presence.last_seen IS
    'Last heartbeat or refresh. A row older than presence_timeout_seconds '
    'no longer makes its user online, and presence_sweep() deletes it.';

COMMENT ON CONSTRAINT presence_pkey ON roomcast.presence IS
    'A connection is in a room once; joins upsert on it and workers '
    'refresh their rows by conn_id.';
COMMENT ON CONSTRAINT presence_conn_id_check ON roomcast.presence IS
    'A connection id holds a user id (up to 64 characters) and a host; '
    'no control characters, so it stays on one log line.';
COMMENT ON CONSTRAINT presence_room_check ON roomcast.presence IS
    'Room names travel unquoted in NOTIFY payloads, split on spaces.';
COMMENT ON CONSTRAINT presence_user_check ON roomcast.presence IS
    'Same rule as tokens: the user goes into envelopes and payloads.';
COMMENT ON CONSTRAINT presence_state_at_check ON roomcast.presence IS
    'A state has the time it was set; no state, no time.';

-- Joins, leaves, presence_list() and the online view look up one pair or
-- one room; both are a prefix of this index.
CREATE INDEX presence_room_user_idx ON roomcast.presence (room, user_id);

COMMENT ON INDEX roomcast.presence_room_user_idx IS
    'Finds the rows of a room, or of a user in a room, without reading '
    'other rooms.';

-- presence_sweep() runs every few seconds on every worker; this keeps it
-- from reading the whole table to find the few expired rows.
CREATE INDEX presence_last_seen_idx ON roomcast.presence (last_seen);

COMMENT ON INDEX roomcast.presence_last_seen_idx IS
    'Lets presence_sweep() find expired rows without a full scan.';


-- ---------------------------------------------------------------------
-- Helpers: the timeout, the pair lock, the payloads.
-- ---------------------------------------------------------------------

-- At least one second: 0 would make every row expired the moment it is
-- written, and every join would be followed by a leave.
CREATE FUNCTION roomcast.presence_timeout()
RETURNS interval
LANGUAGE sql STABLE
AS $$
    SELECT make_interval(secs => greatest(
        roomcast.setting_int('presence_timeout_seconds', 30), 1))
$$;

COMMENT ON FUNCTION roomcast.presence_timeout() IS
    'presence_timeout_seconds as an interval (at least 1 second): a row '
    'with last_seen older than now() minus this is expired.';

-- Rows with last_seen at or before this are expired. Callers write it as
-- (SELECT roomcast.presence_cutoff()): a scalar subquery is computed once
-- per statement, where the bare call would read the setting again for
-- every row a filter looks at.
CREATE FUNCTION roomcast.presence_cutoff()
RETURNS timestamptz
LANGUAGE sql STABLE
AS $$
    SELECT now() - roomcast.presence_timeout()
$$;

COMMENT ON FUNCTION roomcast.presence_cutoff() IS
    'now() minus presence_timeout(): the last_seen of a row that has just '
    'expired.';

-- The room comes first and room names hold no space, so the text before
-- the first space is the room: no two pairs give the same text.
CREATE FUNCTION roomcast.presence_lock_key(p_room text, p_user text)
RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT hashtextextended(p_room || ' ' || p_user, 0)
$$;

COMMENT ON FUNCTION roomcast.presence_lock_key(text, text) IS
    'Internal: the advisory lock key of a (room, user) pair.';

CREATE FUNCTION roomcast.presence_lock(p_room text, p_user text)
RETURNS void
LANGUAGE sql
AS $$
    SELECT pg_advisory_xact_lock(roomcast.presence_lock_key(p_room, p_user))
$$;

COMMENT ON FUNCTION roomcast.presence_lock(text, text) IS
    'Internal: locks a (room, user) pair until the end of the '
    'transaction. Lock several pairs in presence_lock_key() order.';

-- The one place that shapes an ephemeral payload: 'e <room> <envelope>'.
-- p_data_text is compact JSON, or NULL for an envelope without "data"
-- (typing). Field order is fixed, so the same event gives the same bytes.
CREATE FUNCTION roomcast.ephemeral_payload(p_room text, p_type text,
                                           p_from text, p_data_text text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT 'e ' || p_room || ' '
        || '{"type":' || to_json(p_type)::text
        || ',"room":' || to_json(p_room)::text
        || ',"from":' || coalesce(to_json(p_from)::text, 'null')
        || CASE WHEN p_data_text IS NULL THEN ''
                ELSE ',"data":' || p_data_text END
        || '}'
$$;

COMMENT ON FUNCTION roomcast.ephemeral_payload(text, text, text, text) IS
    'Internal: the NOTIFY payload "e room envelope" of an ephemeral event; '
    'the caller keeps it within 7999 bytes.';

-- Sends one presence event at commit. PostgreSQL refuses a payload of
-- 8000 bytes or more, and an ephemeral event cannot be fetched later the
-- way a large message is; a state too large to fit is replaced by null,
-- so the join, leave or update itself still goes out.
CREATE FUNCTION roomcast.presence_notify(p_room text, p_user text,
                                         p_event text, p_state jsonb)
RETURNS void
LANGUAGE plpgsql
AS $$
DECLARE
    v_head     text := '{"event":' || to_json(p_event)::text || ',"state":';
    v_payload  text;
BEGIN
    v_payload := roomcast.ephemeral_payload(
        p_room, 'presence', p_user,
        v_head || coalesce(roomcast.json_compact(p_state), 'null') || '}');
    IF octet_length(v_payload) > 7999 THEN
        v_payload := roomcast.ephemeral_payload(
            p_room, 'presence', p_user, v_head || 'null}');
    END IF;
    PERFORM pg_notify('roomcast', v_payload);
END
$$;

COMMENT ON FUNCTION roomcast.presence_notify(text, text, text, jsonb) IS
    'Internal: notifies a presence event (join, leave, update) with the '
    'user''s state, or null when the state does not fit in a payload.';

-- Deletes the pair's expired rows; returns how many. A row that another
-- session holds locked is being refreshed by presence_touch() right now,
-- so it is skipped rather than waited for: waiting could deadlock with a
-- touch that locks rows in another order, and the row is about to be
-- live again anyway. Call with the pair locked.
CREATE FUNCTION roomcast.presence_drop_expired(p_room text, p_user text)
RETURNS integer
LANGUAGE plpgsql
AS $$
DECLARE
    v_count  integer;
BEGIN
    DELETE FROM roomcast.presence p
     WHERE (p.conn_id, p.room) IN (
           SELECT q.conn_id, q.room
             FROM roomcast.presence q
            WHERE q.room = p_room AND q.user_id = p_user
              AND q.last_seen <= (SELECT roomcast.presence_cutoff())
              FOR UPDATE SKIP LOCKED);
    GET DIAGNOSTICS v_count = ROW_COUNT;
    RETURN v_count;
END
$$;

COMMENT ON FUNCTION roomcast.presence_drop_expired(text, text) IS
    'Internal: deletes the expired rows of a (room, user) pair that are '
    'not being refreshed this moment; returns how many.';

-- Announces a leave when rows of the pair were deleted (p_deleted) and
-- none is left. Call with the pair locked, after the deletes.
CREATE FUNCTION roomcast.presence_leave_if_gone(p_room text, p_user text,
                                                p_deleted integer)
RETURNS boolean
LANGUAGE plpgsql
AS $$
BEGIN
    IF p_deleted = 0 OR EXISTS (SELECT 1 FROM roomcast.presence p
                                 WHERE p.room = p_room
                                   AND p.user_id = p_user) THEN
        RETURN false;
    END IF;
    PERFORM roomcast.presence_notify(p_room, p_user, 'leave', NULL);
    RETURN true;
END
$$;

COMMENT ON FUNCTION roomcast.presence_leave_if_gone(text, text, integer) IS
    'Internal: notifies a leave when rows were deleted and the user has '
    'no row left in the room; true when it did.';


-- ---------------------------------------------------------------------
-- What the workers call.
-- ---------------------------------------------------------------------

-- Records that connection p_conn of user p_user is in each of p_rooms:
-- upserts one row per room with last_seen = now(), replacing its state
-- only when p_state is not NULL. Per room, notifies
--   join    when the user had no live row there before (its state is
--           p_state); a user who had only expired rows gets a leave
--           first, since that leave was still owed;
--   update  else, when p_state is not NULL and differs from the user's
--           state there (the one presence_list() shows).
-- Errors: 22023 for a bad connection id, user or room.
CREATE FUNCTION roomcast.presence_join(p_conn text, p_rooms text[],
                                       p_user text,
                                       p_state jsonb DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql
AS $$
DECLARE
    v_room  text;
BEGIN
    IF p_conn IS NULL OR p_conn !~ '^[^\x01-\x1f\x7f-\x9f]{1,200}$' THEN
        RAISE EXCEPTION 'bad connection id: %', roomcast.quote_arg(p_conn)
            USING ERRCODE = '22023', COLUMN = 'conn_id';
    END IF;
    IF p_user IS NULL OR NOT roomcast.is_user_id(p_user) THEN
        RAISE EXCEPTION 'bad user id: %', roomcast.quote_arg(p_user)
            USING ERRCODE = '22023', COLUMN = 'user_id';
    END IF;
    IF p_rooms IS NULL
       OR EXISTS (SELECT 1 FROM unnest(p_rooms) AS u(r)
                   WHERE NOT coalesce(roomcast.is_room_name(u.r), false))
       THEN
        RAISE EXCEPTION 'bad room list: %',
                        roomcast.quote_arg(p_rooms::text)
            USING ERRCODE = '22023', COLUMN = 'room';
    END IF;

    -- Lock-key order: see the head of this file.
    FOR v_room IN
        SELECT d.r
          FROM (SELECT DISTINCT u.r FROM unnest(p_rooms) AS u(r)) d
         ORDER BY roomcast.presence_lock_key(d.r, p_user)
    LOOP
        PERFORM roomcast.presence_join_room(p_conn, v_room, p_user,
                                            p_state);
    END LOOP;
END
$$;

COMMENT ON FUNCTION roomcast.presence_join(text, text[], text, jsonb) IS
    'Records a connection of a user in rooms (a heartbeat when it is '
    'there already) and notifies join or update events as needed.';

-- One room of presence_join(); arguments already checked.
CREATE FUNCTION roomcast.presence_join_room(p_conn text, p_room text,
                                            p_user text, p_state jsonb)
RETURNS void
LANGUAGE plpgsql
AS $$
DECLARE
    v_dropped     integer;
    v_had_rows    boolean;
    v_prev_state  jsonb;
BEGIN
    PERFORM roomcast.presence_lock(p_room, p_user);

    -- Rows left after this are live (or being refreshed this moment), so
    -- "had rows" means "was online".
    v_dropped := roomcast.presence_drop_expired(p_room, p_user);
    v_had_rows := EXISTS (SELECT 1 FROM roomcast.presence p
                           WHERE p.room = p_room AND p.user_id = p_user);
    IF NOT v_had_rows THEN
        PERFORM roomcast.presence_leave_if_gone(p_room, p_user, v_dropped);
    ELSIF p_state IS NOT NULL THEN
        v_prev_state := roomcast.presence_user_state(p_room, p_user);
    END IF;

    INSERT INTO roomcast.presence AS p
           (conn_id, room, user_id, state, joined_at, last_seen, state_at)
    VALUES (p_conn, p_room, p_user, p_state, now(), now(),
            CASE WHEN p_state IS NOT NULL THEN now() END)
    ON CONFLICT ON CONSTRAINT presence_pkey DO UPDATE
       SET last_seen = excluded.last_seen,
           state = coalesce(excluded.state, p.state),
           state_at = coalesce(excluded.state_at, p.state_at);

    IF NOT v_had_rows THEN
        PERFORM roomcast.presence_notify(p_room, p_user, 'join', p_state);
    ELSIF p_state IS NOT NULL
          AND p_state IS DISTINCT FROM v_prev_state THEN
        PERFORM roomcast.presence_notify(p_room, p_user, 'update', p_state);
    END IF;
END
$$;

COMMENT ON FUNCTION roomcast.presence_join_room(text, text, text, jsonb) IS
    'Internal: one room of presence_join().';

-- The state presence_list() shows for a user in a room: that of its live
-- row whose state was set last. Expired rows do not count, so deleting
-- them never changes it.
CREATE FUNCTION roomcast.presence_user_state(p_room text, p_user text)
RETURNS jsonb
LANGUAGE sql STABLE
AS $$
    SELECT p.state
      FROM roomcast.presence p
     WHERE p.room = p_room AND p.user_id = p_user
       AND p.state IS NOT NULL
       AND p.last_seen > (SELECT roomcast.presence_cutoff())
     ORDER BY p.state_at DESC, p.conn_id
     LIMIT 1
$$;

COMMENT ON FUNCTION roomcast.presence_user_state(text, text) IS
    'Internal: the state of the user''s live row whose state was set '
    'last, or NULL.';

-- Ends connection p_conn in p_rooms (in every room it is in when p_rooms
-- is NULL): deletes its rows and, per room, notifies
--   leave   when its user has no row left there; expired rows of the
--           same user and room go too, since the leave says all are gone;
--   update  else, when the user's state there changes because the state
--           this connection set is gone (the new one may be null).
-- A connection that is in none of the rooms changes nothing, so calling
-- it twice is safe.
CREATE FUNCTION roomcast.presence_leave(p_conn text,
                                        p_rooms text[] DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql
AS $$
DECLARE
    v_pair  record;
BEGIN
    -- Lock-key order: see the head of this file. The user is read before
    -- the lock; should the row vanish meanwhile (a sweep), the delete
    -- finds nothing and whoever deleted it announced the leave.
    FOR v_pair IN
        SELECT p.room, p.user_id
          FROM roomcast.presence p
         WHERE p.conn_id = p_conn
           AND (p_rooms IS NULL OR p.room = ANY (p_rooms))
         ORDER BY roomcast.presence_lock_key(p.room, p.user_id)
    LOOP
        PERFORM roomcast.presence_leave_room(p_conn, v_pair.room,
                                             v_pair.user_id);
    END LOOP;
END
$$;

COMMENT ON FUNCTION roomcast.presence_leave(text, text[]) IS
    'Removes a connection from rooms (all of its rooms for NULL) and '
    'notifies a leave for each room its user has no other row in.';

-- One room of presence_leave().
CREATE FUNCTION roomcast.presence_leave_room(p_conn text, p_room text,
                                             p_user text)
RETURNS void
LANGUAGE plpgsql
AS $$
DECLARE
    v_deleted  integer;
    v_before   jsonb;
    v_after    jsonb;
BEGIN
    PERFORM roomcast.presence_lock(p_room, p_user);
    v_before := roomcast.presence_user_state(p_room, p_user);

    DELETE FROM roomcast.presence p
     WHERE p.conn_id = p_conn AND p.room = p_room AND p.user_id = p_user;
    GET DIAGNOSTICS v_deleted = ROW_COUNT;
    v_deleted := v_deleted + roomcast.presence_drop_expired(p_room, p_user);

    IF roomcast.presence_leave_if_gone(p_room, p_user, v_deleted)
       OR v_deleted = 0 THEN
        RETURN;
    END IF;
    v_after := roomcast.presence_user_state(p_room, p_user);
    IF v_after IS DISTINCT FROM v_before THEN
        PERFORM roomcast.presence_notify(p_room, p_user, 'update', v_after);
    END IF;
END
$$;

COMMENT ON FUNCTION roomcast.presence_leave_room(text, text, text) IS
    'Internal: one room of presence_leave().';

-- Refreshes every row of the given connections in one statement: a
-- worker calls it once per interval for all of its streams, so the cost
-- grows with the number of processes, not of streams. Returns the number
-- of rows refreshed; fewer than the caller holds means some were swept
-- (the caller may join them again).
-- A row that expired but was not swept yet comes back to life here
-- without a join: no leave was announced for it either.
CREATE FUNCTION roomcast.presence_touch(p_conns text[])
RETURNS integer
LANGUAGE plpgsql
AS $$
DECLARE
    v_count  integer;
BEGIN
    UPDATE roomcast.presence p
       SET last_seen = now()
     WHERE p.conn_id = ANY (p_conns);
    GET DIAGNOSTICS v_count = ROW_COUNT;
    RETURN v_count;
END
$$;

COMMENT ON FUNCTION roomcast.presence_touch(text[]) IS
    'Sets last_seen = now() on every row of the given connections in one '
    'UPDATE; returns the number of rows.';

-- Deletes expired rows and notifies a leave for each (room, user) left
-- with no row. Every worker calls it every few seconds; the advisory lock
-- (0x726f6f6d 'room', 2) lets one run at a time and makes the others
-- return -1 at once instead of queueing behind it. Returns the number of
-- rows deleted, or -1 when another session is sweeping.
-- The lock is held to the end of the caller's transaction: call it on its
-- own, outside a longer transaction.
CREATE FUNCTION roomcast.presence_sweep()
RETURNS integer
LANGUAGE plpgsql
AS $$
DECLARE
    v_pair     record;
    v_deleted  integer;
    v_total    integer := 0;
BEGIN
    IF NOT pg_try_advisory_xact_lock(1919905645, 2) THEN
        RETURN -1;
    END IF;

    FOR v_pair IN
        SELECT DISTINCT p.room, p.user_id,
               roomcast.presence_lock_key(p.room, p.user_id) AS lock_key
          FROM roomcast.presence p
         WHERE p.last_seen <= (SELECT roomcast.presence_cutoff())
         ORDER BY lock_key
    LOOP
        PERFORM roomcast.presence_lock(v_pair.room, v_pair.user_id);
        v_deleted := roomcast.presence_drop_expired(v_pair.room,
                                                    v_pair.user_id);
        PERFORM roomcast.presence_leave_if_gone(v_pair.room,
                                                v_pair.user_id, v_deleted);
        v_total := v_total + v_deleted;
    END LOOP;
    RETURN v_total;
END
$$;

COMMENT ON FUNCTION roomcast.presence_sweep() IS
    'Deletes expired presence rows and notifies the leaves; returns the '
    'rows deleted, or -1 when another session is sweeping.';


-- ---------------------------------------------------------------------
-- Who is online.
-- ---------------------------------------------------------------------

-- Live rows, one per room and user: since is the user's earliest join
-- among its live rows, last_seen its latest heartbeat, state the one it
-- set last (presence_user_state()).
CREATE VIEW roomcast.online AS
SELECT p.room,
       p.user_id AS "user",
       (array_agg(p.state ORDER BY p.state_at DESC, p.conn_id)
            FILTER (WHERE p.state IS NOT NULL))[1] AS state,
       min(p.joined_at) AS since,
       max(p.last_seen) AS last_seen
  FROM roomcast.presence p
 WHERE p.last_seen > (SELECT roomcast.presence_cutoff())
 GROUP BY p.room, p.user_id;

COMMENT ON VIEW roomcast.online IS
    'Users online per room (a connection or heartbeat younger than '
    'presence_timeout_seconds), with their state, when they came and when '
    'they were last seen.';

-- What GET /rt/rooms/{room}/presence shows: the online view of one room
-- with epoch seconds (3 decimals), ordered by user.
CREATE FUNCTION roomcast.presence_list(p_room text)
RETURNS TABLE (user_id text, state jsonb, since double precision,
               last_seen double precision)
LANGUAGE sql STABLE
AS $$
    SELECT o."user", o.state,
           roomcast.epoch_seconds(o.since)::double precision,
           roomcast.epoch_seconds(o.last_seen)::double precision
      FROM roomcast.online o
     WHERE o.room = p_room
     ORDER BY o."user"
$$;

COMMENT ON FUNCTION roomcast.presence_list(text) IS
    'The users online in a room, one row each: user, state, since and '
    'last_seen as epoch seconds; ordered by user.';


-- ---------------------------------------------------------------------
-- Typing.
-- ---------------------------------------------------------------------

-- Notifies a typing event; nothing is stored. p_user NULL sends
-- "from":null. Errors: 22023 for a bad room or user.
CREATE FUNCTION roomcast.typing(p_room text, p_user text)
RETURNS void
LANGUAGE plpgsql
AS $$
BEGIN
    IF p_room IS NULL OR NOT roomcast.is_room_name(p_room) THEN
        RAISE EXCEPTION 'bad room name: %', roomcast.quote_arg(p_room)
            USING ERRCODE = '22023', COLUMN = 'room';
    END IF;
    IF p_user IS NOT NULL AND NOT roomcast.is_user_id(p_user) THEN
        RAISE EXCEPTION 'bad user id: %', roomcast.quote_arg(p_user)
            USING ERRCODE = '22023', COLUMN = 'user_id';
    END IF;
    -- Under 300 bytes: a room and a user are at most 64 characters each.
    PERFORM pg_notify('roomcast', roomcast.ephemeral_payload(
        p_room, 'typing', p_user, NULL));
END
$$;

COMMENT ON FUNCTION roomcast.typing(text, text) IS
    'Notifies a typing event from a user (NULL: anonymous) to the room.';


-- ---------------------------------------------------------------------
-- 002's kick() and 001's room_stats, extended to presence.
-- ---------------------------------------------------------------------

-- As in 002, plus: the user's rows in the room are deleted at once, with
-- the leave, instead of waiting for the streams to end. Those streams'
-- own presence_leave() then finds nothing and announces nothing.
CREATE OR REPLACE FUNCTION roomcast.kick(p_user text, p_room text)
RETURNS void
LANGUAGE plpgsql
AS $$
DECLARE
    v_deleted  integer;
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

    PERFORM roomcast.presence_lock(p_room, p_user);
    DELETE FROM roomcast.presence p
     WHERE p.room = p_room AND p.user_id = p_user;
    GET DIAGNOSTICS v_deleted = ROW_COUNT;
    PERFORM roomcast.presence_leave_if_gone(p_room, p_user, v_deleted);
END
$$;

COMMENT ON FUNCTION roomcast.kick(text, text) IS
    'Closes the user''s open streams in the room on every process and '
    'removes the user from the room''s presence; the user''s rights are '
    'unchanged.';

-- The columns of 001 in the same order, then online_users: CREATE OR
-- REPLACE VIEW may only add columns at the end.
CREATE OR REPLACE VIEW roomcast.room_stats AS
SELECT r.name AS room,
       r.last_seq,
       s.stored_messages,
       s.first_seq,
       s.last_message_at,
       s.messages_last_hour,
       (SELECT count(DISTINCT p.user_id)
          FROM roomcast.presence p
         WHERE p.room = r.name
           AND p.last_seen > (SELECT roomcast.presence_cutoff()))
           AS online_users
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
    'time of the newest kept message, messages of the last hour, users '
    'online now.';
