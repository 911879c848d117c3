-- Which refresh token each one was issued for, so that a retry inside the grace window can be
-- told from a fork: only the direct parent of a family's live, unused token may be retried.
ALTER TABLE oauth_refresh_tokens ADD COLUMN parent_id TEXT;
