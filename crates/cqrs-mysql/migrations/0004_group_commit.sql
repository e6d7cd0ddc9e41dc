-- Group commit: `cqrs_append` learns a third mode, a member of a group (several
-- appends in one transaction, sent together). Its last parameter is now a mode
-- (0: in the caller's transaction, 1: in a transaction of its own, 2: a member of
-- a group); 0 and 1 are what FALSE and TRUE meant before.
--
-- A member sets a savepoint first and rolls back to it when it writes nothing (a
-- conflict, a command handled before) or fails: it then answers a row with status
-- 'error', the server's error number and message, instead of failing the whole
-- group. Only an error that ends the transaction itself (a deadlock) fails the
-- group.

-- And the events are inserted in one statement through JSON_TABLE, which reads the
-- array once (its columns wide enough that a value too long fails the insert, in
-- strict mode, instead of being cut), in place of a loop that parsed the whole array
-- again for every field of every event.

DROP PROCEDURE IF EXISTS cqrs_append;

-- Appends `p_events` (a JSON array of {id, type, schema, payload, metadata}) to
-- `p_stream` if its version is `p_expected` (-1: any, -2: no stream yet), once per
-- `p_command` (NULL: no command id), in the transaction `p_mode` says (above).
-- Returns one row: status ('ok', 'handled', 'conflict'; a member also 'error', with
-- errno and message), previous_version, version, position (the last event's; NULL
-- when nothing was appended).
CREATE PROCEDURE cqrs_append(
    IN p_stream   VARBINARY(255),
    IN p_expected BIGINT,
    IN p_command  BINARY(16),
    IN p_events   LONGTEXT,
    IN p_mode     TINYINT
)
MODIFIES SQL DATA
proc: BEGIN
    DECLARE v_version BIGINT UNSIGNED DEFAULT 0;
    DECLARE v_tail BIGINT UNSIGNED DEFAULT 0;
    DECLARE v_count INT DEFAULT JSON_LENGTH(p_events);
    DECLARE v_claimed BOOLEAN DEFAULT TRUE;
    DECLARE v_prev_h BIGINT UNSIGNED;
    DECLARE v_ver_h BIGINT UNSIGNED;
    DECLARE v_pos_h BIGINT UNSIGNED;
    DECLARE v_errno INT;
    DECLARE v_message TEXT;
    -- Any error: undo what this call did, then report the error (a group member
    -- answers it as a row, so the others of its group go on).
    DECLARE EXIT HANDLER FOR SQLEXCEPTION
    BEGIN
        IF p_mode = 2 THEN
            GET DIAGNOSTICS CONDITION 1 v_errno = MYSQL_ERRNO, v_message = MESSAGE_TEXT;
            ROLLBACK TO SAVEPOINT cqrs_append_member;
            SELECT 'error' AS status, v_version AS previous_version, v_version AS version,
                   CAST(NULL AS UNSIGNED) AS position, v_errno AS errno, v_message AS message;
        ELSE
            IF p_mode = 1 THEN
                ROLLBACK;
            END IF;
            RESIGNAL;
        END IF;
    END;

    IF p_mode = 1 THEN
        START TRANSACTION;
    ELSEIF p_mode = 2 THEN
        SAVEPOINT cqrs_append_member;
    END IF;
    IF v_count IS NULL THEN
        SIGNAL SQLSTATE '22023' SET MESSAGE_TEXT = 'cqrs_append: p_events is not a JSON array';
    END IF;

    -- The stream's row, locked until the end: appends to one stream queue here.
    INSERT INTO cqrs_streams (stream_id, version) VALUES (p_stream, 0)
        ON DUPLICATE KEY UPDATE stream_id = stream_id;
    SELECT version INTO v_version FROM cqrs_streams WHERE stream_id = p_stream FOR UPDATE;

    -- The command id, claimed under the stream's lock: a copy racing on the same
    -- stream waits above, then finds it here.
    IF p_command IS NOT NULL THEN
        BEGIN
            DECLARE CONTINUE HANDLER FOR 1062 SET v_claimed = FALSE;
            INSERT INTO cqrs_commands (command_id, stream_id, previous_version, version, position, handled_at)
                VALUES (p_command, p_stream, v_version, v_version, NULL, UTC_TIMESTAMP(6));
        END;
        IF NOT v_claimed THEN
            SELECT previous_version, version, position INTO v_prev_h, v_ver_h, v_pos_h
                FROM cqrs_commands WHERE command_id = p_command FOR UPDATE;
            IF p_mode = 1 THEN
                ROLLBACK;
            ELSEIF p_mode = 2 THEN
                ROLLBACK TO SAVEPOINT cqrs_append_member;
            END IF;
            SELECT 'handled' AS status, v_prev_h AS previous_version, v_ver_h AS version,
                   v_pos_h AS position;
            LEAVE proc;
        END IF;
    END IF;

    IF (p_expected = -2 AND v_version <> 0) OR (p_expected >= 0 AND v_version <> p_expected) THEN
        IF p_mode = 1 THEN
            ROLLBACK;
        ELSEIF p_mode = 2 THEN
            ROLLBACK TO SAVEPOINT cqrs_append_member;
        END IF;
        SELECT 'conflict' AS status, v_version AS previous_version, v_version AS version,
               CAST(NULL AS UNSIGNED) AS position;
        LEAVE proc;
    END IF;

    IF v_count = 0 THEN
        IF p_mode = 1 THEN
            COMMIT;
        END IF;
        SELECT 'ok' AS status, v_version AS previous_version, v_version AS version,
               CAST(NULL AS UNSIGNED) AS position;
        LEAVE proc;
    END IF;

    -- The tail, locked until the end: positions are taken in commit order.
    SELECT position INTO v_tail FROM cqrs_tail WHERE id = 1 FOR UPDATE;
    INSERT INTO cqrs_events (position, stream_id, version, event_id, event_type,
                             schema_version, payload, metadata, recorded_at)
    SELECT v_tail + e.ord, p_stream, v_version + e.ord, UNHEX(REPLACE(e.id, '-', '')),
           e.ty, e.sv, e.pl, e.md, UTC_TIMESTAMP(6)
    FROM JSON_TABLE(p_events, '$[*]' COLUMNS (
        ord FOR ORDINALITY,
        id  VARCHAR(36) PATH '$.id',
        ty  LONGTEXT    PATH '$.type',
        sv  BIGINT      PATH '$.schema',
        pl  JSON        PATH '$.payload',
        md  JSON        PATH '$.metadata'
    )) AS e;
    UPDATE cqrs_tail SET position = v_tail + v_count WHERE id = 1;
    UPDATE cqrs_streams SET version = v_version + v_count WHERE stream_id = p_stream;
    IF p_command IS NOT NULL THEN
        UPDATE cqrs_commands SET version = v_version + v_count, position = v_tail + v_count
            WHERE command_id = p_command;
    END IF;
    IF p_mode = 1 THEN
        COMMIT;
    END IF;
    SELECT 'ok' AS status, v_version AS previous_version, v_version + v_count AS version,
           v_tail + v_count AS position;
END;
