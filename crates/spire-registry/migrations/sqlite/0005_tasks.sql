-- Spire registry schema, version 5 (SQLite): the scheduler's durable state. A task queue
-- (tasks, their dependencies and attempts, pools of limited slots) and per-model schedule
-- state. Timestamps are integer milliseconds since the Unix epoch (UTC), from the database
-- clock; durations are integer milliseconds.

CREATE TABLE task_pools (
    pool       TEXT NOT NULL PRIMARY KEY,
    slots      BIGINT NOT NULL CHECK (slots >= 0),
    updated_at BIGINT NOT NULL
);

CREATE TABLE tasks (
    task_id          INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused
    kind             TEXT NOT NULL,
    key              TEXT NOT NULL,
    logical_time     BIGINT NOT NULL,
    payload          TEXT NOT NULL,  -- JSON
    pool             TEXT REFERENCES task_pools (pool),
    priority         INTEGER NOT NULL,
    state            TEXT NOT NULL CHECK (state IN ('queued', 'running', 'succeeded', 'failed')),
    attempts         BIGINT NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    max_attempts     BIGINT NOT NULL CHECK (max_attempts >= 1),
    retry_backoff_ms BIGINT NOT NULL CHECK (retry_backoff_ms >= 0),
    timeout_ms       BIGINT CHECK (timeout_ms > 0),
    not_before       BIGINT NOT NULL,
    lease_owner      TEXT,
    lease_token      BIGINT,  -- the fencing token: the attempt number of the current lease
    lease_expires_at BIGINT,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    last_error       TEXT,
    output           TEXT,  -- JSON
    UNIQUE (kind, key, logical_time)
);
-- Claims walk queued tasks in claim order.
CREATE INDEX tasks_claim ON tasks (state, priority DESC, logical_time, task_id);
-- Pool slot counts (running tasks per pool).
CREATE INDEX tasks_pool_state ON tasks (pool, state);
-- Listings: newest logical time first.
CREATE INDEX tasks_by_time ON tasks (logical_time, task_id);

CREATE TABLE task_dependencies (
    task_id    BIGINT NOT NULL REFERENCES tasks (task_id),
    depends_on BIGINT NOT NULL REFERENCES tasks (task_id),
    PRIMARY KEY (task_id, depends_on)
);
CREATE INDEX task_dependencies_upstream ON task_dependencies (depends_on);

CREATE TABLE task_attempts (
    task_id    BIGINT NOT NULL REFERENCES tasks (task_id),
    attempt    BIGINT NOT NULL,
    worker     TEXT NOT NULL,
    token      BIGINT NOT NULL,
    started_at BIGINT NOT NULL,
    ended_at   BIGINT,
    result     TEXT NOT NULL CHECK (result IN ('running', 'succeeded', 'failed', 'lost')),
    error      TEXT,
    PRIMARY KEY (task_id, attempt)
);

CREATE TABLE schedule_state (
    model             TEXT NOT NULL PRIMARY KEY,
    paused            BOOLEAN NOT NULL DEFAULT 0 CHECK (paused IN (0, 1)),
    last_logical_time BIGINT,
    updated_at        BIGINT NOT NULL
);
