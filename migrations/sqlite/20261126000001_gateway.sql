-- The MCP gateway: upstream MCP servers behind /mcp, and the secrets vault their static
-- headers draw on. Sealed columns hold AES-256-GCM values (see `Sealer`), never plain text.

CREATE TABLE mcp_servers (
    id TEXT PRIMARY KEY,
    -- A slug, unique: the prefix of the server's tools (`<name>__<tool>`).
    name TEXT NOT NULL UNIQUE,
    url TEXT NOT NULL,
    -- 'http' (Streamable HTTP) or 'sse' (the legacy HTTP+SSE transport).
    transport TEXT NOT NULL,
    -- 'none', 'connection' (a connection's access token as Bearer) or 'headers'.
    auth TEXT NOT NULL,
    connection_id TEXT,
    -- Sealed JSON array of [name, value template] pairs; templates may hold ${NAME}.
    headers TEXT,
    -- JSON array of the vault names the headers use (not secret: for "who uses this").
    secret_refs TEXT NOT NULL,
    timeout_secs BIGINT NOT NULL,
    -- 1 or 0.
    enabled BIGINT NOT NULL,
    -- The catalog entry it was added from, if any.
    catalog_id TEXT,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE INDEX mcp_servers_connection ON mcp_servers (connection_id);

CREATE TABLE vault_secrets (
    name TEXT PRIMARY KEY,
    -- Sealed.
    value TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
