-- Key/value store for PostgresKvStore. Keys sort by bytes (COLLATE "C") so scan cursors
-- and glob prefixes behave exactly as in the other backends.
CREATE TABLE IF NOT EXISTS mcp_kv (
    key        text COLLATE "C" PRIMARY KEY,
    value      bytea NOT NULL,
    expires_at timestamptz NULL
);
CREATE INDEX IF NOT EXISTS mcp_kv_expires_at ON mcp_kv (expires_at) WHERE expires_at IS NOT NULL;
