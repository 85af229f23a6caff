-- Access records for PostgresAuditLog, newest first by (at_ms, id). One index per filter that
-- AuditQuery offers, each ending in the sort order so filtered queries read in order.
CREATE TABLE IF NOT EXISTS mcp_audit (
    id          bigserial PRIMARY KEY,
    at_ms       bigint NOT NULL,
    principal   text NULL,
    service     text NOT NULL,
    action      text NOT NULL,
    target      text COLLATE "C" NULL,
    outcome     text NOT NULL,
    bytes       bigint NULL,
    duration_us bigint NOT NULL,
    request_id  text NOT NULL
);
CREATE INDEX IF NOT EXISTS mcp_audit_recent ON mcp_audit (at_ms DESC, id DESC);
CREATE INDEX IF NOT EXISTS mcp_audit_principal ON mcp_audit (principal, at_ms DESC, id DESC);
CREATE INDEX IF NOT EXISTS mcp_audit_service_action ON mcp_audit (service, action, at_ms DESC, id DESC);
CREATE INDEX IF NOT EXISTS mcp_audit_target ON mcp_audit (target);
