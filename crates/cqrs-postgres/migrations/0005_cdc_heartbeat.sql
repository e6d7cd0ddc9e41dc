-- One row that an external CDC engine's heartbeat rewrites (Debezium's
-- `heartbeat.action.query`, see `cqrs_cdc_heartbeat()`), carrying the safe position
-- at that moment. Captured from the WAL in commit order with the events, it tells a
-- consumer that every event at or below `safe` has already been delivered before
-- it: the consumer can release those in position order.
CREATE TABLE IF NOT EXISTS cqrs_cdc_heartbeat (
    id   integer PRIMARY KEY CHECK (id = 1),
    safe bigint  NOT NULL
);

-- What the heartbeat runs (`SELECT <schema>.cqrs_cdc_heartbeat()`): records the
-- current safe position. It keeps the search path it was created with, so that it
-- finds this schema's tables from any connection.
CREATE OR REPLACE FUNCTION cqrs_cdc_heartbeat() RETURNS void
LANGUAGE sql SET search_path FROM CURRENT AS $$
    INSERT INTO cqrs_cdc_heartbeat (id, safe) VALUES (1, cqrs_safe_position())
    ON CONFLICT (id) DO UPDATE SET safe = EXCLUDED.safe;
$$;
