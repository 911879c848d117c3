-- A connection is shared (one grant, in connection_tokens, its health on the connection row)
-- or per person: the connection is a template and each person authorizes their own grant,
-- kept here with its own health and refresh lease. Fixed when the connection is created.
ALTER TABLE connections ADD COLUMN per_person BIGINT NOT NULL DEFAULT 0;

-- Who a grant belongs to is `person`: the Gatehouse user's subject (email, username, or
-- "anonymous"). Secret columns are sealed, bound to the connection and the person.
CREATE TABLE connection_grants (
    connection_id TEXT NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
    person TEXT NOT NULL,
    access_token TEXT NOT NULL,
    refresh_token TEXT,
    token_type TEXT NOT NULL,
    scope TEXT,
    expires_at BIGINT,
    obtained_at BIGINT NOT NULL,
    refreshed_at BIGINT,
    version BIGINT NOT NULL,
    status TEXT NOT NULL,
    last_error TEXT,
    last_error_at BIGINT,
    failures BIGINT NOT NULL,
    retry_at BIGINT,
    lease_owner TEXT,
    lease_until BIGINT,
    PRIMARY KEY (connection_id, person)
);
CREATE INDEX connection_grants_person ON connection_grants (person);
CREATE INDEX connection_grants_expires_at ON connection_grants (expires_at);

-- An authorization started from a "connect your account" link sent to an MCP client: the
-- URL elicitation it completes (2025-11-25 `notifications/elicitation/complete`).
ALTER TABLE connection_states ADD COLUMN elicitation_id TEXT;
