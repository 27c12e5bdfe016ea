-- Spire registry schema, version 4 (SQLite): API tokens for `spire serve`. Only a token's
-- SHA-256 is stored; the secret is shown once, when `spire tokens create` makes it.

CREATE TABLE api_tokens (
    token_id      TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('read', 'write', 'admin')),
    secret_sha256 TEXT NOT NULL UNIQUE,
    created_at    BIGINT NOT NULL,
    revoked_at    BIGINT
);
-- A name identifies one live token; a revoked token's name may be reused.
CREATE UNIQUE INDEX api_tokens_live_name ON api_tokens (name) WHERE revoked_at IS NULL;
