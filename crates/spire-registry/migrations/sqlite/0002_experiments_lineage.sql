-- Spire registry schema, version 2 (SQLite): experiments get an id, a lifecycle and tags;
-- runs record the git commit of the project they ran from.
--
-- Version 1 is kept byte for byte (sqlx checks applied migrations by checksum), so
-- databases written by earlier Spire versions upgrade in place. SQLite cannot add a NOT
-- NULL column without a default, so `experiment_id` is filled here and kept unique by an
-- index; the application always sets it.

ALTER TABLE experiments ADD COLUMN experiment_id TEXT;
UPDATE experiments SET experiment_id = lower(hex(randomblob(16))) WHERE experiment_id IS NULL;
CREATE UNIQUE INDEX experiments_by_id ON experiments (experiment_id);

ALTER TABLE experiments ADD COLUMN lifecycle TEXT NOT NULL DEFAULT 'active'
    CHECK (lifecycle IN ('active', 'deleted'));
ALTER TABLE experiments ADD COLUMN updated_at BIGINT NOT NULL DEFAULT 0;
UPDATE experiments SET updated_at = created_at;

CREATE TABLE experiment_tags (
    experiment_id TEXT NOT NULL REFERENCES experiments (experiment_id) ON DELETE CASCADE,
    key           TEXT NOT NULL,
    value         TEXT NOT NULL,
    PRIMARY KEY (experiment_id, key)
);

ALTER TABLE runs ADD COLUMN git_commit TEXT;

-- Metric lookups by key across runs (run search: `metrics.auc > 0.8`).
CREATE INDEX metrics_by_key ON metrics (key, run_id);
