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
    rotated_at BIGINT
);
CREATE INDEX oauth_refresh_tokens_family ON oauth_refresh_tokens (family_id);
