-- Several replicas on one store (PostgreSQL); the same tables on SQLite.

-- MCP sessions (2025-era `Mcp-Session-Id`), so that a session opened through one replica
-- continues through another and an idle one costs a row, not memory.
CREATE TABLE mcp_sessions (
    -- SHA-256 (hex) of the session id; the id itself is never stored.
    id TEXT PRIMARY KEY,
    -- Who opened it (the caller's key); NULL until the initialize answer is on its way.
    owner TEXT,
    -- The client's initialize parameters (JSON), replayed when a replica restores it.
    init_params TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_used_at BIGINT NOT NULL
);
CREATE INDEX mcp_sessions_owner ON mcp_sessions (owner, last_used_at);
CREATE INDEX mcp_sessions_last_used_at ON mcp_sessions (last_used_at);

-- Background passes (clean-ups, renewals): one replica at a time holds a pass's lease.
CREATE TABLE job_leases (
    name TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    lease_until BIGINT NOT NULL
);
