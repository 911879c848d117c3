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
