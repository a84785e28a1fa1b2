-- API tokens (auth = token). The secret is never stored: only its SHA-256, compared in constant
-- time after the row is found by its public id. Instants are microseconds since the epoch, UTC.
CREATE TABLE api_tokens (
    id          TEXT NOT NULL PRIMARY KEY,   -- public: shown in listings, used to revoke
    secret_hash TEXT NOT NULL,               -- hex SHA-256 of the secret part
    user_id     TEXT NOT NULL,
    project_id  TEXT NOT NULL,
    roles       TEXT NOT NULL,               -- comma-separated
    access      TEXT NOT NULL CHECK (access IN ('full', 'read', 'ingest')),
    description TEXT NOT NULL DEFAULT '',
    created_at  BIGINT NOT NULL,
    created_by  TEXT NOT NULL DEFAULT '',    -- the creator's user id, or 'cli' / 'bootstrap'
    expires_at  BIGINT,
    revoked_at  BIGINT
);
