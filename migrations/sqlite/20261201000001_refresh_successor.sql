-- The refresh token a token was exchanged for, sealed, kept for the grace window: a client
-- that retries the exchange (its first answer lost) gets that same successor back, so a
-- family never has more than one live refresh token.
ALTER TABLE oauth_refresh_tokens ADD COLUMN successor_sealed TEXT;
