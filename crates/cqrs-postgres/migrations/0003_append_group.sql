-- Group commit: the appends of many concurrent commands in one transaction, one
-- WAL flush and one notification. Unlike cqrs_append_many, each request succeeds
-- or fails on its own: a conflict or a known command id affects only its request.
-- Requests for the same stream are applied in order (the second sees the first).
-- status per request: 'ok', 'conflict', 'duplicate' (an earlier result), or
-- 'retry' (its command id appears earlier in the same group: send it again alone).
CREATE FUNCTION cqrs_append_group(
    p_stream_ids      TEXT[],     -- per request
    p_expected        BIGINT[],   -- per request: -1 any, else the exact version
    p_command_ids     UUID[],     -- per request, NULL for none
    p_event_requests  INTEGER[],  -- per event: 1-based request index; a request's events are contiguous
    p_event_ids       UUID[],
    p_event_types     TEXT[],
    p_schema_versions INTEGER[],
    p_payloads        JSONB[],
    p_metadata        JSONB[],
    p_notify          BOOLEAN
) RETURNS TABLE (status TEXT, previous_version BIGINT, version BIGINT, last_position BIGINT)
LANGUAGE plpgsql AS $$
DECLARE
    n          INTEGER := coalesce(array_length(p_stream_ids, 1), 0);
    v_streams  TEXT[];
    v_orig     BIGINT[];
    v_versions BIGINT[];
    v_counts   BIGINT[];
    v_status   TEXT[];
    v_prev     BIGINT[];
    v_ver      BIGINT[];
    v_last     BIGINT[];
    v_seen     UUID[] := '{}';
    v_cmd      cqrs_commands%ROWTYPE;
    v_base     BIGINT;
    v_j        INTEGER;
BEGIN
    IF pg_current_xact_id_if_assigned() IS NOT NULL THEN
        RAISE EXCEPTION 'cqrs_append_group must be the first write of its transaction' USING ERRCODE = 'P0001';
    END IF;
    IF coalesce(array_length(p_event_ids, 1), 0) > 1048576 THEN
        RAISE EXCEPTION 'at most 1048576 events per transaction' USING ERRCODE = 'P0001';
    END IF;
    v_status := array_fill('ok'::text, ARRAY[n]);
    v_prev := array_fill(0::bigint, ARRAY[n]);
    v_ver := array_fill(0::bigint, ARRAY[n]);
    v_last := array_fill(NULL::bigint, ARRAY[n]);

    v_streams := ARRAY(SELECT DISTINCT s FROM unnest(p_stream_ids) s ORDER BY s);
    PERFORM pg_advisory_xact_lock(hashtextextended(s, 0))
    FROM (SELECT s FROM unnest(v_streams) WITH ORDINALITY AS t(s, o) ORDER BY o) x;
    v_orig := ARRAY(
        SELECT coalesce(st.version, 0)
        FROM unnest(v_streams) WITH ORDINALITY AS r(s, i)
        LEFT JOIN cqrs_streams st ON st.stream_id = r.s
        ORDER BY r.i);
    v_versions := v_orig;
    v_counts := ARRAY(
        SELECT count(e.r) FROM generate_series(1, n) g(i)
        LEFT JOIN unnest(p_event_requests) e(r) ON e.r = g.i
        GROUP BY g.i ORDER BY g.i);

    FOR i IN 1..n LOOP
        IF p_command_ids[i] IS NOT NULL THEN
            SELECT * INTO v_cmd FROM cqrs_commands c WHERE c.command_id = p_command_ids[i];
            IF FOUND THEN
                v_status[i] := 'duplicate';
                v_prev[i] := v_cmd.previous_version;
                v_ver[i] := v_cmd.version;
                v_last[i] := v_cmd.position;
                CONTINUE;
            END IF;
            IF p_command_ids[i] = ANY (v_seen) THEN
                v_status[i] := 'retry';
                CONTINUE;
            END IF;
        END IF;
        v_j := array_position(v_streams, p_stream_ids[i]);
        IF p_expected[i] >= 0 AND p_expected[i] <> v_versions[v_j] THEN
            v_status[i] := 'conflict';
            v_prev[i] := v_versions[v_j];
            v_ver[i] := v_versions[v_j];
            CONTINUE;
        END IF;
        v_prev[i] := v_versions[v_j];
        v_versions[v_j] := v_versions[v_j] + v_counts[i];
        v_ver[i] := v_versions[v_j];
        IF p_command_ids[i] IS NOT NULL THEN
            v_seen := v_seen || p_command_ids[i];
        END IF;
    END LOOP;

    IF EXISTS (SELECT FROM generate_series(1, n) i WHERE v_status[i] = 'ok' AND v_counts[i] > 0) THEN
        v_base := pg_current_xact_id()::text::bigint << 20;
        INSERT INTO cqrs_events (position, stream_id, version, event_id, event_type, schema_version, payload, metadata)
        SELECT v_base + e.ord - 1, p_stream_ids[e.r],
               v_prev[e.r] + row_number() OVER (PARTITION BY e.r ORDER BY e.ord),
               e.id, e.ty, e.sv, e.pl, e.md
        FROM unnest(p_event_requests, p_event_ids, p_event_types, p_schema_versions, p_payloads, p_metadata)
            WITH ORDINALITY AS e(r, id, ty, sv, pl, md, ord)
        WHERE v_status[e.r] = 'ok';
        v_last := ARRAY(
            SELECT max(v_base + e.ord - 1) FILTER (WHERE v_status[g.i] = 'ok')
            FROM generate_series(1, n) g(i)
            LEFT JOIN unnest(p_event_requests) WITH ORDINALITY AS e(r, ord) ON e.r = g.i
            GROUP BY g.i ORDER BY g.i);
        -- Duplicates keep their earlier position.
        FOR i IN 1..n LOOP
            IF v_status[i] = 'duplicate' THEN
                v_last[i] := (SELECT c.position FROM cqrs_commands c WHERE c.command_id = p_command_ids[i]);
            END IF;
        END LOOP;
        INSERT INTO cqrs_streams AS st (stream_id, version)
        SELECT v_streams[j], v_versions[j] FROM generate_subscripts(v_streams, 1) j WHERE v_versions[j] <> v_orig[j]
        ON CONFLICT ON CONSTRAINT cqrs_streams_pkey DO UPDATE SET version = EXCLUDED.version;
        IF p_notify THEN
            PERFORM pg_notify('cqrs_events', (SELECT max(l) FROM unnest(v_last) l)::text);
        END IF;
    END IF;

    INSERT INTO cqrs_commands (command_id, stream_id, previous_version, version, position)
    SELECT p_command_ids[i], p_stream_ids[i], v_prev[i], v_ver[i], v_last[i]
    FROM generate_series(1, n) i
    WHERE v_status[i] = 'ok' AND p_command_ids[i] IS NOT NULL;

    RETURN QUERY SELECT v_status[i], v_prev[i], v_ver[i], v_last[i] FROM generate_series(1, n) i ORDER BY i;
END
$$;
