-- Bulk append: events of many streams in one transaction, for imports and
-- migrations. Every stream's lock is taken first, in a fixed order, before the
-- transaction gets its id, so per stream positions still follow versions.
-- Any conflict fails the whole call and writes nothing.
CREATE FUNCTION cqrs_append_many(
    p_stream_ids      TEXT[],     -- distinct streams
    p_expected        BIGINT[],   -- per stream: -1 any, else the exact version
    p_event_streams   INTEGER[],  -- per event: 1-based index into p_stream_ids
    p_event_ids       UUID[],
    p_event_types     TEXT[],
    p_schema_versions INTEGER[],
    p_payloads        JSONB[],
    p_metadata        JSONB[]
) RETURNS TABLE (stream_id TEXT, status TEXT, previous_version BIGINT, version BIGINT, last_position BIGINT)
LANGUAGE plpgsql AS $$
DECLARE
    v_streams INTEGER := coalesce(array_length(p_stream_ids, 1), 0);
    v_events  BIGINT  := coalesce(array_length(p_event_ids, 1), 0);
    v_old     BIGINT[];
    v_counts  BIGINT[];
    v_base    BIGINT;
BEGIN
    IF pg_current_xact_id_if_assigned() IS NOT NULL THEN
        RAISE EXCEPTION 'cqrs_append_many must be the first write of its transaction' USING ERRCODE = 'P0001';
    END IF;
    IF v_events > 1048576 THEN
        RAISE EXCEPTION 'at most 1048576 events per append, got %', v_events USING ERRCODE = 'P0001';
    END IF;
    IF (SELECT count(DISTINCT s) FROM unnest(p_stream_ids) s) <> v_streams THEN
        RAISE EXCEPTION 'a stream appears twice in one bulk append' USING ERRCODE = 'P0001';
    END IF;

    PERFORM pg_advisory_xact_lock(hashtextextended(s, 0))
    FROM (SELECT s FROM unnest(p_stream_ids) s ORDER BY s) x;

    v_old := ARRAY(
        SELECT coalesce(st.version, 0)
        FROM unnest(p_stream_ids) WITH ORDINALITY AS r(sid, i)
        LEFT JOIN cqrs_streams st ON st.stream_id = r.sid
        ORDER BY r.i);
    IF EXISTS (SELECT FROM generate_subscripts(p_stream_ids, 1) i
               WHERE p_expected[i] >= 0 AND p_expected[i] <> v_old[i]) THEN
        RETURN QUERY
        SELECT p_stream_ids[i],
               CASE WHEN p_expected[i] >= 0 AND p_expected[i] <> v_old[i] THEN 'conflict' ELSE 'ok' END,
               v_old[i], v_old[i], NULL::bigint
        FROM generate_subscripts(p_stream_ids, 1) i ORDER BY i;
        RETURN;
    END IF;

    v_counts := ARRAY(
        SELECT count(e.si)
        FROM generate_subscripts(p_stream_ids, 1) g(i)
        LEFT JOIN unnest(p_event_streams) e(si) ON e.si = g.i
        GROUP BY g.i ORDER BY g.i);

    IF v_events > 0 THEN
        v_base := pg_current_xact_id()::text::bigint << 20;
        INSERT INTO cqrs_events (position, stream_id, version, event_id, event_type, schema_version, payload, metadata)
        SELECT v_base + e.ord - 1, p_stream_ids[e.si],
               v_old[e.si] + row_number() OVER (PARTITION BY e.si ORDER BY e.ord),
               e.id, e.ty, e.sv, e.pl, e.md
        FROM unnest(p_event_streams, p_event_ids, p_event_types, p_schema_versions, p_payloads, p_metadata)
            WITH ORDINALITY AS e(si, id, ty, sv, pl, md, ord);
        INSERT INTO cqrs_streams AS st (stream_id, version)
        SELECT p_stream_ids[i], v_old[i] + v_counts[i] FROM generate_subscripts(p_stream_ids, 1) i WHERE v_counts[i] > 0
        ON CONFLICT ON CONSTRAINT cqrs_streams_pkey DO UPDATE SET version = EXCLUDED.version;
        PERFORM pg_notify('cqrs_events', (v_base + v_events - 1)::text);
    END IF;

    RETURN QUERY
    SELECT p_stream_ids[g.i], 'ok'::text, v_old[g.i], v_old[g.i] + v_counts[g.i],
           (SELECT max(v_base + e.ord - 1) FROM unnest(p_event_streams) WITH ORDINALITY AS e(si, ord) WHERE e.si = g.i)
    FROM generate_subscripts(p_stream_ids, 1) g(i) ORDER BY g.i;
END
$$;
