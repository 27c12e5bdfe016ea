-- Spire registry schema, version 1 (PostgreSQL).
--
-- The same tables, columns and meanings as the SQLite schema after its version 2
-- (migrations/sqlite/), so the shared queries run unchanged on both. Timestamps are integer
-- milliseconds since the Unix epoch (UTC). Insertion-order columns are identity columns
-- (SQLite uses rowid aliases). NaN metric values are stored as NULL on both backends.

CREATE TABLE experiments (
    name          TEXT NOT NULL PRIMARY KEY,
    experiment_id TEXT NOT NULL UNIQUE,
    lifecycle     TEXT NOT NULL DEFAULT 'active' CHECK (lifecycle IN ('active', 'deleted')),
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);

CREATE TABLE experiment_tags (
    experiment_id TEXT NOT NULL REFERENCES experiments (experiment_id) ON DELETE CASCADE,
    key           TEXT NOT NULL,
    value         TEXT NOT NULL,
    PRIMARY KEY (experiment_id, key)
);

CREATE TABLE runs (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,  -- insertion order
    run_id        TEXT NOT NULL UNIQUE,
    experiment    TEXT NOT NULL REFERENCES experiments (name),
    segment       TEXT NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('running', 'finished', 'failed')),
    config_hash   TEXT NOT NULL,
    spire_version TEXT NOT NULL,
    started_at    BIGINT NOT NULL,
    ended_at      BIGINT,
    error         TEXT,
    git_commit    TEXT
);
CREATE INDEX runs_by_segment ON runs (segment, id);
CREATE INDEX runs_by_status ON runs (status, id);
CREATE INDEX runs_by_experiment ON runs (experiment, id);

CREATE TABLE params (
    run_id TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
    key    TEXT NOT NULL,
    value  TEXT NOT NULL,
    PRIMARY KEY (run_id, key)
);

CREATE TABLE tags (
    run_id TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
    key    TEXT NOT NULL,
    value  TEXT NOT NULL,
    PRIMARY KEY (run_id, key)
);

CREATE TABLE metrics (
    id        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,  -- breaks (step, timestamp) ties
    run_id    TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
    key       TEXT NOT NULL,
    value     DOUBLE PRECISION,  -- NULL encodes NaN, as on SQLite
    step      BIGINT NOT NULL,
    timestamp BIGINT NOT NULL
);
CREATE INDEX metrics_by_run_key ON metrics (run_id, key, step);
CREATE INDEX metrics_by_key ON metrics (key, run_id);

-- The Delta table versions a run read, in the order the run listed them.
CREATE TABLE run_inputs (
    run_id     TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
    position   BIGINT NOT NULL,
    table_name TEXT NOT NULL,
    version    BIGINT NOT NULL,
    PRIMARY KEY (run_id, position)
);
-- Lineage: which runs read a given table version.
CREATE INDEX run_inputs_by_table ON run_inputs (table_name, version);

CREATE TABLE registered_models (
    name           TEXT NOT NULL PRIMARY KEY,
    latest_version BIGINT NOT NULL DEFAULT 0,  -- the version counter; bumped under a row lock
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL
);

CREATE TABLE model_versions (
    model        TEXT NOT NULL REFERENCES registered_models (name),
    version      BIGINT NOT NULL,
    run_id       TEXT NOT NULL REFERENCES runs (run_id),
    artifact_uri TEXT NOT NULL,
    signature    TEXT NOT NULL,  -- JSON
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (model, version)
);
CREATE INDEX model_versions_by_run ON model_versions (run_id);

CREATE TABLE aliases (
    model      TEXT NOT NULL,
    alias      TEXT NOT NULL,
    version    BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (model, alias),
    FOREIGN KEY (model, version) REFERENCES model_versions (model, version)
);

-- Append-only audit log of alias moves; written in the same transaction as the move.
CREATE TABLE alias_events (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    model        TEXT NOT NULL REFERENCES registered_models (name),
    alias        TEXT NOT NULL,
    from_version BIGINT,
    to_version   BIGINT,
    actor        TEXT NOT NULL,
    reason       TEXT NOT NULL,
    at           BIGINT NOT NULL
);
CREATE INDEX alias_events_by_model ON alias_events (model, id);
