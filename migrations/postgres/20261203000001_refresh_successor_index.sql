-- A rotation clears the successor its parent holds: at most one or two rows of the family
-- hold one, and this index finds them without reading every rotated token of the family
-- (a long-lived chain has hundreds).
CREATE INDEX oauth_refresh_tokens_successor ON oauth_refresh_tokens (family_id) WHERE successor_sealed IS NOT NULL;
