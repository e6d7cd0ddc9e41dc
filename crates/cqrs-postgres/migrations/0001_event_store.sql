-- cqrs-postgres: the event store, snapshots, handled commands, read models and
-- checkpoints. Everything lives in the connection's current schema.

-- Every event. `position` orders the global log: the writing transaction's id
-- (xid8) shifted left by 20 bits, plus the event's index in its transaction. See
-- the crate docs ("Positions that never skip") for why this makes reads gap-free.
CREATE TABLE cqrs_events (
    position       BIGINT      PRIMARY KEY,
    stream_id      TEXT        NOT NULL,
    version        BIGINT      NOT NULL,
    event_id       UUID        NOT NULL,
    event_type     TEXT        NOT NULL,
    schema_version INTEGER     NOT NULL,
    payload        JSONB       NOT NULL,
    metadata       JSONB       NOT NULL,
    recorded_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT cqrs_events_stream_version UNIQUE (stream_id, version),
    CONSTRAINT cqrs_events_event_id UNIQUE (event_id)
);

-- The current version of each stream: what an append checks, under a lock.
CREATE TABLE cqrs_streams (
    stream_id TEXT   PRIMARY KEY,
    version   BIGINT NOT NULL
);

-- The latest snapshot of each stream.
CREATE TABLE cqrs_snapshots (
    stream_id TEXT        PRIMARY KEY,
    version   BIGINT      NOT NULL,
    schema    INTEGER     NOT NULL,
    state     JSONB       NOT NULL,
    taken_at  TIMESTAMPTZ NOT NULL
);

-- Commands already handled, with what their append did.
CREATE TABLE cqrs_commands (
    command_id       UUID        PRIMARY KEY,
    stream_id        TEXT        NOT NULL,
    previous_version BIGINT      NOT NULL,
    version          BIGINT      NOT NULL,
    position         BIGINT,
    handled_at       TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Read models: one row per document; a NULL value is a tombstone.
CREATE TABLE cqrs_documents (
    projection TEXT   NOT NULL,
    id         TEXT   NOT NULL,
    value      JSONB,
    position   BIGINT NOT NULL,
    PRIMARY KEY (projection, id)
);

CREATE TABLE cqrs_checkpoints (
    projection TEXT        PRIMARY KEY,
    position   BIGINT      NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- The highest position that is final for the calling transaction's snapshot: every
-- transaction with a lower id has ended, so no event below it can still appear.
CREATE FUNCTION cqrs_safe_position() RETURNS BIGINT
LANGUAGE sql STABLE AS $$
    SELECT (pg_snapshot_xmin(pg_current_snapshot())::text::bigint << 20) - 1
$$;

-- Appends events to one stream in one round trip: locks the stream, checks the
-- command id and the expected version, inserts, records, notifies.
-- p_expected: -1 for any version, otherwise the exact version (0: no stream).
-- p_notify: NOTIFY cqrs_events on commit (wakes subscriptions at once, but takes a
-- cluster-wide lock at commit that serializes notifying transactions).
-- status: 'ok', 'conflict' (nothing written; versions are the actual one) or
-- 'duplicate' (the command was handled before; the row is that earlier result).
CREATE FUNCTION cqrs_append(
    p_stream_id       TEXT,
    p_expected        BIGINT,
    p_command_id      UUID,
    p_event_ids       UUID[],
    p_event_types     TEXT[],
    p_schema_versions INTEGER[],
    p_payloads        JSONB[],
    p_metadata        JSONB[],
    p_notify          BOOLEAN DEFAULT true
) RETURNS TABLE (status TEXT, previous_version BIGINT, version BIGINT, last_position BIGINT)
LANGUAGE plpgsql AS $$
DECLARE
    v_actual BIGINT;
    v_count  BIGINT := coalesce(array_length(p_event_ids, 1), 0);
    v_base   BIGINT;
    v_last   BIGINT;
    v_cmd    cqrs_commands%ROWTYPE;
BEGIN
    -- Positions come from the transaction id, so it must be assigned only once this
    -- stream's lock is held: then, per stream, transaction ids follow versions.
    IF pg_current_xact_id_if_assigned() IS NOT NULL THEN
        RAISE EXCEPTION 'cqrs_append must be the first write of its transaction'
            USING ERRCODE = 'P0001', HINT = 'append first, then write read models in the same transaction';
    END IF;
    IF v_count > 1048576 THEN
        RAISE EXCEPTION 'at most 1048576 events per append, got %', v_count USING ERRCODE = 'P0001';
    END IF;
    PERFORM pg_advisory_xact_lock(hashtextextended(p_stream_id, 0));

    IF p_command_id IS NOT NULL THEN
        SELECT * INTO v_cmd FROM cqrs_commands c WHERE c.command_id = p_command_id;
        IF FOUND THEN
            RETURN QUERY SELECT 'duplicate'::text, v_cmd.previous_version, v_cmd.version, v_cmd.position;
            RETURN;
        END IF;
    END IF;

    SELECT s.version INTO v_actual FROM cqrs_streams s WHERE s.stream_id = p_stream_id;
    v_actual := coalesce(v_actual, 0);
    IF p_expected >= 0 AND p_expected <> v_actual THEN
        RETURN QUERY SELECT 'conflict'::text, v_actual, v_actual, NULL::bigint;
        RETURN;
    END IF;

    IF v_count > 0 THEN
        v_base := pg_current_xact_id()::text::bigint << 20;
        v_last := v_base + v_count - 1;
        INSERT INTO cqrs_events (position, stream_id, version, event_id, event_type, schema_version, payload, metadata)
        SELECT v_base + t.ord - 1, p_stream_id, v_actual + t.ord, t.id, t.ty, t.sv, t.pl, t.md
        FROM unnest(p_event_ids, p_event_types, p_schema_versions, p_payloads, p_metadata)
            WITH ORDINALITY AS t(id, ty, sv, pl, md, ord);
        INSERT INTO cqrs_streams AS s (stream_id, version) VALUES (p_stream_id, v_actual + v_count)
            ON CONFLICT (stream_id) DO UPDATE SET version = EXCLUDED.version;
        IF p_notify THEN
            PERFORM pg_notify('cqrs_events', v_last::text);
        END IF;
    END IF;

    IF p_command_id IS NOT NULL THEN
        INSERT INTO cqrs_commands (command_id, stream_id, previous_version, version, position)
        VALUES (p_command_id, p_stream_id, v_actual, v_actual + v_count, v_last);
    END IF;

    RETURN QUERY SELECT 'ok'::text, v_actual, v_actual + v_count, v_last;
END
$$;
