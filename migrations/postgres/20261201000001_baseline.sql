-- PostgreSQL baseline: the schema of migrations/sqlite up to 20261201000001, in one file.
-- The same tables, columns and indexes as on SQLite (tests/it checks that both stores
-- match); a new migration goes into both folders.

-- from 20261123000001_foundation.sql

-- In-flight app logins through the identity provider (AUTH_TYPE=oauth2). One row per
-- started login, deleted when the callback consumes it or when it expires.
CREATE TABLE login_states (
    -- SHA-256 (hex) of the `state` parameter; the state itself is never stored.
    id TEXT PRIMARY KEY,
    -- SHA-256 (hex) of the login cookie of the browser that started the login.
    browser_binding TEXT NOT NULL,
    pkce_verifier TEXT NOT NULL,
    nonce TEXT NOT NULL,
    return_to TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX login_states_expires_at ON login_states (expires_at);

-- Sessions ended by logout before their JWT expired.
CREATE TABLE revoked_sessions (
    jti TEXT PRIMARY KEY,
    expires_at BIGINT NOT NULL
);
CREATE INDEX revoked_sessions_expires_at ON revoked_sessions (expires_at);

-- from 20261124000001_mcp_tokens.sql
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

-- from 20261124000002_oauth_as.sql
-- The OAuth 2.1 authorization server for MCP clients. Codes and refresh tokens are stored only
-- as SHA-256 digests; timestamps are unix seconds.

-- Registered clients: by dynamic registration (kind 'dcr', random id) or by a client ID
-- metadata document (kind 'cimd', the id is the document's https URL, cached here).
CREATE TABLE oauth_clients (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    client_name TEXT,
    -- JSON arrays.
    redirect_uris TEXT NOT NULL,
    grant_types TEXT NOT NULL,
    response_types TEXT NOT NULL,
    -- 'none', 'client_secret_basic' or 'client_secret_post'.
    token_endpoint_auth_method TEXT NOT NULL,
    client_secret_hash TEXT,
    -- 'native' or 'web'.
    application_type TEXT NOT NULL,
    scope TEXT,
    client_uri TEXT,
    logo_uri TEXT,
    software_id TEXT,
    software_version TEXT,
    -- The metadata as registered (JSON), returned to the client on re-registration.
    metadata TEXT NOT NULL,
    -- SHA-256 of the canonical metadata and the registering origin: a client that registers
    -- again with the same metadata gets its existing registration back.
    fingerprint TEXT,
    created_at BIGINT NOT NULL,
    last_used_at BIGINT,
    -- CIMD: when the document may be fetched again.
    metadata_expires_at BIGINT
);
CREATE INDEX oauth_clients_fingerprint ON oauth_clients (fingerprint);

-- A user's consent to a client, with the scope granted.
CREATE TABLE oauth_consents (
    client_id TEXT NOT NULL REFERENCES oauth_clients (id) ON DELETE CASCADE,
    subject TEXT NOT NULL,
    scope TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (client_id, subject)
);

-- Authorization requests waiting for the user's decision on the consent page.
CREATE TABLE oauth_pending (
    id TEXT PRIMARY KEY,
    client_id TEXT NOT NULL REFERENCES oauth_clients (id) ON DELETE CASCADE,
    subject TEXT NOT NULL,
    redirect_uri TEXT NOT NULL,
    scope TEXT NOT NULL,
    resource TEXT NOT NULL,
    state TEXT,
    code_challenge TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX oauth_pending_expires_at ON oauth_pending (expires_at);

-- One authorization (a "session"): everything issued from one code shares its family.
CREATE TABLE oauth_families (
    id TEXT PRIMARY KEY,
    client_id TEXT NOT NULL REFERENCES oauth_clients (id) ON DELETE CASCADE,
    subject TEXT NOT NULL,
    scope TEXT NOT NULL,
    resource TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    -- When the newest refresh token of the family expires.
    expires_at BIGINT NOT NULL,
    last_used_at BIGINT,
    revoked_at BIGINT
);
CREATE INDEX oauth_families_client ON oauth_families (client_id);

CREATE TABLE oauth_codes (
    id TEXT PRIMARY KEY,
    family_id TEXT NOT NULL,
    client_id TEXT NOT NULL REFERENCES oauth_clients (id) ON DELETE CASCADE,
    subject TEXT NOT NULL,
    redirect_uri TEXT NOT NULL,
    scope TEXT NOT NULL,
    resource TEXT NOT NULL,
    code_challenge TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT
);
CREATE INDEX oauth_codes_expires_at ON oauth_codes (expires_at);

CREATE TABLE oauth_refresh_tokens (
    id TEXT PRIMARY KEY,
    family_id TEXT NOT NULL REFERENCES oauth_families (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    -- Set when the token is exchanged for a new one.
    rotated_at BIGINT,
    -- The refresh token it was exchanged for, sealed, kept for the grace window: a client
    -- that retries the exchange (its first answer lost) gets that same successor back, so a
    -- family never has more than one live refresh token.
    successor_sealed TEXT
);
CREATE INDEX oauth_refresh_tokens_family ON oauth_refresh_tokens (family_id);

-- from 20261125000001_connections.sql
-- Connections: Gatehouse's own OAuth grants at third-party providers. Every secret column
-- holds a value sealed with AES-256-GCM (see `Sealer`), never plain text; timestamps are
-- unix seconds.

CREATE TABLE connections (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    -- 'custom', or a built-in provider's slug.
    provider TEXT NOT NULL,
    -- Icon hint only.
    provider_type TEXT NOT NULL,
    -- 'authorization_code' or 'client_credentials'.
    grant_type TEXT NOT NULL,
    -- 'manual' (client id and secret entered) or 'dynamic' (RFC 7591 on first connect).
    registration TEXT NOT NULL,
    client_id TEXT,
    client_secret TEXT,
    authorization_url TEXT,
    token_url TEXT NOT NULL,
    -- JSON array of strings.
    scopes TEXT NOT NULL,
    revocation_url TEXT,
    introspection_url TEXT,
    provider_domain_url TEXT,
    -- 'client_secret_post' or 'client_secret_basic' (or 'none' for a public registration).
    token_auth_method TEXT NOT NULL,
    -- 's256' or 'off'.
    pkce TEXT NOT NULL,
    -- JSON array of [name, value] pairs.
    extra_auth_params TEXT NOT NULL,
    -- RFC 8707 resource indicator sent with authorization and token requests.
    resource TEXT,
    -- A built-in provider's instance fields (Shopify's shop, Atlassian's Cloud ID): JSON
    -- array of [name, value] pairs, checked before they went into any URL.
    instance_fields TEXT NOT NULL,
    -- RFC 7592 management of a dynamically registered client.
    registration_client_uri TEXT,
    registration_access_token TEXT,
    registered_at BIGINT,
    -- 'new', 'connected', 'failing' or 'needs_reauth'.
    status TEXT NOT NULL,
    last_error TEXT,
    last_error_at BIGINT,
    -- Transient refresh failures in a row, and when the next attempt may run.
    failures BIGINT NOT NULL,
    retry_at BIGINT,
    -- Who is refreshing right now (one refresh per connection across replicas).
    lease_owner TEXT,
    lease_until BIGINT,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX connections_name ON connections (name);

-- The current grant of a connection (at most one).
CREATE TABLE connection_tokens (
    connection_id TEXT PRIMARY KEY REFERENCES connections (id) ON DELETE CASCADE,
    access_token TEXT NOT NULL,
    refresh_token TEXT,
    token_type TEXT NOT NULL,
    scope TEXT,
    -- NULL: the provider gave no expiry.
    expires_at BIGINT,
    obtained_at BIGINT NOT NULL,
    refreshed_at BIGINT,
    -- Bumped on every write, so a caller can tell a refresh happened since it looked.
    version BIGINT NOT NULL
);
CREATE INDEX connection_tokens_expires_at ON connection_tokens (expires_at);

-- Authorization requests sent to a provider and not yet back (`state` is stored hashed).
CREATE TABLE connection_states (
    state_hash TEXT PRIMARY KEY,
    connection_id TEXT NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
    subject TEXT NOT NULL,
    -- Sealed PKCE verifier, when PKCE is on.
    code_verifier TEXT,
    -- Re-authorization with a new client or scopes: the changes (sealed JSON), applied to
    -- the connection only when the provider's answer succeeds.
    pending_changes TEXT,
    redirect_uri TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX connection_states_expires_at ON connection_states (expires_at);

-- from 20261126000001_gateway.sql
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
