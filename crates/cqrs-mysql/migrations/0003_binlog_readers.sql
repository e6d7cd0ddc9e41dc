-- Change-data-capture: where each named binlog reader resumes. `binlog_file` and
-- `binlog_offset` are the end of the last binlog transaction whose events were all
-- handled; `position` is the highest event position at or before it (every event up
-- to it is in the binlog before that point).

CREATE TABLE cqrs_binlog_readers (
    name          VARBINARY(64)   NOT NULL PRIMARY KEY,
    binlog_file   VARBINARY(255)  NOT NULL,
    binlog_offset BIGINT UNSIGNED NOT NULL,
    position      BIGINT UNSIGNED NOT NULL,
    updated_at    DATETIME(6)     NOT NULL
) ENGINE = InnoDB;
