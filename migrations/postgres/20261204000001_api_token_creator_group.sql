-- An API token acts as the person who created it. Their role is worked out from the current
-- settings each time; the admin groups the identity provider put them in are known only at
-- sign-in, so the token keeps those their latest sign-in reported (comma-separated; each
-- sign-in updates them).
ALTER TABLE api_tokens ADD COLUMN creator_admin_groups TEXT NOT NULL DEFAULT '';
