-- Leases for PostgresLockManager: one row per resource ever locked, never deleted. `token` is
-- the resource's fencing counter: each grant sets it to the previous value + 1, and release or
-- expiry keep it, so tokens strictly increase. The lease is live while expires_at > now()
-- (the server's clock); release sets owner and expires_at to NULL.
CREATE TABLE IF NOT EXISTS mcp_locks (
    resource   text PRIMARY KEY,
    owner      text NULL,
    token      bigint NOT NULL CHECK (token > 0),
    expires_at timestamptz NULL
);
