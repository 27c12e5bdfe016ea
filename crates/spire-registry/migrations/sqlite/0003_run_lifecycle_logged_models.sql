-- Spire registry schema, version 3 (SQLite): runs can be soft-deleted and restored, and
-- MLflow 3 "logged models" (a model logged by a run before any registration) are stored
-- with their params and tags, linked to the runs that output them.

ALTER TABLE runs ADD COLUMN lifecycle TEXT NOT NULL DEFAULT 'active'
    CHECK (lifecycle IN ('active', 'deleted'));
-- When the run was last deleted (NULL while active): `spire gc` removes its artifacts.
ALTER TABLE runs ADD COLUMN deleted_at BIGINT;

CREATE TABLE logged_models (
    id            INTEGER PRIMARY KEY,  -- insertion order: "newest first" sorts on it
    model_id      TEXT NOT NULL UNIQUE,
    experiment_id TEXT NOT NULL REFERENCES experiments (experiment_id),
    name          TEXT NOT NULL,
    source_run_id TEXT REFERENCES runs (run_id),
    model_type    TEXT NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('pending', 'ready', 'failed')),
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);
CREATE INDEX logged_models_by_experiment ON logged_models (experiment_id, id);
CREATE INDEX logged_models_by_run ON logged_models (source_run_id);

CREATE TABLE logged_model_params (
    model_id TEXT NOT NULL REFERENCES logged_models (model_id) ON DELETE CASCADE,
    key      TEXT NOT NULL,
    value    TEXT NOT NULL,
    PRIMARY KEY (model_id, key)
);

CREATE TABLE logged_model_tags (
    model_id TEXT NOT NULL REFERENCES logged_models (model_id) ON DELETE CASCADE,
    key      TEXT NOT NULL,
    value    TEXT NOT NULL,
    PRIMARY KEY (model_id, key)
);

-- The models a run output, at which step.
CREATE TABLE run_outputs (
    run_id   TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
    model_id TEXT NOT NULL REFERENCES logged_models (model_id) ON DELETE CASCADE,
    step     BIGINT NOT NULL,
    PRIMARY KEY (run_id, model_id, step)
);
