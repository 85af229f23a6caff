-- Content-addressed blobs (BLAKE3 hex hash, each content stored once) and per-path version
-- history for PostgresVersionStore. Versions of a path are 1, 2, 3, ... with no gaps: a record
-- inserts latest + 1, and the primary key lets only one of several concurrent records win.
-- A NULL hash is a deletion tombstone.
CREATE TABLE IF NOT EXISTS mcp_blobs (
    hash    text PRIMARY KEY,
    size    bigint NOT NULL,
    content bytea NOT NULL
);
CREATE TABLE IF NOT EXISTS mcp_versions (
    path          text COLLATE "C" NOT NULL,
    version       bigint NOT NULL CHECK (version > 0),
    hash          text NULL REFERENCES mcp_blobs (hash),
    size          bigint NOT NULL,
    created_at_ms bigint NOT NULL,
    PRIMARY KEY (path, version)
);
