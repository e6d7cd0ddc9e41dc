-- Aliases of read models: the name readers use -> the read model it points to
-- (a rebuilt version, after a cut-over).
CREATE TABLE IF NOT EXISTS cqrs_aliases (
    alias  text PRIMARY KEY,
    target text NOT NULL
);
