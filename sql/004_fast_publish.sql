-- 004_fast_publish.sql: roomcast.publish() in one function body.
--
-- What it changes: publish() keeps its signature, its checks, its errors
-- and its result, but does its work with fewer statements. The first
-- version called small SQL helper functions for each check and for the
-- envelope; PostgreSQL plans a non-inlined SQL function anew on every
-- call, and with several of them per publish, parsing and planning were
-- most of a publish's CPU. Here the checks are inline expressions, the
-- row lock and the counter are one UPDATE, and the size limit is read
-- once per call.
-- Why it matters: every process that notifies commits one at a time
-- (PostgreSQL serialises the commits of notifying transactions), so the
-- time a publish spends holding its locks bounds the publish rate of the
-- whole database.
-- What it is not: a change of behaviour. The helpers of 001 stay, for
-- the table constraints and for administrators.
-- Runs once, through deploy/roomcast-migrate; CREATE OR REPLACE keeps
-- every grant and dependant of the function.

CREATE OR REPLACE FUNCTION roomcast.publish(
    p_room      text,
    p_type      text,
    p_data      jsonb DEFAULT 'null',
    p_from      text DEFAULT NULL,
    p_client_id text DEFAULT NULL)
RETURNS TABLE (seq bigint, ts numeric, duplicate boolean)
LANGUAGE plpgsql
AS $$
#variable_conflict use_variable
DECLARE
    v_from      text := nullif(p_from, '');
    v_data_text text;
    v_limit     bigint;
    v_seq       bigint;
    v_ts        timestamptz;
    v_epoch     numeric;
    v_envelope  text;
    v_payload   text;
    v_dup_seq   bigint;
    v_dup_ts    timestamptz;
BEGIN
    IF p_room IS NULL OR p_room !~ '^[A-Za-z0-9_.-]{1,64}$' THEN
        RAISE EXCEPTION 'invalid room name'
            USING ERRCODE = '22023', COLUMN = 'room',
                  HINT = 'A room name is 1 to 64 characters from '
                         'A-Z a-z 0-9 _ - .';
    END IF;
    IF p_type IS NULL OR p_type !~ '^[a-z0-9_.-]{1,32}$' THEN
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
    IF p_client_id IS NOT NULL AND p_client_id !~ '^[ -~]{1,64}$' THEN
        RAISE EXCEPTION 'invalid message id'
            USING ERRCODE = '22023', COLUMN = 'id',
                  HINT = 'An id is 1 to 64 printable ASCII characters.';
    END IF;

    -- Compact the data before any lock: for a large message this is the
    -- costly step, and data alone over the limit fails without a lock.
    SELECT coalesce(max(s.value::bigint), 65536) INTO v_limit
      FROM roomcast.settings s WHERE s.key = 'max_message_bytes';
    v_data_text := roomcast.json_compact(coalesce(p_data, 'null'::jsonb));
    IF octet_length(v_data_text) > v_limit THEN
        RAISE EXCEPTION 'message too large: % bytes, the limit is %',
                        octet_length(v_data_text), v_limit
            USING ERRCODE = '54000',
                  HINT = 'The limit is the max_message_bytes setting.';
    END IF;

    -- Taking the next seq locks the room's row until commit: the next
    -- publisher of the room waits here, so seqs commit in order with no
    -- gaps. A room's first publish creates its row; two first publishers
    -- race on the insert, one waits for the other, both then update.
    UPDATE roomcast.rooms r SET last_seq = r.last_seq + 1
     WHERE r.name = p_room
    RETURNING r.last_seq INTO v_seq;
    IF NOT FOUND THEN
        INSERT INTO roomcast.rooms (name) VALUES (p_room)
            ON CONFLICT (name) DO NOTHING;
        UPDATE roomcast.rooms r SET last_seq = r.last_seq + 1
         WHERE r.name = p_room
        RETURNING r.last_seq INTO v_seq;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'room "%" was deleted while publishing', p_room
                USING ERRCODE = '40001', HINT = 'Retry the publish.';
        END IF;
    END IF;

    -- Only now, under the lock, is an earlier publish of the same id
    -- certain to be visible. Found: give the seq back (nobody else can
    -- have moved the counter while the lock is ours) and answer with it.
    IF p_client_id IS NOT NULL THEN
        SELECT m.seq, m.ts INTO v_dup_seq, v_dup_ts
          FROM roomcast.messages m
         WHERE m.room = p_room
           AND coalesce(m.from_user, '') = coalesce(v_from, '')
           AND m.client_id = p_client_id;
        IF FOUND THEN
            UPDATE roomcast.rooms r SET last_seq = r.last_seq - 1
             WHERE r.name = p_room;
            seq := v_dup_seq;
            ts := round(extract(epoch FROM v_dup_ts), 3);
            duplicate := true;
            RETURN NEXT;
            RETURN;
        END IF;
    END IF;

    -- The same text roomcast.envelope() builds from the stored row.
    v_ts := clock_timestamp();
    v_epoch := round(extract(epoch FROM v_ts), 3);
    v_envelope := '{"type":' || to_json(p_type)::text
        || ',"room":' || to_json(p_room)::text
        || ',"seq":' || v_seq::text
        || CASE WHEN p_client_id IS NULL THEN ''
                ELSE ',"id":' || to_json(p_client_id)::text END
        || ',"from":' || coalesce(to_json(v_from)::text, 'null')
        || ',"data":' || v_data_text
        || ',"ts":' || v_epoch::text
        || '}';
    IF octet_length(v_envelope) > v_limit THEN
        RAISE EXCEPTION 'message too large: % bytes, the limit is %',
                        octet_length(v_envelope), v_limit
            USING ERRCODE = '54000',
                  HINT = 'The limit is the max_message_bytes setting.';
    END IF;

    INSERT INTO roomcast.messages
           (room, seq, type, client_id, from_user, data, ts)
    VALUES (p_room, v_seq, p_type, p_client_id, v_from,
            coalesce(p_data, 'null'::jsonb), v_ts);

    -- One notification, delivered at commit in commit order: the whole
    -- envelope when it fits the payload limit, else room and seq only.
    v_payload := 'm ' || p_room || ' ' || v_seq || ' ' || v_envelope;
    IF octet_length(v_payload) > 7999 THEN
        v_payload := 'M ' || p_room || ' ' || v_seq;
    END IF;
    PERFORM pg_notify('roomcast', v_payload);

    -- Trimming on every publish would add a delete to each; every 64th
    -- keeps a room within 63 messages of its limit at a 64th of the cost.
    IF v_seq % 64 = 0 THEN
        PERFORM roomcast.trim_room(p_room);
    END IF;

    seq := v_seq;
    ts := v_epoch;
    duplicate := false;
    RETURN NEXT;
END
$$;
