-- A connection made by MCP sign-in discovery knows its authorization server's issuer: the
-- callback checks the `iss` of the answer against it (RFC 9207), and requires one when the
-- server promised it (authorization_response_iss_parameter_supported).
ALTER TABLE connections ADD COLUMN issuer TEXT;
ALTER TABLE connections ADD COLUMN iss_required BIGINT NOT NULL DEFAULT 0;
