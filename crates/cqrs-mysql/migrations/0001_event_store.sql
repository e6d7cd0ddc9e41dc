-- The event store: the log, streams, the log's tail, handled commands, snapshots,
-- and `cqrs_append`, which appends in one round trip.
--
-- Positions never skip: `cqrs_append` takes the tail's row lock (`cqrs_tail`) just
-- before it writes the events and holds it until its transaction ends, so
-- transactions take positions in the order they commit, a rolled-back transaction
-- gives its positions back, and the committed positions are always 1..n with no
-- hole. A reader of `position > p` can never pass an event that commits later.
-- The cost: appends commit one at a time (see README.md).
--
-- Names and JSON are stored as bytes (VARBINARY, LONGBLOB: UTF-8): comparisons are
-- exact whatever the server's default collation, and the driver reads them the same
-- way on every server.

CREATE TABLE cqrs_events (
    position       BIGINT UNSIGNED NOT NULL PRIMARY KEY,
    stream_id      VARBINARY(255)  NOT NULL,
    version        BIGINT UNSIGNED NOT NULL,
    event_id       BINARY(16)      NOT NULL,
    event_type     VARBINARY(255)  NOT NULL,
    schema_version INT UNSIGNED    NOT NULL,
    payload        LONGBLOB        NOT NULL,
    metadata       LONGBLOB        NOT NULL,
    recorded_at    DATETIME(6)     NOT NULL,
    UNIQUE KEY cqrs_events_stream (stream_id, version),
    UNIQUE KEY cqrs_events_id (event_id)
) ENGINE = InnoDB;

CREATE TABLE cqrs_streams (
    stream_id VARBINARY(255)  NOT NULL PRIMARY KEY,
    version   BIGINT UNSIGNED NOT NULL
) ENGINE = InnoDB;

-- One row: the last position taken. Its row lock orders the appends.
CREATE TABLE cqrs_tail (
    id       TINYINT UNSIGNED NOT NULL PRIMARY KEY,
    position BIGINT UNSIGNED  NOT NULL
) ENGINE = InnoDB;

INSERT INTO cqrs_tail (id, position) VALUES (1, 0);

CREATE TABLE cqrs_commands (
    command_id       BINARY(16)      NOT NULL PRIMARY KEY,
    stream_id        VARBINARY(255)  NOT NULL,
    previous_version BIGINT UNSIGNED NOT NULL,
    version          BIGINT UNSIGNED NOT NULL,
    position         BIGINT UNSIGNED NULL,
    handled_at       DATETIME(6)     NOT NULL
) ENGINE = InnoDB;

CREATE TABLE cqrs_snapshots (
    stream_id      VARBINARY(255)  NOT NULL PRIMARY KEY,
    version        BIGINT UNSIGNED NOT NULL,
    schema_version INT UNSIGNED    NOT NULL,
    state          LONGBLOB        NOT NULL,
    taken_at       DATETIME(6)     NOT NULL
) ENGINE = InnoDB;

-- Appends `p_events` (a JSON array of {id, type, schema, payload, metadata}) to
-- `p_stream` if its version is `p_expected` (-1: any, -2: no stream yet), once per
-- `p_command` (NULL: no command id). With `p_own` it runs its own transaction (one
-- round trip); without, it runs in the caller's (which must then commit).
-- Returns one row: status ('ok', 'handled', 'conflict'), previous_version,
-- version, position (the last event's; NULL when nothing was appended).
CREATE PROCEDURE cqrs_append(
    IN p_stream   VARBINARY(255),
    IN p_expected BIGINT,
    IN p_command  BINARY(16),
    IN p_events   LONGTEXT,
    IN p_own      BOOLEAN
)
MODIFIES SQL DATA
proc: BEGIN
    DECLARE v_version BIGINT UNSIGNED DEFAULT 0;
    DECLARE v_tail BIGINT UNSIGNED DEFAULT 0;
    DECLARE v_count INT DEFAULT JSON_LENGTH(p_events);
    DECLARE v_i INT DEFAULT 0;
    DECLARE v_claimed BOOLEAN DEFAULT TRUE;
    DECLARE v_prev_h BIGINT UNSIGNED;
    DECLARE v_ver_h BIGINT UNSIGNED;
    DECLARE v_pos_h BIGINT UNSIGNED;
    -- Any error: undo what this call did, then report the error.
    DECLARE EXIT HANDLER FOR SQLEXCEPTION
    BEGIN
        IF p_own THEN
            ROLLBACK;
        END IF;
        RESIGNAL;
    END;

    IF v_count IS NULL THEN
        SIGNAL SQLSTATE '22023' SET MESSAGE_TEXT = 'cqrs_append: p_events is not a JSON array';
    END IF;
    IF p_own THEN
        START TRANSACTION;
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
            IF p_own THEN
                ROLLBACK;
            END IF;
            SELECT 'handled' AS status, v_prev_h AS previous_version, v_ver_h AS version,
                   v_pos_h AS position;
            LEAVE proc;
        END IF;
    END IF;

    IF (p_expected = -2 AND v_version <> 0) OR (p_expected >= 0 AND v_version <> p_expected) THEN
        IF p_own THEN
            ROLLBACK;
        END IF;
        SELECT 'conflict' AS status, v_version AS previous_version, v_version AS version,
               CAST(NULL AS UNSIGNED) AS position;
        LEAVE proc;
    END IF;

    IF v_count = 0 THEN
        IF p_own THEN
            COMMIT;
        END IF;
        SELECT 'ok' AS status, v_version AS previous_version, v_version AS version,
               CAST(NULL AS UNSIGNED) AS position;
        LEAVE proc;
    END IF;

    -- The tail, locked until the end: positions are taken in commit order.
    SELECT position INTO v_tail FROM cqrs_tail WHERE id = 1 FOR UPDATE;
    WHILE v_i < v_count DO
        INSERT INTO cqrs_events (position, stream_id, version, event_id, event_type,
                                 schema_version, payload, metadata, recorded_at)
        VALUES (
            v_tail + v_i + 1,
            p_stream,
            v_version + v_i + 1,
            UNHEX(REPLACE(JSON_VALUE(p_events, CONCAT('$[', v_i, '].id')), '-', '')),
            JSON_VALUE(p_events, CONCAT('$[', v_i, '].type')),
            JSON_VALUE(p_events, CONCAT('$[', v_i, '].schema')),
            JSON_EXTRACT(p_events, CONCAT('$[', v_i, '].payload')),
            JSON_EXTRACT(p_events, CONCAT('$[', v_i, '].metadata')),
            UTC_TIMESTAMP(6)
        );
        SET v_i = v_i + 1;
    END WHILE;
    UPDATE cqrs_tail SET position = v_tail + v_count WHERE id = 1;
    UPDATE cqrs_streams SET version = v_version + v_count WHERE stream_id = p_stream;
    IF p_command IS NOT NULL THEN
        UPDATE cqrs_commands SET version = v_version + v_count, position = v_tail + v_count
            WHERE command_id = p_command;
    END IF;
    IF p_own THEN
        COMMIT;
    END IF;
    SELECT 'ok' AS status, v_version AS previous_version, v_version + v_count AS version,
           v_tail + v_count AS position;
END;
