-- Portable SQL: runs unchanged on SQLite and PostgreSQL. TEXT ids, BIGINT unix seconds.

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
