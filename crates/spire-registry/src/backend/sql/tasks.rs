//! Shared SQL: [`TaskQueue`] and [`ScheduleState`] for this backend's `Store` (compiled
//! once per backend; see `backend/mod.rs`). The contracts are documented on the traits.
//!
//! What differs between the backends comes from the backend module: how the database clock
//! is read (`NOW_MS`), how rows are locked (`LOCK_ROW`, `LOCK_SKIP`, empty on SQLite, whose
//! write transactions are serialised anyway) and how claims with a global limit serialise
//! (`SERIALIZE_CLAIMS`).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::AssertSqlSafe;

use super::{Conn, Store, LOCK_ROW, LOCK_SKIP, NOW_MS, PAYLOAD_LISTS_SEGMENT, SERIALIZE_CLAIMS};
use crate::backend::placeholders;
use crate::check::{check_name, now_ms, to_time, to_time_opt};
use crate::error::{DbContext, RegistryError};
use crate::tasks::{
    backoff_ms, duration_ms, Attempt, ClaimLimits, Lease, ModelSchedule, NewTask, Outcome,
    ScheduleState, Task, TaskFilter, TaskKey, TaskQueue, TaskState,
};

/// A `tasks` row as stored.
#[derive(sqlx::FromRow)]
struct TaskRow {
    task_id: i64,
    kind: String,
    key: String,
    logical_time: i64,
    payload: String,
    pool: Option<String>,
    priority: i32,
    state: String,
    attempts: i64,
    max_attempts: i64,
    retry_backoff_ms: i64,
    timeout_ms: Option<i64>,
    not_before: i64,
    lease_owner: Option<String>,
    lease_token: Option<i64>,
    lease_expires_at: Option<i64>,
    created_at: i64,
    updated_at: i64,
    last_error: Option<String>,
    output: Option<String>,
}

const TASK_SELECT: &str = "SELECT t.task_id, t.kind, t.key, t.logical_time, t.payload, t.pool, \
     t.priority, t.state, t.attempts, t.max_attempts, t.retry_backoff_ms, t.timeout_ms, \
     t.not_before, t.lease_owner, t.lease_token, t.lease_expires_at, t.created_at, \
     t.updated_at, t.last_error, t.output FROM tasks t";

/// What a write needs to know about a running task to end its lease: state, lease token,
/// lease owner, attempts, max attempts, backoff.
type LeaseRow = (String, Option<i64>, Option<String>, i64, i64, i64);

/// An expired lease or attempt: task, token, owner, attempts, max attempts, backoff, and
/// the timeout (ms) when the attempt ran past it.
type ExpiredRow = (i64, Option<i64>, Option<String>, i64, i64, i64, Option<i64>);

/// A `task_attempts` row: task, attempt, worker, token, started, ended, result, error.
type AttemptRow = (
    i64,
    i64,
    String,
    i64,
    i64,
    Option<i64>,
    String,
    Option<String>,
);

/// A `schedule_state` row: model, paused, last logical time.
type ScheduleRow = (String, bool, Option<i64>);

/// How many ids one `IN (…)` list holds (well under both databases' parameter limits).
const IN_CHUNK: usize = 500;

/// The database clock, in integer milliseconds since the Unix epoch.
async fn db_now(conn: &mut Conn) -> Result<i64, RegistryError> {
    sqlx::query_scalar(NOW_MS)
        .fetch_one(conn)
        .await
        .db(|| "reading the database clock".to_string())
}

fn parse_json(
    text: &str,
    what: impl FnOnce() -> String,
) -> Result<serde_json::Value, RegistryError> {
    serde_json::from_str(text)
        .map_err(|e| RegistryError::corrupt(format!("{} is not valid JSON: {e}", what())))
}

fn to_u32(value: i64, what: impl FnOnce() -> String) -> Result<u32, RegistryError> {
    u32::try_from(value)
        .map_err(|_| RegistryError::corrupt(format!("{}: {value} is out of range", what())))
}

fn to_duration(ms: i64, what: impl FnOnce() -> String) -> Result<Duration, RegistryError> {
    u64::try_from(ms)
        .map(Duration::from_millis)
        .map_err(|_| RegistryError::corrupt(format!("{}: {ms} ms is negative", what())))
}

fn into_task(row: TaskRow, depends_on: Vec<i64>) -> Result<Task, RegistryError> {
    let id = row.task_id;
    let state: TaskState = row
        .state
        .parse()
        .map_err(|_| RegistryError::corrupt(format!("task {id}: unknown state {:?}", row.state)))?;
    Ok(Task {
        task_id: id,
        key: TaskKey {
            kind: row.kind,
            key: row.key,
            logical_time: to_time(row.logical_time, || format!("task {id} logical_time"))?,
        },
        payload: parse_json(&row.payload, || format!("task {id} payload"))?,
        depends_on,
        pool: row.pool,
        priority: row.priority,
        state,
        attempts: to_u32(row.attempts, || format!("task {id} attempts"))?,
        max_attempts: to_u32(row.max_attempts, || format!("task {id} max_attempts"))?,
        retry_backoff: to_duration(row.retry_backoff_ms, || format!("task {id} retry backoff"))?,
        timeout: row
            .timeout_ms
            .map(|ms| to_duration(ms, || format!("task {id} timeout")))
            .transpose()?,
        not_before: to_time(row.not_before, || format!("task {id} not_before"))?,
        lease_owner: row.lease_owner,
        lease_token: row.lease_token,
        lease_expires_at: to_time_opt(row.lease_expires_at, || {
            format!("task {id} lease_expires_at")
        })?,
        created_at: to_time(row.created_at, || format!("task {id} created_at"))?,
        updated_at: to_time(row.updated_at, || format!("task {id} updated_at"))?,
        last_error: row.last_error,
        output: row
            .output
            .map(|text| parse_json(&text, || format!("task {id} output")))
            .transpose()?,
    })
}

/// The dependencies of the given tasks, each list ascending.
async fn dependencies_of(
    conn: &mut Conn,
    ids: &[i64],
) -> Result<HashMap<i64, Vec<i64>>, RegistryError> {
    let mut out: HashMap<i64, Vec<i64>> = HashMap::new();
    for chunk in ids.chunks(IN_CHUNK) {
        let sql = format!(
            "SELECT task_id, depends_on FROM task_dependencies WHERE task_id IN ({}) \
             ORDER BY task_id, depends_on",
            placeholders(1, chunk.len())
        );
        let mut query = sqlx::query_as::<_, (i64, i64)>(AssertSqlSafe(sql));
        for id in chunk {
            query = query.bind(*id);
        }
        let rows = query
            .fetch_all(&mut *conn)
            .await
            .db(|| "reading task dependencies".to_string())?;
        for (task, dep) in rows {
            out.entry(task).or_default().push(dep);
        }
    }
    Ok(out)
}

/// Decodes task rows with their dependencies, keeping the rows' order.
async fn with_dependencies(
    conn: &mut Conn,
    rows: Vec<TaskRow>,
) -> Result<Vec<Task>, RegistryError> {
    let ids: Vec<i64> = rows.iter().map(|r| r.task_id).collect();
    let mut deps = dependencies_of(conn, &ids).await?;
    rows.into_iter()
        .map(|row| {
            let d = deps.remove(&row.task_id).unwrap_or_default();
            into_task(row, d)
        })
        .collect()
}

/// Reads one task; an unknown id is `NotFound`.
async fn load_task(conn: &mut Conn, task_id: i64) -> Result<Task, RegistryError> {
    let row: Option<TaskRow> =
        sqlx::query_as(AssertSqlSafe(format!("{TASK_SELECT} WHERE t.task_id = $1")))
            .bind(task_id)
            .fetch_optional(&mut *conn)
            .await
            .db(|| format!("reading task {task_id}"))?;
    let row = row.ok_or_else(|| RegistryError::not_found(format!("task {task_id}")))?;
    with_dependencies(conn, vec![row])
        .await?
        .pop()
        .ok_or_else(|| RegistryError::not_found(format!("task {task_id}")))
}

/// The id of the task with this key (logical time in milliseconds), if stored.
async fn find_id(
    conn: &mut Conn,
    kind: &str,
    key: &str,
    logical_ms: i64,
) -> Result<Option<i64>, RegistryError> {
    sqlx::query_scalar(
        "SELECT task_id FROM tasks WHERE kind = $1 AND key = $2 AND logical_time = $3",
    )
    .bind(kind)
    .bind(key)
    .bind(logical_ms)
    .fetch_optional(conn)
    .await
    .db(|| format!("looking up task {kind}/{key}"))
}

/// The conflict for a call made under lease `token` of `task` after the lease moved on.
fn lease_moved(task: &Task, token: i64) -> RegistryError {
    let now_where = match task.state {
        TaskState::Running => format!(
            "the task is running under lease {} held by worker {:?}",
            task.lease_token.unwrap_or_default(),
            task.lease_owner.as_deref().unwrap_or_default()
        ),
        TaskState::Queued => "the task went back to the queue (its lease expired or the \
                              attempt failed) and waits for a worker"
            .to_string(),
        TaskState::Succeeded => "the task has succeeded".to_string(),
        TaskState::Failed => "the task has failed".to_string(),
    };
    RegistryError::conflict(format!(
        "lease {token} of task {} ({}) is no longer current: {now_where}",
        task.task_id, task.key
    ))
}

/// Records how attempt `token` of `task_id` ended.
async fn end_attempt(
    conn: &mut Conn,
    task_id: i64,
    token: i64,
    now: i64,
    result: &str,
    error: Option<&str>,
) -> Result<(), RegistryError> {
    sqlx::query(
        "UPDATE task_attempts SET ended_at = $3, result = $4, error = $5 \
         WHERE task_id = $1 AND attempt = $2",
    )
    .bind(task_id)
    .bind(token)
    .bind(now)
    .bind(result)
    .bind(error)
    .execute(conn)
    .await
    .db(|| format!("recording the end of attempt {token} of task {task_id}"))?;
    Ok(())
}

/// Ends a running task's lease without success: back to the queue after a backoff if it
/// may be retried and has attempts left, failed otherwise. Returns the new state.
#[allow(clippy::too_many_arguments)]
async fn retry_or_fail(
    conn: &mut Conn,
    task_id: i64,
    now: i64,
    retry: bool,
    attempts: i64,
    max_attempts: i64,
    backoff_base_ms: i64,
    error: &str,
) -> Result<TaskState, RegistryError> {
    let (state, not_before) = if retry && attempts < max_attempts {
        let delay = backoff_ms(backoff_base_ms, attempts);
        (TaskState::Queued, Some(now.saturating_add(delay)))
    } else {
        (TaskState::Failed, None)
    };
    sqlx::query(
        "UPDATE tasks SET state = $2, not_before = COALESCE($3, not_before), last_error = $4, \
         lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL, updated_at = $5 \
         WHERE task_id = $1",
    )
    .bind(task_id)
    .bind(state.as_str())
    .bind(not_before)
    .bind(error)
    .bind(now)
    .execute(&mut *conn)
    .await
    .db(|| format!("returning task {task_id} as {state}"))?;
    if state == TaskState::Failed {
        // Its queued dependents, transitively, can never run: they fail too, naming it.
        let first_line = error.lines().next().unwrap_or_default();
        let reason: String = format!("upstream task {task_id} failed: {first_line}")
            .chars()
            .take(500)
            .collect();
        let failed = sqlx::query(
            "WITH RECURSIVE downstream(id) AS ( \
                 SELECT task_id FROM task_dependencies WHERE depends_on = $1 \
                 UNION SELECT d.task_id FROM task_dependencies d \
                 JOIN downstream ON d.depends_on = downstream.id) \
             UPDATE tasks SET state = 'failed', last_error = $2, updated_at = $3 \
             WHERE state = 'queued' AND task_id IN (SELECT id FROM downstream)",
        )
        .bind(task_id)
        .bind(&reason)
        .bind(now)
        .execute(&mut *conn)
        .await
        .db(|| format!("failing the dependents of task {task_id}"))?
        .rows_affected();
        if failed > 0 {
            tracing::warn!(
                task_id,
                dependents = failed,
                "failed the queued dependents of a failed task"
            );
        }
    }
    Ok(state)
}

/// A new task checked and encoded for storage.
struct Checked<'a> {
    task: &'a NewTask,
    logical_ms: i64,
    payload: String,
    backoff_ms: i64,
    timeout_ms: Option<i64>,
}

fn check_new_task(task: &NewTask) -> Result<Checked<'_>, RegistryError> {
    let key = &task.key;
    let invalid = |problem: String| RegistryError::InvalidInput(format!("task {key}: {problem}"));
    let name = |what: &str, value: &str| {
        check_name(what, value).map_err(|e| match e {
            RegistryError::InvalidInput(problem) => invalid(problem),
            other => other,
        })
    };
    name("task kind", &key.kind)?;
    name("task key", &key.key)?;
    if let Some(pool) = &task.pool {
        name("pool name", pool)?;
    }
    for dep in &task.depends_on {
        name("dependency kind", &dep.kind)?;
        name("dependency key", &dep.key)?;
    }
    if task.max_attempts == 0 {
        return Err(invalid("max_attempts must be at least 1".to_string()));
    }
    let backoff_ms = duration_ms(|| format!("task {key}: retry backoff"), task.retry_backoff)?;
    let timeout_ms = match task.timeout {
        Some(t) => {
            let ms = duration_ms(|| format!("task {key}: timeout"), t)?;
            if ms == 0 {
                return Err(invalid(format!(
                    "timeout {t:?} is shorter than a millisecond"
                )));
            }
            Some(ms)
        }
        None => None,
    };
    let payload = serde_json::to_string(&task.payload)
        .map_err(|e| invalid(format!("payload cannot be encoded as JSON: {e}")))?;
    Ok(Checked {
        task,
        logical_ms: key.logical_time.timestamp_millis(),
        payload,
        backoff_ms,
        timeout_ms,
    })
}

/// A task identity as stored: kind, key, logical time in milliseconds.
type Identity<'a> = (&'a str, &'a str, i64);

fn identity(key: &TaskKey) -> Identity<'_> {
    (&key.kind, &key.key, key.logical_time.timestamp_millis())
}

/// What a dependency of a new task resolves to.
#[derive(Clone, Copy)]
enum Dep {
    /// Another task of the batch, by its position among the distinct tasks.
    Batch(usize),
    /// A stored task.
    Stored(i64),
}

/// Orders the new tasks (positions without a stored id) so that each comes after its batch
/// dependencies; a cycle is `InvalidInput` naming its tasks.
fn dependency_order(
    distinct: &[Checked<'_>],
    stored: &[Option<i64>],
    deps: &[Vec<Dep>],
) -> Result<Vec<usize>, RegistryError> {
    let new: Vec<usize> = (0..distinct.len())
        .filter(|&i| stored[i].is_none())
        .collect();
    let batch_deps = |i: usize| {
        deps[i].iter().filter_map(|d| match d {
            Dep::Batch(j) if stored[*j].is_none() => Some(*j),
            _ => None,
        })
    };
    let mut waiting: HashMap<usize, usize> = HashMap::new();
    let mut dependents: HashMap<usize, Vec<usize>> = HashMap::new();
    for &i in &new {
        let mut n = 0;
        for j in batch_deps(i) {
            n += 1;
            dependents.entry(j).or_default().push(i);
        }
        waiting.insert(i, n);
    }
    let mut ready: Vec<usize> = new
        .iter()
        .copied()
        .filter(|i| waiting.get(i) == Some(&0))
        .rev()
        .collect();
    let mut order = Vec::with_capacity(new.len());
    while let Some(i) = ready.pop() {
        order.push(i);
        for &d in dependents.get(&i).map(Vec::as_slice).unwrap_or_default() {
            if let Some(n) = waiting.get_mut(&d) {
                *n -= 1;
                if *n == 0 {
                    ready.push(d);
                }
            }
        }
    }
    if order.len() == new.len() {
        return Ok(order);
    }
    // Every task left waits for another one left: walk back along dependencies until a task
    // repeats, and name that loop.
    let placed: HashSet<usize> = order.iter().copied().collect();
    let left = |i: &usize| !placed.contains(i);
    let Some(mut at) = new.iter().copied().find(|i| left(i)) else {
        return Ok(order);
    };
    let mut path = vec![at];
    while let Some(next) = batch_deps(at).find(left) {
        if let Some(start) = path.iter().position(|&p| p == next) {
            path.drain(..start);
            path.push(next);
            break;
        }
        path.push(next);
        at = next;
    }
    let names: Vec<String> = path
        .iter()
        .map(|&i| distinct[i].task.key.to_string())
        .collect();
    Err(RegistryError::InvalidInput(format!(
        "task {} is part of a dependency cycle: {}",
        names[0],
        names.join(" depends on ")
    )))
}

impl TaskQueue for Store {
    async fn set_pools(&self, pools: &BTreeMap<String, u32>) -> Result<(), RegistryError> {
        for pool in pools.keys() {
            check_name("pool name", pool)?;
        }
        let ctx = || "configuring task pools".to_string();
        let mut tx = self.begin_write().await.db(ctx)?;
        let now = db_now(&mut tx).await?;
        for (pool, slots) in pools {
            sqlx::query(
                "INSERT INTO task_pools (pool, slots, updated_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (pool) DO UPDATE SET slots = excluded.slots, \
                 updated_at = excluded.updated_at",
            )
            .bind(pool)
            .bind(i64::from(*slots))
            .bind(now)
            .execute(&mut *tx)
            .await
            .db(ctx)?;
        }
        tx.commit().await.db(ctx)?;
        tracing::info!(pools = ?pools, "configured task pools");
        Ok(())
    }

    async fn pools(&self) -> Result<BTreeMap<String, u32>, RegistryError> {
        let rows: Vec<(String, i64)> = sqlx::query_as("SELECT pool, slots FROM task_pools")
            .fetch_all(&self.pool)
            .await
            .db(|| "reading task pools".to_string())?;
        rows.into_iter()
            .map(|(pool, slots)| {
                let slots = to_u32(slots, || format!("pool {pool:?} slots"))?;
                Ok((pool, slots))
            })
            .collect()
    }

    async fn enqueue(&self, tasks: &[NewTask]) -> Result<Vec<i64>, RegistryError> {
        // Check everything before writing anything; a repeated key is one task (the first).
        let mut position: HashMap<Identity<'_>, usize> = HashMap::new();
        let mut distinct: Vec<Checked<'_>> = Vec::new();
        let mut slot_of = Vec::with_capacity(tasks.len());
        for task in tasks {
            let checked = check_new_task(task)?;
            let at = *position.entry(identity(&task.key)).or_insert_with(|| {
                distinct.push(checked);
                distinct.len() - 1
            });
            slot_of.push(at);
        }
        if tasks.is_empty() {
            return Ok(Vec::new());
        }
        let ctx = || format!("enqueueing {} task(s)", tasks.len());
        let mut tx = self.begin_write().await.db(ctx)?;
        let now = db_now(&mut tx).await?;

        let mut known_pools: HashSet<&str> = HashSet::new();
        for checked in &distinct {
            let Some(pool) = checked.task.pool.as_deref() else {
                continue;
            };
            if known_pools.contains(pool) {
                continue;
            }
            let exists: Option<i64> =
                sqlx::query_scalar("SELECT slots FROM task_pools WHERE pool = $1")
                    .bind(pool)
                    .fetch_optional(&mut *tx)
                    .await
                    .db(ctx)?;
            if exists.is_none() {
                tx.rollback().await.db(ctx)?;
                return Err(RegistryError::InvalidInput(format!(
                    "task {}: pool {pool:?} is not configured (configure its slots with \
                     set_pools first)",
                    checked.task.key
                )));
            }
            known_pools.insert(pool);
        }

        let mut stored: Vec<Option<i64>> = Vec::with_capacity(distinct.len());
        for c in &distinct {
            stored.push(find_id(&mut tx, &c.task.key.kind, &c.task.key.key, c.logical_ms).await?);
        }
        let mut deps: Vec<Vec<Dep>> = Vec::with_capacity(distinct.len());
        for (i, c) in distinct.iter().enumerate() {
            let mut resolved = Vec::new();
            if stored[i].is_none() {
                for dep in &c.task.depends_on {
                    let found = match position.get(&identity(dep)) {
                        Some(&j) => Some(Dep::Batch(j)),
                        None => {
                            let ms = dep.logical_time.timestamp_millis();
                            find_id(&mut tx, &dep.kind, &dep.key, ms)
                                .await?
                                .map(Dep::Stored)
                        }
                    };
                    let Some(found) = found else {
                        tx.rollback().await.db(ctx)?;
                        return Err(RegistryError::InvalidInput(format!(
                            "task {} depends on task {dep}, which is neither stored nor in \
                             the batch",
                            c.task.key
                        )));
                    };
                    resolved.push(found);
                }
            }
            deps.push(resolved);
        }
        let order = match dependency_order(&distinct, &stored, &deps) {
            Ok(order) => order,
            Err(e) => {
                tx.rollback().await.db(ctx)?;
                return Err(e);
            }
        };

        let mut ids = stored;
        let mut added = 0_usize;
        for i in order {
            let c = &distinct[i];
            let task = c.task;
            let inserted: Option<i64> = sqlx::query_scalar(
                "INSERT INTO tasks (kind, key, logical_time, payload, pool, priority, state, \
                 attempts, max_attempts, retry_backoff_ms, timeout_ms, not_before, created_at, \
                 updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, 'queued', 0, $7, $8, $9, $10, $10, $10) \
                 ON CONFLICT (kind, key, logical_time) DO NOTHING RETURNING task_id",
            )
            .bind(&task.key.kind)
            .bind(&task.key.key)
            .bind(c.logical_ms)
            .bind(&c.payload)
            .bind(task.pool.as_deref())
            .bind(task.priority)
            .bind(i64::from(task.max_attempts))
            .bind(c.backoff_ms)
            .bind(c.timeout_ms)
            .bind(now)
            .fetch_optional(&mut *tx)
            .await
            .db(|| format!("enqueueing task {}", task.key))?;
            let Some(id) = inserted else {
                // Another writer stored this key since we looked: it is that task.
                ids[i] = find_id(&mut tx, &task.key.kind, &task.key.key, c.logical_ms).await?;
                continue;
            };
            ids[i] = Some(id);
            added += 1;
            for dep in &deps[i] {
                let dep_id = match *dep {
                    Dep::Stored(id) => Some(id),
                    Dep::Batch(j) => ids[j],
                };
                let Some(dep_id) = dep_id else {
                    tx.rollback().await.db(ctx)?;
                    return Err(RegistryError::corrupt(format!(
                        "task {}: a dependency was not stored before it",
                        task.key
                    )));
                };
                sqlx::query(
                    "INSERT INTO task_dependencies (task_id, depends_on) VALUES ($1, $2) \
                     ON CONFLICT (task_id, depends_on) DO NOTHING",
                )
                .bind(id)
                .bind(dep_id)
                .execute(&mut *tx)
                .await
                .db(|| format!("recording the dependencies of task {}", task.key))?;
            }
        }
        let mut out = Vec::with_capacity(tasks.len());
        for (task, at) in tasks.iter().zip(slot_of) {
            let Some(id) = ids[at] else {
                tx.rollback().await.db(ctx)?;
                return Err(RegistryError::corrupt(format!(
                    "task {} was neither stored nor added",
                    task.key
                )));
            };
            out.push(id);
        }
        tx.commit().await.db(ctx)?;
        if added > 0 {
            tracing::debug!(added, given = tasks.len(), "enqueued tasks");
        }
        Ok(out)
    }

    async fn claim(
        &self,
        worker: &str,
        lease: Duration,
        limits: &ClaimLimits,
    ) -> Result<Option<Lease>, RegistryError> {
        check_name("worker name", worker)?;
        let lease_ms = duration_ms(|| format!("lease for worker {worker:?}"), lease)?;
        if lease_ms == 0 {
            return Err(RegistryError::InvalidInput(format!(
                "lease {lease:?} for worker {worker:?} is shorter than a millisecond"
            )));
        }
        let ctx = || format!("claiming a task for worker {worker:?}");
        // Pools found full after locking them (PostgreSQL only: their counts moved between
        // the candidate query and the lock); the next round looks past them.
        let mut full: Vec<String> = Vec::new();
        loop {
            let mut tx = self.begin_write().await.db(ctx)?;
            if let Some(max) = limits.max_running {
                if let Some(lock) = SERIALIZE_CLAIMS {
                    sqlx::query(lock).execute(&mut *tx).await.db(ctx)?;
                }
                let running: i64 =
                    sqlx::query_scalar("SELECT COUNT(*) FROM tasks WHERE state = 'running'")
                        .fetch_one(&mut *tx)
                        .await
                        .db(ctx)?;
                if running >= i64::from(max) {
                    tx.rollback().await.db(ctx)?;
                    return Ok(None);
                }
            }
            let now = db_now(&mut tx).await?;
            let skip_full = if full.is_empty() {
                String::new()
            } else {
                format!(
                    " AND (t.pool IS NULL OR t.pool NOT IN ({}))",
                    placeholders(2, full.len())
                )
            };
            let sql = format!(
                "SELECT t.task_id, t.pool FROM tasks t \
                 WHERE t.state = 'queued' AND t.not_before <= $1 \
                   AND NOT EXISTS (SELECT 1 FROM task_dependencies d \
                     JOIN tasks u ON u.task_id = d.depends_on \
                     WHERE d.task_id = t.task_id AND u.state <> 'succeeded') \
                   AND (t.pool IS NULL OR EXISTS (SELECT 1 FROM task_pools p \
                     WHERE p.pool = t.pool AND p.slots > (SELECT COUNT(*) FROM tasks r \
                       WHERE r.pool = p.pool AND r.state = 'running'))){skip_full} \
                 ORDER BY t.priority DESC, t.logical_time, t.task_id LIMIT 1{LOCK_SKIP}"
            );
            let mut query =
                sqlx::query_as::<_, (i64, Option<String>)>(AssertSqlSafe(sql)).bind(now);
            for pool in &full {
                query = query.bind(pool);
            }
            let candidate = query.fetch_optional(&mut *tx).await.db(ctx)?;
            let Some((task_id, pool)) = candidate else {
                tx.rollback().await.db(ctx)?;
                return Ok(None);
            };
            if let Some(pool) = pool {
                // Lock the pool's row, then count: concurrent claims of one pool take
                // turns here, so none of them sees a slot another has just filled.
                let slots: Option<i64> = sqlx::query_scalar(AssertSqlSafe(format!(
                    "SELECT slots FROM task_pools WHERE pool = $1{LOCK_ROW}"
                )))
                .bind(&pool)
                .fetch_optional(&mut *tx)
                .await
                .db(ctx)?;
                let running: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM tasks WHERE pool = $1 AND state = 'running'",
                )
                .bind(&pool)
                .fetch_one(&mut *tx)
                .await
                .db(ctx)?;
                if running >= slots.unwrap_or(0) {
                    tx.rollback().await.db(ctx)?;
                    full.push(pool);
                    continue;
                }
            }
            // The attempt starts now, read after the candidate query: that query saw its
            // dependencies' ends committed, so this reading is not before any of them (the
            // one taken before it could be, when a dependency ended in between).
            let now = db_now(&mut tx).await?.max(now);
            let expires = now.saturating_add(lease_ms);
            let token: Option<i64> = sqlx::query_scalar(
                "UPDATE tasks SET state = 'running', attempts = attempts + 1, \
                 lease_token = attempts + 1, lease_owner = $2, lease_expires_at = $3, \
                 updated_at = $4 WHERE task_id = $1 AND state = 'queued' RETURNING lease_token",
            )
            .bind(task_id)
            .bind(worker)
            .bind(expires)
            .bind(now)
            .fetch_optional(&mut *tx)
            .await
            .db(ctx)?;
            let Some(token) = token else {
                tx.rollback().await.db(ctx)?;
                return Err(RegistryError::conflict(format!(
                    "task {task_id} changed while worker {worker:?} claimed it"
                )));
            };
            sqlx::query(
                "INSERT INTO task_attempts (task_id, attempt, worker, token, started_at, result) \
                 VALUES ($1, $2, $3, $2, $4, 'running')",
            )
            .bind(task_id)
            .bind(token)
            .bind(worker)
            .bind(now)
            .execute(&mut *tx)
            .await
            .db(ctx)?;
            let task = load_task(&mut tx, task_id).await?;
            tx.commit().await.db(ctx)?;
            tracing::debug!(task_id, task = %task.key, worker, token, "claimed task");
            return Ok(Some(Lease {
                token,
                expires_at: to_time(expires, || format!("task {task_id} lease expiry"))?,
                task,
            }));
        }
    }

    async fn heartbeat(
        &self,
        task_id: i64,
        token: i64,
        lease: Duration,
    ) -> Result<DateTime<Utc>, RegistryError> {
        let lease_ms = duration_ms(|| format!("lease of task {task_id}"), lease)?;
        if lease_ms == 0 {
            return Err(RegistryError::InvalidInput(format!(
                "lease {lease:?} of task {task_id} is shorter than a millisecond"
            )));
        }
        let ctx = || format!("renewing lease {token} of task {task_id}");
        let mut tx = self.begin_write().await.db(ctx)?;
        let now = db_now(&mut tx).await?;
        // An attempt past its timeout is not renewed (see the trait's timeouts).
        let renewed: Option<i64> = sqlx::query_scalar(
            "UPDATE tasks SET lease_expires_at = $3, updated_at = $4 \
             WHERE task_id = $1 AND state = 'running' AND lease_token = $2 \
               AND (timeout_ms IS NULL OR NOT EXISTS (SELECT 1 FROM task_attempts a \
                    WHERE a.task_id = tasks.task_id AND a.attempt = $2 \
                      AND a.started_at + tasks.timeout_ms <= $4)) \
             RETURNING lease_expires_at",
        )
        .bind(task_id)
        .bind(token)
        .bind(now.saturating_add(lease_ms))
        .bind(now)
        .fetch_optional(&mut *tx)
        .await
        .db(ctx)?;
        match renewed {
            Some(expires) => {
                tx.commit().await.db(ctx)?;
                to_time(expires, || format!("task {task_id} lease expiry"))
            }
            None => {
                let task = load_task(&mut tx, task_id).await;
                tx.rollback().await.db(ctx)?;
                let task = task?;
                match task.timeout {
                    Some(limit)
                        if task.state == TaskState::Running && task.lease_token == Some(token) =>
                    {
                        Err(RegistryError::conflict(format!(
                            "attempt {token} of task {task_id} ({}) ran past its timeout of \
                             {} s; the scheduler takes it back",
                            task.key,
                            limit.as_secs_f64()
                        )))
                    }
                    _ => Err(lease_moved(&task, token)),
                }
            }
        }
    }

    async fn complete(
        &self,
        task_id: i64,
        token: i64,
        outcome: Outcome,
    ) -> Result<Task, RegistryError> {
        let ctx = || format!("completing lease {token} of task {task_id}");
        let mut tx = self.begin_write().await.db(ctx)?;
        let now = db_now(&mut tx).await?;
        let row: Option<LeaseRow> = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT t.state, t.lease_token, t.lease_owner, t.attempts, t.max_attempts, \
             t.retry_backoff_ms FROM tasks t WHERE t.task_id = $1{LOCK_ROW}"
        )))
        .bind(task_id)
        .fetch_optional(&mut *tx)
        .await
        .db(ctx)?;
        let Some((state, lease_token, owner, attempts, max_attempts, backoff)) = row else {
            tx.rollback().await.db(ctx)?;
            return Err(RegistryError::not_found(format!("task {task_id}")));
        };
        if state != TaskState::Running.as_str() || lease_token != Some(token) {
            // Not the current lease: a repeat of how this attempt already ended is answered
            // with the task; anything else changes nothing and is refused.
            let ended: Option<String> = sqlx::query_scalar(
                "SELECT result FROM task_attempts WHERE task_id = $1 AND attempt = $2",
            )
            .bind(task_id)
            .bind(token)
            .fetch_optional(&mut *tx)
            .await
            .db(ctx)?;
            let repeat = matches!(
                (ended.as_deref(), &outcome),
                (Some("succeeded"), Outcome::Succeeded { .. })
                    | (Some("failed"), Outcome::Failed { .. })
            );
            let task = load_task(&mut tx, task_id).await;
            tx.rollback().await.db(ctx)?;
            let task = task?;
            return if repeat {
                Ok(task)
            } else {
                Err(lease_moved(&task, token))
            };
        }
        let worker = owner.unwrap_or_default();
        match &outcome {
            Outcome::Succeeded { output } => {
                let output = serde_json::to_string(output).map_err(|e| {
                    RegistryError::InvalidInput(format!(
                        "output of task {task_id} cannot be encoded as JSON: {e}"
                    ))
                })?;
                sqlx::query(
                    "UPDATE tasks SET state = 'succeeded', output = $2, lease_owner = NULL, \
                     lease_token = NULL, lease_expires_at = NULL, updated_at = $3 \
                     WHERE task_id = $1",
                )
                .bind(task_id)
                .bind(output)
                .bind(now)
                .execute(&mut *tx)
                .await
                .db(ctx)?;
                end_attempt(&mut tx, task_id, token, now, "succeeded", None).await?;
            }
            Outcome::Failed { error, retryable } => {
                retry_or_fail(
                    &mut tx,
                    task_id,
                    now,
                    *retryable,
                    attempts,
                    max_attempts,
                    backoff,
                    error,
                )
                .await?;
                end_attempt(&mut tx, task_id, token, now, "failed", Some(error)).await?;
            }
        }
        let task = load_task(&mut tx, task_id).await?;
        tx.commit().await.db(ctx)?;
        tracing::debug!(task_id, task = %task.key, worker, token, state = %task.state, "completed task attempt");
        Ok(task)
    }

    async fn requeue_expired(&self) -> Result<Vec<i64>, RegistryError> {
        let ctx = || "taking back tasks whose lease expired".to_string();
        let mut tx = self.begin_write().await.db(ctx)?;
        let now = db_now(&mut tx).await?;
        // Rows a heartbeat or completion holds right now are skipped: they are being
        // renewed or ended, and the next sweep sees them if not.
        let expired: Vec<ExpiredRow> = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT t.task_id, t.lease_token, t.lease_owner, t.attempts, t.max_attempts, \
                 t.retry_backoff_ms, \
                 CASE WHEN t.timeout_ms IS NOT NULL AND a.started_at + t.timeout_ms <= $1 \
                      THEN t.timeout_ms END \
                 FROM tasks t LEFT JOIN task_attempts a \
                   ON a.task_id = t.task_id AND a.attempt = t.lease_token \
                 WHERE t.state = 'running' AND (t.lease_expires_at < $1 \
                   OR (t.timeout_ms IS NOT NULL AND a.started_at + t.timeout_ms <= $1)) \
                 ORDER BY t.task_id{LOCK_SKIP}"
        )))
        .bind(now)
        .fetch_all(&mut *tx)
        .await
        .db(ctx)?;
        let mut ids = Vec::with_capacity(expired.len());
        for (task_id, token, owner, attempts, max_attempts, backoff, timed_out) in expired {
            let owner = owner.unwrap_or_default();
            let token = token.unwrap_or(attempts);
            let (result, error) = match timed_out {
                Some(ms) => (
                    "failed",
                    format!(
                        "timed out: attempt {token} of worker {owner:?} ran past the task's \
                         timeout of {} s",
                        ms as f64 / 1000.0
                    ),
                ),
                None => (
                    "lost",
                    format!("lease {token} of worker {owner:?} expired without a heartbeat"),
                ),
            };
            let state = retry_or_fail(
                &mut tx,
                task_id,
                now,
                true,
                attempts,
                max_attempts,
                backoff,
                &error,
            )
            .await?;
            end_attempt(&mut tx, task_id, token, now, result, Some(&error)).await?;
            tracing::warn!(task_id, worker = %owner, token, state = %state, %error, "took back a task");
            ids.push(task_id);
        }
        tx.commit().await.db(ctx)?;
        Ok(ids)
    }

    async fn get_task(&self, task_id: i64) -> Result<Task, RegistryError> {
        let ctx = || format!("reading task {task_id}");
        let mut tx = self.begin_read().await.db(ctx)?;
        let task = load_task(&mut tx, task_id).await?;
        tx.commit().await.db(ctx)?;
        Ok(task)
    }

    async fn find_task(&self, key: &TaskKey) -> Result<Option<Task>, RegistryError> {
        let ctx = || format!("looking up task {key}");
        let mut tx = self.begin_read().await.db(ctx)?;
        let row: Option<TaskRow> = sqlx::query_as(AssertSqlSafe(format!(
            "{TASK_SELECT} WHERE t.kind = $1 AND t.key = $2 AND t.logical_time = $3"
        )))
        .bind(&key.kind)
        .bind(&key.key)
        .bind(key.logical_time.timestamp_millis())
        .fetch_optional(&mut *tx)
        .await
        .db(ctx)?;
        let task = match row {
            Some(row) => with_dependencies(&mut tx, vec![row]).await?.pop(),
            None => None,
        };
        tx.commit().await.db(ctx)?;
        Ok(task)
    }

    async fn list_tasks(&self, filter: &TaskFilter) -> Result<Vec<Task>, RegistryError> {
        if filter.limit == 0 {
            return Err(RegistryError::InvalidInput(
                "task filter limit must be at least 1".to_string(),
            ));
        }
        let limit = i64::try_from(filter.limit).unwrap_or(i64::MAX);
        let ctx = || "listing tasks".to_string();
        let mut tx = self.begin_read().await.db(ctx)?;
        let rows: Vec<TaskRow> = sqlx::query_as(AssertSqlSafe(format!(
            "{TASK_SELECT} \
             WHERE ($1 IS NULL OR t.state = $1) AND ($2 IS NULL OR t.kind = $2) \
               AND ($3 IS NULL OR substr(t.key, 1, length($3)) = $3) \
               AND ($5 IS NULL OR {PAYLOAD_LISTS_SEGMENT}) \
             ORDER BY t.logical_time DESC, t.task_id LIMIT $4"
        )))
        .bind(filter.state.map(TaskState::as_str))
        .bind(filter.kind.as_deref())
        .bind(filter.key_prefix.as_deref())
        .bind(limit)
        .bind(filter.segment.as_deref())
        .fetch_all(&mut *tx)
        .await
        .db(ctx)?;
        let tasks = with_dependencies(&mut tx, rows).await?;
        tx.commit().await.db(ctx)?;
        Ok(tasks)
    }

    async fn purge_finished(&self, older_than: Duration) -> Result<u64, RegistryError> {
        let older_ms = duration_ms(|| "task retention".to_string(), older_than)?;
        let ctx = || format!("purging tasks finished more than {older_than:?} ago");
        let mut tx = self.begin_write().await.db(ctx)?;
        let cutoff = db_now(&mut tx).await?.saturating_sub(older_ms);
        let ids: Vec<i64> = sqlx::query_scalar(
            "SELECT t.task_id FROM tasks t \
             WHERE t.state IN ('succeeded', 'failed') AND t.updated_at < $1 \
               AND NOT EXISTS (SELECT 1 FROM task_dependencies d \
                   JOIN tasks dn ON dn.task_id = d.task_id \
                   WHERE d.depends_on = t.task_id AND dn.state IN ('queued', 'running')) \
             ORDER BY t.task_id",
        )
        .bind(cutoff)
        .fetch_all(&mut *tx)
        .await
        .db(ctx)?;
        for chunk in ids.chunks(IN_CHUNK) {
            let list = placeholders(1, chunk.len());
            for sql in [
                format!(
                    "DELETE FROM task_dependencies WHERE task_id IN ({list}) \
                     OR depends_on IN ({list})"
                ),
                format!("DELETE FROM task_attempts WHERE task_id IN ({list})"),
                format!("DELETE FROM tasks WHERE task_id IN ({list})"),
            ] {
                let mut query = sqlx::query(AssertSqlSafe(sql));
                for id in chunk {
                    query = query.bind(id);
                }
                query.execute(&mut *tx).await.db(ctx)?;
            }
        }
        tx.commit().await.db(ctx)?;
        if !ids.is_empty() {
            tracing::info!(purged = ids.len(), "purged finished tasks");
        }
        Ok(ids.len() as u64)
    }

    async fn task_counts(&self) -> Result<BTreeMap<TaskState, u64>, RegistryError> {
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT state, COUNT(*) FROM tasks GROUP BY state")
                .fetch_all(&self.pool)
                .await
                .db(|| "counting tasks".to_string())?;
        let mut counts: BTreeMap<TaskState, u64> =
            TaskState::ALL.into_iter().map(|s| (s, 0)).collect();
        for (state, n) in rows {
            let state: TaskState = state
                .parse()
                .map_err(|_| RegistryError::corrupt(format!("unknown task state {state:?}")))?;
            counts.insert(state, u64::try_from(n).unwrap_or_default());
        }
        Ok(counts)
    }

    async fn task_attempts(&self, task_id: i64) -> Result<Vec<Attempt>, RegistryError> {
        let ctx = || format!("reading the attempts of task {task_id}");
        let mut tx = self.begin_read().await.db(ctx)?;
        let exists: Option<i64> =
            sqlx::query_scalar("SELECT task_id FROM tasks WHERE task_id = $1")
                .bind(task_id)
                .fetch_optional(&mut *tx)
                .await
                .db(ctx)?;
        if exists.is_none() {
            tx.rollback().await.db(ctx)?;
            return Err(RegistryError::not_found(format!("task {task_id}")));
        }
        let rows: Vec<AttemptRow> = sqlx::query_as(
            "SELECT task_id, attempt, worker, token, started_at, ended_at, result, error \
             FROM task_attempts WHERE task_id = $1 ORDER BY attempt",
        )
        .bind(task_id)
        .fetch_all(&mut *tx)
        .await
        .db(ctx)?;
        tx.commit().await.db(ctx)?;
        rows.into_iter()
            .map(
                |(task_id, attempt, worker, token, started_at, ended_at, result, error)| {
                    Ok(Attempt {
                        task_id,
                        attempt: to_u32(attempt, || format!("task {task_id} attempt number"))?,
                        worker,
                        token,
                        started_at: to_time(started_at, || {
                            format!("task {task_id} attempt {attempt} started_at")
                        })?,
                        ended_at: to_time_opt(ended_at, || {
                            format!("task {task_id} attempt {attempt} ended_at")
                        })?,
                        result,
                        error,
                    })
                },
            )
            .collect()
    }
}

fn into_schedule((model, paused, last): ScheduleRow) -> Result<ModelSchedule, RegistryError> {
    Ok(ModelSchedule {
        last_logical_time: to_time_opt(last, || {
            format!("schedule of {model:?} last_logical_time")
        })?,
        model,
        paused,
    })
}

const SCHEDULE_SELECT: &str = "SELECT model, paused, last_logical_time FROM schedule_state";

/// Reads one model's schedule state inside a transaction.
async fn read_schedule(
    conn: &mut Conn,
    model: &str,
) -> Result<Option<ModelSchedule>, RegistryError> {
    let row: Option<ScheduleRow> =
        sqlx::query_as(AssertSqlSafe(format!("{SCHEDULE_SELECT} WHERE model = $1")))
            .bind(model)
            .fetch_optional(conn)
            .await
            .db(|| format!("reading the schedule state of {model:?}"))?;
    row.map(into_schedule).transpose()
}

impl ScheduleState for Store {
    async fn schedule_state(&self, model: &str) -> Result<Option<ModelSchedule>, RegistryError> {
        check_name("model name", model)?;
        let mut conn = self
            .pool
            .acquire()
            .await
            .db(|| format!("reading the schedule state of {model:?}"))?;
        read_schedule(&mut conn, model).await
    }

    async fn set_last_scheduled(
        &self,
        model: &str,
        logical_time: DateTime<Utc>,
    ) -> Result<ModelSchedule, RegistryError> {
        check_name("model name", model)?;
        let ctx = || format!("recording that {model:?} was scheduled up to {logical_time}");
        let mut tx = self.begin_write().await.db(ctx)?;
        // Only a later time moves it: replays and racing schedulers cannot move it back.
        sqlx::query(
            "INSERT INTO schedule_state (model, paused, last_logical_time, updated_at) \
             VALUES ($1, $2, $3, $4) \
             ON CONFLICT (model) DO UPDATE SET last_logical_time = excluded.last_logical_time, \
               updated_at = excluded.updated_at \
             WHERE schedule_state.last_logical_time IS NULL \
                OR schedule_state.last_logical_time < excluded.last_logical_time",
        )
        .bind(model)
        .bind(false)
        .bind(logical_time.timestamp_millis())
        .bind(now_ms())
        .execute(&mut *tx)
        .await
        .db(ctx)?;
        let state = read_schedule(&mut tx, model).await?;
        tx.commit().await.db(ctx)?;
        state.ok_or_else(|| RegistryError::not_found(format!("schedule state of {model:?}")))
    }

    async fn set_paused(&self, model: &str, paused: bool) -> Result<ModelSchedule, RegistryError> {
        check_name("model name", model)?;
        let ctx = || {
            format!(
                "{} the schedule of {model:?}",
                if paused { "pausing" } else { "resuming" }
            )
        };
        let mut tx = self.begin_write().await.db(ctx)?;
        sqlx::query(
            "INSERT INTO schedule_state (model, paused, last_logical_time, updated_at) \
             VALUES ($1, $2, NULL, $3) \
             ON CONFLICT (model) DO UPDATE SET paused = excluded.paused, \
               updated_at = excluded.updated_at",
        )
        .bind(model)
        .bind(paused)
        .bind(now_ms())
        .execute(&mut *tx)
        .await
        .db(ctx)?;
        let state = read_schedule(&mut tx, model).await?;
        tx.commit().await.db(ctx)?;
        tracing::info!(model, paused, "set schedule pause");
        state.ok_or_else(|| RegistryError::not_found(format!("schedule state of {model:?}")))
    }

    async fn set_last_scheduled_many(
        &self,
        scheduled: &[(String, DateTime<Utc>)],
    ) -> Result<(), RegistryError> {
        for (model, _) in scheduled {
            check_name("model name", model)?;
        }
        let ctx = || format!("recording {} scheduled models", scheduled.len());
        let now = now_ms();
        let mut tx = self.begin_write().await.db(ctx)?;
        // 500 rows × 4 parameters per statement stays far below either database's limit.
        for chunk in scheduled.chunks(500) {
            let sql = format!(
                "INSERT INTO schedule_state (model, paused, last_logical_time, updated_at) \
                 VALUES {} \
                 ON CONFLICT (model) DO UPDATE SET last_logical_time = excluded.last_logical_time, \
                   updated_at = excluded.updated_at \
                 WHERE schedule_state.last_logical_time IS NULL \
                    OR schedule_state.last_logical_time < excluded.last_logical_time",
                crate::backend::value_rows(chunk.len(), 4)
            );
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for (model, time) in chunk {
                q = q
                    .bind(model)
                    .bind(false)
                    .bind(time.timestamp_millis())
                    .bind(now);
            }
            q.execute(&mut *tx).await.db(ctx)?;
        }
        tx.commit().await.db(ctx)?;
        Ok(())
    }

    async fn list_schedule_states(&self) -> Result<Vec<ModelSchedule>, RegistryError> {
        let rows: Vec<ScheduleRow> = sqlx::query_as(SCHEDULE_SELECT)
            .fetch_all(&self.pool)
            .await
            .db(|| "listing schedule states".to_string())?;
        let mut states = rows
            .into_iter()
            .map(into_schedule)
            .collect::<Result<Vec<_>, _>>()?;
        // Sorted here, not in SQL, so the order is byte order on both backends whatever the
        // database's collation.
        states.sort_by(|a, b| a.model.cmp(&b.model));
        Ok(states)
    }
}
