-- Read models: one row per document (a NULL value is a tombstone), committed with
-- the projection's checkpoint; aliases of rebuilt versions. Names and JSON as bytes.

CREATE TABLE cqrs_documents (
    projection VARBINARY(255)  NOT NULL,
    id         VARBINARY(512)  NOT NULL,
    value      LONGBLOB        NULL,
    position   BIGINT UNSIGNED NOT NULL,
    PRIMARY KEY (projection, id)
) ENGINE = InnoDB;

CREATE TABLE cqrs_checkpoints (
    projection VARBINARY(255)  NOT NULL PRIMARY KEY,
    position   BIGINT UNSIGNED NOT NULL,
    updated_at DATETIME(6)     NOT NULL
) ENGINE = InnoDB;

CREATE TABLE cqrs_aliases (
    alias  VARBINARY(255) NOT NULL PRIMARY KEY,
    target VARBINARY(255) NOT NULL
) ENGINE = InnoDB;
