-- An API token acts as the person who created it. Their role is worked out from the current
-- settings each time; whether the identity provider put them in an admin group is known only
-- at sign-in, so the token keeps what their session said when they created it.
ALTER TABLE api_tokens ADD COLUMN creator_admin_group BIGINT NOT NULL DEFAULT 0;
