//! Tracking: runs, params, metrics, tags and inputs.

use std::collections::{BTreeMap, HashMap};

use sqlx::AssertSqlSafe;
use uuid::Uuid;

use crate::error::{DbContext, RegistryError};
use crate::registry::{check_name, now_ms, to_time, to_time_opt};
use crate::sqlite::{self, Conn};
use crate::{Metric, NewRun, Registry, Run, RunFilter, RunStatus, TableInput};

/// Run ids bound per `IN (…)` query when loading many runs' children.
const IN_CHUNK: usize = 500;

const RUN_COLUMNS: &str = "run_id, experiment, segment, status, config_hash, spire_version, \
                           started_at, ended_at, error";

/// A `runs` row as stored.
#[derive(sqlx::FromRow)]
struct RunRow {
    run_id: String,
    experiment: String,
    segment: String,
    status: String,
    config_hash: String,
    spire_version: String,
    started_at: i64,
    ended_at: Option<i64>,
    error: Option<String>,
}

/// What a run logged, loaded from the child tables.
#[derive(Default)]
struct Children {
    params: BTreeMap<String, String>,
    tags: BTreeMap<String, String>,
    metrics: BTreeMap<String, f64>,
    inputs: Vec<TableInput>,
}

impl Registry {
    /// Starts a run in state `running` and returns its id (32 hex digits).
    ///
    /// Creates the experiment if it does not exist. The run, its params, tags and inputs are
    /// stored in one transaction. Errors: [`RegistryError::InvalidInput`] for an empty
    /// experiment, an empty param/tag key or table name, or a negative table version.
    pub async fn create_run(&self, run: NewRun) -> Result<String, RegistryError> {
        check_new_run(&run)?;
        let run_id = Uuid::new_v4().simple().to_string();
        let now = now_ms();
        let ctx = || {
            format!(
                "creating a run for segment {:?} in experiment {:?}",
                run.segment, run.experiment
            )
        };
        let mut tx = sqlite::begin_write(&self.pool).await.db(ctx)?;
        sqlx::query(
            "INSERT INTO experiments (name, created_at) VALUES ($1, $2) \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(&run.experiment)
        .bind(now)
        .execute(&mut *tx)
        .await
        .db(ctx)?;
        sqlx::query(
            "INSERT INTO runs (run_id, experiment, segment, status, config_hash, spire_version, \
             started_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&run_id)
        .bind(&run.experiment)
        .bind(&run.segment)
        .bind(RunStatus::Running.as_str())
        .bind(&run.config_hash)
        .bind(&run.spire_version)
        .bind(now)
        .execute(&mut *tx)
        .await
        .db(ctx)?;
        for (key, value) in &run.params {
            sqlx::query("INSERT INTO params (run_id, key, value) VALUES ($1, $2, $3)")
                .bind(&run_id)
                .bind(key)
                .bind(value)
                .execute(&mut *tx)
                .await
                .db(ctx)?;
        }
        for (key, value) in &run.tags {
            sqlx::query("INSERT INTO tags (run_id, key, value) VALUES ($1, $2, $3)")
                .bind(&run_id)
                .bind(key)
                .bind(value)
                .execute(&mut *tx)
                .await
                .db(ctx)?;
        }
        for (position, input) in (0_i64..).zip(&run.inputs) {
            sqlx::query(
                "INSERT INTO run_inputs (run_id, position, table_name, version) \
                 VALUES ($1, $2, $3, $4)",
            )
            .bind(&run_id)
            .bind(position)
            .bind(&input.table)
            .bind(input.version)
            .execute(&mut *tx)
            .await
            .db(ctx)?;
        }
        tx.commit().await.db(ctx)?;
        tracing::info!(run_id = %run_id, segment = %run.segment, experiment = %run.experiment, "created run");
        Ok(run_id)
    }

    /// Logs a parameter. Params are immutable: logging a key again with the same value
    /// succeeds and changes nothing; with another value it is [`RegistryError::Conflict`].
    /// An unknown run is [`RegistryError::NotFound`].
    pub async fn log_param(
        &self,
        run_id: &str,
        key: &str,
        value: &str,
    ) -> Result<(), RegistryError> {
        check_name("param key", key)?;
        let ctx = || format!("logging param {key:?} of run {run_id}");
        let mut tx = sqlite::begin_write(&self.pool).await.db(ctx)?;
        require_run(&mut tx, run_id).await?;
        let existing: Option<String> =
            sqlx::query_scalar("SELECT value FROM params WHERE run_id = $1 AND key = $2")
                .bind(run_id)
                .bind(key)
                .fetch_optional(&mut *tx)
                .await
                .db(ctx)?;
        match existing {
            Some(old) if old == value => return Ok(()),
            Some(old) => {
                return Err(RegistryError::conflict(format!(
                    "param {key:?} of run {run_id} is already {old:?}; params cannot change, \
                     so {value:?} was not logged (log it under another key or start a new run)"
                )))
            }
            None => {}
        }
        sqlx::query("INSERT INTO params (run_id, key, value) VALUES ($1, $2, $3)")
            .bind(run_id)
            .bind(key)
            .bind(value)
            .execute(&mut *tx)
            .await
            .db(ctx)?;
        tx.commit().await.db(ctx)
    }

    /// Logs a batch of metric values at `step`, all stamped with the current time; the batch
    /// is stored entirely or not at all. NaN and ±infinity are stored and read back as such.
    /// An unknown run is [`RegistryError::NotFound`]; an empty key is
    /// [`RegistryError::InvalidInput`].
    pub async fn log_metrics(
        &self,
        run_id: &str,
        metrics: &[(String, f64)],
        step: i64,
    ) -> Result<(), RegistryError> {
        for (key, _) in metrics {
            check_name("metric key", key)?;
        }
        let now = now_ms();
        let ctx = || {
            format!(
                "logging {} metrics of run {run_id} at step {step}",
                metrics.len()
            )
        };
        let mut tx = sqlite::begin_write(&self.pool).await.db(ctx)?;
        require_run(&mut tx, run_id).await?;
        for (key, value) in metrics {
            sqlx::query(
                "INSERT INTO metrics (run_id, key, value, step, timestamp) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(run_id)
            .bind(key)
            .bind(sqlite::encode_metric(*value))
            .bind(step)
            .bind(now)
            .execute(&mut *tx)
            .await
            .db(ctx)?;
        }
        tx.commit().await.db(ctx)
    }

    /// Sets a tag, replacing any previous value (last write wins). An unknown run is
    /// [`RegistryError::NotFound`].
    pub async fn set_tag(&self, run_id: &str, key: &str, value: &str) -> Result<(), RegistryError> {
        check_name("tag key", key)?;
        let ctx = || format!("setting tag {key:?} of run {run_id}");
        let mut tx = sqlite::begin_write(&self.pool).await.db(ctx)?;
        require_run(&mut tx, run_id).await?;
        sqlx::query(
            "INSERT INTO tags (run_id, key, value) VALUES ($1, $2, $3) \
             ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value",
        )
        .bind(run_id)
        .bind(key)
        .bind(value)
        .execute(&mut *tx)
        .await
        .db(ctx)?;
        tx.commit().await.db(ctx)
    }

    /// Ends a running run as `finished` or `failed` (with an optional error message) and
    /// stamps `ended_at`.
    ///
    /// Finishing again with the status it ended with succeeds and changes nothing; with the
    /// other status it is [`RegistryError::Conflict`]. `status: Running` is
    /// [`RegistryError::InvalidInput`]; an unknown run is [`RegistryError::NotFound`].
    pub async fn finish_run(
        &self,
        run_id: &str,
        status: RunStatus,
        error: Option<&str>,
    ) -> Result<(), RegistryError> {
        if status == RunStatus::Running {
            return Err(RegistryError::InvalidInput(format!(
                "cannot finish run {run_id} with status running; use finished or failed"
            )));
        }
        let ctx = || format!("finishing run {run_id} as {status}");
        let mut tx = sqlite::begin_write(&self.pool).await.db(ctx)?;
        match require_run(&mut tx, run_id).await? {
            RunStatus::Running => {}
            current if current == status => return Ok(()),
            current => {
                return Err(RegistryError::conflict(format!(
                    "run {run_id} already ended as {current}; it cannot be marked {status}"
                )))
            }
        }
        sqlx::query("UPDATE runs SET status = $2, ended_at = $3, error = $4 WHERE run_id = $1")
            .bind(run_id)
            .bind(status.as_str())
            .bind(now_ms())
            .bind(error)
            .execute(&mut *tx)
            .await
            .db(ctx)?;
        tx.commit().await.db(ctx)?;
        tracing::info!(run_id, status = %status, "finished run");
        Ok(())
    }

    /// Reads a run with its params, tags, latest metrics and inputs.
    /// An unknown run is [`RegistryError::NotFound`] naming the run id.
    pub async fn get_run(&self, run_id: &str) -> Result<Run, RegistryError> {
        let ctx = || format!("reading run {run_id}");
        let mut tx = sqlite::begin_read(&self.pool).await.db(ctx)?;
        let row: Option<RunRow> = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT {RUN_COLUMNS} FROM runs WHERE run_id = $1"
        )))
        .bind(run_id)
        .fetch_optional(&mut *tx)
        .await
        .db(ctx)?;
        let row = row.ok_or_else(|| RegistryError::not_found(format!("run {run_id}")))?;
        let mut children = load_children(&mut tx, std::slice::from_ref(&row.run_id)).await?;
        tx.commit().await.db(ctx)?;
        let logged = children.remove(&row.run_id).unwrap_or_default();
        into_run(row, logged)
    }

    /// Lists runs matching `filter`, newest first, at most `filter.limit` of them.
    /// A limit of 0 is [`RegistryError::InvalidInput`].
    pub async fn list_runs(&self, filter: &RunFilter) -> Result<Vec<Run>, RegistryError> {
        if filter.limit == 0 {
            return Err(RegistryError::InvalidInput(
                "run filter limit must be at least 1".to_string(),
            ));
        }
        let limit = i64::try_from(filter.limit).unwrap_or(i64::MAX);
        let ctx = || "listing runs".to_string();
        let mut tx = sqlite::begin_read(&self.pool).await.db(ctx)?;
        let rows: Vec<RunRow> = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT {RUN_COLUMNS} FROM runs \
             WHERE ($1 IS NULL OR segment = $1) AND ($2 IS NULL OR status = $2) \
             ORDER BY id DESC LIMIT $3"
        )))
        .bind(filter.segment.as_deref())
        .bind(filter.status.map(RunStatus::as_str))
        .bind(limit)
        .fetch_all(&mut *tx)
        .await
        .db(ctx)?;
        let ids: Vec<String> = rows.iter().map(|r| r.run_id.clone()).collect();
        let mut children = HashMap::new();
        for chunk in ids.chunks(IN_CHUNK) {
            children.extend(load_children(&mut tx, chunk).await?);
        }
        tx.commit().await.db(ctx)?;
        rows.into_iter()
            .map(|row| {
                let logged = children.remove(&row.run_id).unwrap_or_default();
                into_run(row, logged)
            })
            .collect()
    }

    /// Every value logged for one metric of a run, by step, then timestamp, then logging
    /// order. An unknown run is [`RegistryError::NotFound`]; a key never logged gives an
    /// empty list.
    pub async fn metric_history(
        &self,
        run_id: &str,
        key: &str,
    ) -> Result<Vec<Metric>, RegistryError> {
        let ctx = || format!("reading metric {key:?} of run {run_id}");
        let mut tx = sqlite::begin_read(&self.pool).await.db(ctx)?;
        require_run(&mut tx, run_id).await?;
        let rows: Vec<(Option<f64>, i64, i64)> = sqlx::query_as(
            "SELECT value, step, timestamp FROM metrics WHERE run_id = $1 AND key = $2 \
             ORDER BY step, timestamp, id",
        )
        .bind(run_id)
        .bind(key)
        .fetch_all(&mut *tx)
        .await
        .db(ctx)?;
        tx.commit().await.db(ctx)?;
        rows.into_iter()
            .map(|(value, step, timestamp)| {
                Ok(Metric {
                    key: key.to_string(),
                    value: sqlite::decode_metric(value),
                    step,
                    timestamp: to_time(timestamp, || {
                        format!("timestamp of metric {key:?} of run {run_id}")
                    })?,
                })
            })
            .collect()
    }
}

fn check_new_run(run: &NewRun) -> Result<(), RegistryError> {
    check_name("experiment name", &run.experiment)?;
    for key in run.params.keys() {
        check_name("param key", key)?;
    }
    for key in run.tags.keys() {
        check_name("tag key", key)?;
    }
    for input in &run.inputs {
        check_name("input table name", &input.table)?;
        if input.version < 0 {
            return Err(RegistryError::InvalidInput(format!(
                "input table {:?} has version {}; Delta table versions start at 0",
                input.table, input.version
            )));
        }
    }
    Ok(())
}

/// The status of a run, or [`RegistryError::NotFound`] naming it.
pub(crate) async fn require_run(conn: &mut Conn, run_id: &str) -> Result<RunStatus, RegistryError> {
    let status: Option<String> = sqlx::query_scalar("SELECT status FROM runs WHERE run_id = $1")
        .bind(run_id)
        .fetch_optional(conn)
        .await
        .db(|| format!("looking up run {run_id}"))?;
    match status {
        Some(status) => parse_status(&status, run_id),
        None => Err(RegistryError::not_found(format!("run {run_id}"))),
    }
}

fn parse_status(status: &str, run_id: &str) -> Result<RunStatus, RegistryError> {
    status
        .parse()
        .map_err(|_| RegistryError::corrupt(format!("run {run_id} has unknown status {status:?}")))
}

/// Loads params, tags, latest metrics and inputs of the given runs.
async fn load_children(
    conn: &mut Conn,
    run_ids: &[String],
) -> Result<HashMap<String, Children>, RegistryError> {
    let ctx = || {
        format!(
            "reading params, tags, metrics and inputs of {} runs",
            run_ids.len()
        )
    };
    let list = placeholders(run_ids.len());
    let mut out: HashMap<String, Children> = HashMap::new();

    let sql = format!("SELECT run_id, key, value FROM params WHERE run_id IN ({list})");
    for (run_id, key, value) in fetch_for::<(String, String, String)>(conn, sql, run_ids)
        .await
        .db(ctx)?
    {
        out.entry(run_id).or_default().params.insert(key, value);
    }
    let sql = format!("SELECT run_id, key, value FROM tags WHERE run_id IN ({list})");
    for (run_id, key, value) in fetch_for::<(String, String, String)>(conn, sql, run_ids)
        .await
        .db(ctx)?
    {
        out.entry(run_id).or_default().tags.insert(key, value);
    }
    let sql = format!(
        "SELECT run_id, key, value FROM (\
           SELECT run_id, key, value, ROW_NUMBER() OVER (\
             PARTITION BY run_id, key ORDER BY step DESC, timestamp DESC, id DESC) AS rn \
           FROM metrics WHERE run_id IN ({list})) AS latest \
         WHERE rn = 1"
    );
    for (run_id, key, value) in fetch_for::<(String, String, Option<f64>)>(conn, sql, run_ids)
        .await
        .db(ctx)?
    {
        let value = sqlite::decode_metric(value);
        out.entry(run_id).or_default().metrics.insert(key, value);
    }
    let sql = format!(
        "SELECT run_id, table_name, version FROM run_inputs WHERE run_id IN ({list}) \
         ORDER BY run_id, position"
    );
    for (run_id, table, version) in fetch_for::<(String, String, i64)>(conn, sql, run_ids)
        .await
        .db(ctx)?
    {
        out.entry(run_id)
            .or_default()
            .inputs
            .push(TableInput { table, version });
    }
    Ok(out)
}

/// Runs `sql` (whose only parameters are the run ids) and decodes every row as `T`.
async fn fetch_for<T>(
    conn: &mut Conn,
    sql: String,
    run_ids: &[String],
) -> Result<Vec<T>, sqlx::Error>
where
    T: for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow> + Send + Unpin,
{
    // Safe: `sql` is built from constants and generated `$n` placeholders only.
    let mut query = sqlx::query_as::<_, T>(AssertSqlSafe(sql));
    for run_id in run_ids {
        query = query.bind(run_id);
    }
    query.fetch_all(conn).await
}

/// `$1, $2, …, $n`.
fn placeholders(n: usize) -> String {
    (1..=n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn into_run(row: RunRow, logged: Children) -> Result<Run, RegistryError> {
    let id = row.run_id.as_str();
    Ok(Run {
        status: parse_status(&row.status, id)?,
        started_at: to_time(row.started_at, || format!("started_at of run {id}"))?,
        ended_at: to_time_opt(row.ended_at, || format!("ended_at of run {id}"))?,
        run_id: row.run_id,
        experiment: row.experiment,
        segment: row.segment,
        params: logged.params,
        tags: logged.tags,
        metrics: logged.metrics,
        inputs: logged.inputs,
        config_hash: row.config_hash,
        spire_version: row.spire_version,
        error: row.error,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered() {
        assert_eq!(placeholders(3), "$1, $2, $3");
        assert_eq!(placeholders(1), "$1");
    }
}
