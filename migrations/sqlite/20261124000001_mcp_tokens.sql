-- Instance-wide settings changed at run time (e.g. MCP protection), as key/value text.
CREATE TABLE settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- Static API tokens for /mcp and the token API. The value is shown once and stored only as
-- its SHA-256; `hint` (prefix and last four characters) is what lists show.
CREATE TABLE api_tokens (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    hint TEXT NOT NULL,
    -- Space-separated, e.g. "mcp connections:token".
    scopes TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_used_at BIGINT,
    expires_at BIGINT
);
CREATE INDEX api_tokens_created_at ON api_tokens (created_at);
