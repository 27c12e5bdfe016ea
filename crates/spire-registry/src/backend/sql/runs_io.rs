//! Shared SQL for tracking (compiled once per backend; see `backend/mod.rs`): row types,
//! lookups, and the inserts that several [`TrackingStore`](crate::TrackingStore) methods
//! share.

use std::collections::{BTreeMap, HashMap};

use sqlx::AssertSqlSafe;

use super::{Conn, Db};
use crate::backend::{decode_metric, encode_metric, new_id, placeholders, value_rows};
use crate::check::{check_name, to_time, to_time_opt};
use crate::error::{DbContext, RegistryError};
use crate::{
    Experiment, Lifecycle, LogBatch, Metric, NewRun, Run, RunOutput, RunStatus, TableInput,
};

/// Rows per multi-row `INSERT` (at most 5 binds each: well under both databases' limits).
const INSERT_CHUNK: usize = 200;
/// Run ids bound per `IN (…)` query when loading many runs' children.
pub(super) const IN_CHUNK: usize = 500;

/// The columns of [`RunRow`], from `runs r JOIN experiments e`.
pub(super) const RUN_SELECT: &str = "SELECT r.run_id, r.experiment, e.experiment_id, r.segment, \
     r.status, r.config_hash, r.spire_version, r.git_commit, r.started_at, r.ended_at, r.error, \
     r.lifecycle FROM runs r JOIN experiments e ON e.name = r.experiment";

/// A `runs` row as stored, with its experiment's id.
#[derive(sqlx::FromRow)]
pub(super) struct RunRow {
    run_id: String,
    experiment: String,
    experiment_id: String,
    segment: String,
    status: String,
    config_hash: String,
    spire_version: String,
    git_commit: Option<String>,
    started_at: i64,
    ended_at: Option<i64>,
    error: Option<String>,
    lifecycle: String,
}

/// What a run logged, loaded from the child tables.
#[derive(Default)]
pub(super) struct Children {
    params: BTreeMap<String, String>,
    tags: BTreeMap<String, String>,
    latest: BTreeMap<String, Metric>,
    inputs: Vec<TableInput>,
    outputs: Vec<RunOutput>,
}

/// The columns of [`ExperimentRow`].
pub(super) const EXPERIMENT_SELECT: &str =
    "SELECT experiment_id, name, lifecycle, created_at, updated_at FROM experiments";

/// An `experiments` row as stored.
#[derive(sqlx::FromRow)]
pub(super) struct ExperimentRow {
    experiment_id: String,
    name: String,
    lifecycle: String,
    created_at: i64,
    updated_at: i64,
}

impl ExperimentRow {
    /// The experiment's id.
    pub(super) fn experiment_id(&self) -> &str {
        &self.experiment_id
    }
}

/// Converts a stored experiment and its tags.
pub(super) fn into_experiment(
    row: ExperimentRow,
    tags: BTreeMap<String, String>,
) -> Result<Experiment, RegistryError> {
    let name = row.name;
    let lifecycle: Lifecycle = row.lifecycle.parse().map_err(|_| {
        RegistryError::corrupt(format!(
            "experiment {name:?} has unknown lifecycle {:?}",
            row.lifecycle
        ))
    })?;
    Ok(Experiment {
        experiment_id: row.experiment_id,
        lifecycle,
        tags,
        created_at: to_time(row.created_at, || {
            format!("created_at of experiment {name:?}")
        })?,
        updated_at: to_time(row.updated_at, || {
            format!("updated_at of experiment {name:?}")
        })?,
        name,
    })
}

/// Tags of the given experiments (all experiments when `ids` is `None`).
pub(super) async fn experiment_tags(
    conn: &mut Conn,
    id: Option<&str>,
) -> Result<HashMap<String, BTreeMap<String, String>>, RegistryError> {
    let rows: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT experiment_id, key, value FROM experiment_tags \
         WHERE ($1 IS NULL OR experiment_id = $1)",
    )
    .bind(id)
    .fetch_all(conn)
    .await
    .db(|| "reading experiment tags".to_string())?;
    let mut out: HashMap<String, BTreeMap<String, String>> = HashMap::new();
    for (id, key, value) in rows {
        out.entry(id).or_default().insert(key, value);
    }
    Ok(out)
}

/// Creates experiment `name` if it does not exist; [`RegistryError::Conflict`] if it is
/// deleted (no run may start in it).
pub(super) async fn ensure_experiment(
    conn: &mut Conn,
    name: &str,
    now: i64,
) -> Result<(), RegistryError> {
    let ctx = || format!("creating experiment {name:?}");
    sqlx::query(
        "INSERT INTO experiments (name, experiment_id, lifecycle, created_at, updated_at) \
         VALUES ($1, $2, 'active', $3, $3) ON CONFLICT (name) DO NOTHING",
    )
    .bind(name)
    .bind(new_id())
    .bind(now)
    .execute(&mut *conn)
    .await
    .db(ctx)?;
    let (id, lifecycle): (String, String) =
        sqlx::query_as("SELECT experiment_id, lifecycle FROM experiments WHERE name = $1")
            .bind(name)
            .fetch_one(conn)
            .await
            .db(ctx)?;
    if lifecycle == Lifecycle::Deleted.as_str() {
        return Err(RegistryError::conflict(format!(
            "experiment {name:?} (id {id}) is deleted, so no run can start in it; restore it \
             or use another experiment"
        )));
    }
    Ok(())
}

/// The status of a run, or [`RegistryError::NotFound`] naming it.
pub(super) async fn require_run(conn: &mut Conn, run_id: &str) -> Result<RunStatus, RegistryError> {
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

/// Checks what a new run carries before anything is written.
pub(super) fn check_new_run(run: &NewRun) -> Result<(), RegistryError> {
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

/// Checks a batch's size and keys before anything is written.
pub(super) fn check_batch(run_id: &str, batch: &LogBatch) -> Result<(), RegistryError> {
    if batch.len() > crate::MAX_BATCH {
        return Err(RegistryError::InvalidInput(format!(
            "a batch for run {run_id} holds {} entries; at most {} are accepted per call \
             (split it)",
            batch.len(),
            crate::MAX_BATCH
        )));
    }
    for m in &batch.metrics {
        check_name("metric key", &m.key)?;
    }
    for key in batch.params.keys() {
        check_name("param key", key)?;
    }
    for key in batch.tags.keys() {
        check_name("tag key", key)?;
    }
    Ok(())
}

/// Inserts params that are new; for keys the run already has, checks the stored value is
/// the same and otherwise fails with [`RegistryError::Conflict`] naming the run, the key
/// and both values. Race-free: `ON CONFLICT DO NOTHING` waits for a concurrent insert of the
/// same key and the comparison then reads the winner's value.
pub(super) async fn put_params(
    conn: &mut Conn,
    run_id: &str,
    params: &BTreeMap<String, String>,
) -> Result<(), RegistryError> {
    let ctx = || format!("logging {} params of run {run_id}", params.len());
    let entries: Vec<(&String, &String)> = params.iter().collect();
    let mut inserted = 0;
    for chunk in entries.chunks(INSERT_CHUNK) {
        let sql = format!(
            "INSERT INTO params (run_id, key, value) VALUES {} \
             ON CONFLICT (run_id, key) DO NOTHING",
            value_rows(chunk.len(), 3)
        );
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for (key, value) in chunk {
            query = query.bind(run_id).bind(*key).bind(*value);
        }
        inserted += query.execute(&mut *conn).await.db(ctx)?.rows_affected();
    }
    if usize::try_from(inserted).is_ok_and(|n| n == params.len()) {
        return Ok(());
    }
    for chunk in entries.chunks(IN_CHUNK) {
        let sql = format!(
            "SELECT key, value FROM params WHERE run_id = $1 AND key IN ({}) ORDER BY key",
            placeholders(2, chunk.len())
        );
        let mut query = sqlx::query_as::<_, (String, String)>(AssertSqlSafe(sql)).bind(run_id);
        for (key, _) in chunk {
            query = query.bind(*key);
        }
        for (key, old) in query.fetch_all(&mut *conn).await.db(ctx)? {
            match params.get(&key) {
                Some(new) if *new != old => {
                    return Err(RegistryError::conflict(format!(
                        "param {key:?} of run {run_id} is already {old:?}; params cannot \
                         change, so {new:?} was not logged (log it under another key or \
                         start a new run)"
                    )))
                }
                _ => {}
            }
        }
    }
    Ok(())
}

/// Sets tags, replacing previous values.
pub(super) async fn put_tags(
    conn: &mut Conn,
    run_id: &str,
    tags: &BTreeMap<String, String>,
) -> Result<(), RegistryError> {
    let entries: Vec<(&String, &String)> = tags.iter().collect();
    for chunk in entries.chunks(INSERT_CHUNK) {
        let sql = format!(
            "INSERT INTO tags (run_id, key, value) VALUES {} \
             ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value",
            value_rows(chunk.len(), 3)
        );
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for (key, value) in chunk {
            query = query.bind(run_id).bind(*key).bind(*value);
        }
        query
            .execute(&mut *conn)
            .await
            .db(|| format!("setting {} tags of run {run_id}", tags.len()))?;
    }
    Ok(())
}

/// Appends metric points in logging order.
pub(super) async fn put_metrics(
    conn: &mut Conn,
    run_id: &str,
    metrics: &[Metric],
) -> Result<(), RegistryError> {
    for chunk in metrics.chunks(INSERT_CHUNK) {
        let sql = format!(
            "INSERT INTO metrics (run_id, key, value, step, timestamp) VALUES {}",
            value_rows(chunk.len(), 5)
        );
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for m in chunk {
            query = query
                .bind(run_id)
                .bind(&m.key)
                .bind(encode_metric(m.value))
                .bind(m.step)
                .bind(m.timestamp.timestamp_millis());
        }
        query
            .execute(&mut *conn)
            .await
            .db(|| format!("logging {} metric points of run {run_id}", metrics.len()))?;
    }
    Ok(())
}

/// Records the Delta table versions a new run reads, in order.
pub(super) async fn put_inputs(
    conn: &mut Conn,
    run_id: &str,
    inputs: &[TableInput],
) -> Result<(), RegistryError> {
    let numbered: Vec<(i64, &TableInput)> = (0_i64..).zip(inputs).collect();
    for chunk in numbered.chunks(INSERT_CHUNK) {
        let sql = format!(
            "INSERT INTO run_inputs (run_id, position, table_name, version) VALUES {}",
            value_rows(chunk.len(), 4)
        );
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for (position, input) in chunk {
            query = query
                .bind(run_id)
                .bind(*position)
                .bind(&input.table)
                .bind(input.version);
        }
        query
            .execute(&mut *conn)
            .await
            .db(|| format!("recording the inputs of run {run_id}"))?;
    }
    Ok(())
}

/// Loads params, tags, latest metrics and inputs of the given runs.
pub(super) async fn load_children(
    conn: &mut Conn,
    run_ids: &[String],
) -> Result<HashMap<String, Children>, RegistryError> {
    let ctx = || {
        format!(
            "reading params, tags, metrics and inputs of {} runs",
            run_ids.len()
        )
    };
    let list = placeholders(1, run_ids.len());
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
        "SELECT run_id, key, value, step, timestamp FROM (\
           SELECT run_id, key, value, step, timestamp, ROW_NUMBER() OVER (\
             PARTITION BY run_id, key ORDER BY step DESC, timestamp DESC, id DESC) AS rn \
           FROM metrics WHERE run_id IN ({list})) AS latest \
         WHERE rn = 1"
    );
    type Latest = (String, String, Option<f64>, i64, i64);
    for (run_id, key, value, step, timestamp) in
        fetch_for::<Latest>(conn, sql, run_ids).await.db(ctx)?
    {
        let metric = into_metric(&run_id, &key, (value, step, timestamp))?;
        out.entry(run_id).or_default().latest.insert(key, metric);
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
    let sql = format!(
        "SELECT o.run_id, o.model_id, o.step FROM run_outputs o \
         JOIN logged_models m ON m.model_id = o.model_id \
         WHERE o.run_id IN ({list}) ORDER BY o.run_id, m.id, o.step"
    );
    for (run_id, model_id, step) in fetch_for::<(String, String, i64)>(conn, sql, run_ids)
        .await
        .db(ctx)?
    {
        out.entry(run_id)
            .or_default()
            .outputs
            .push(RunOutput { model_id, step });
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
    T: for<'r> sqlx::FromRow<'r, <Db as sqlx::Database>::Row> + Send + Unpin,
{
    // Safe: `sql` is built from constants and generated `$n` placeholders only.
    let mut query = sqlx::query_as::<_, T>(AssertSqlSafe(sql));
    for run_id in run_ids {
        query = query.bind(run_id);
    }
    query.fetch_all(conn).await
}

/// Reads runs (already selected, in order) with everything they logged.
pub(super) async fn with_children(
    conn: &mut Conn,
    rows: Vec<RunRow>,
) -> Result<Vec<Run>, RegistryError> {
    let ids: Vec<String> = rows.iter().map(|r| r.run_id.clone()).collect();
    let mut children = HashMap::new();
    for chunk in ids.chunks(IN_CHUNK) {
        children.extend(load_children(conn, chunk).await?);
    }
    rows.into_iter()
        .map(|row| {
            let logged = children.remove(&row.run_id).unwrap_or_default();
            into_run(row, logged)
        })
        .collect()
}

fn into_run(row: RunRow, logged: Children) -> Result<Run, RegistryError> {
    let id = row.run_id.as_str();
    let lifecycle: Lifecycle = row.lifecycle.parse().map_err(|_| {
        RegistryError::corrupt(format!(
            "run {id} has unknown lifecycle {:?}",
            row.lifecycle
        ))
    })?;
    Ok(Run {
        lifecycle,
        outputs: logged.outputs,
        status: parse_status(&row.status, id)?,
        started_at: to_time(row.started_at, || format!("started_at of run {id}"))?,
        ended_at: to_time_opt(row.ended_at, || format!("ended_at of run {id}"))?,
        run_id: row.run_id,
        experiment: row.experiment,
        experiment_id: row.experiment_id,
        segment: row.segment,
        params: logged.params,
        tags: logged.tags,
        metrics: logged
            .latest
            .iter()
            .map(|(key, m)| (key.clone(), m.value))
            .collect(),
        latest_metrics: logged.latest,
        inputs: logged.inputs,
        config_hash: row.config_hash,
        spire_version: row.spire_version,
        git_commit: row.git_commit,
        error: row.error,
    })
}

/// Decodes one stored metric point of `run_id`.
pub(super) fn into_metric(
    run_id: &str,
    key: &str,
    (value, step, timestamp): (Option<f64>, i64, i64),
) -> Result<Metric, RegistryError> {
    Ok(Metric {
        key: key.to_string(),
        value: decode_metric(value),
        step,
        timestamp: to_time(timestamp, || {
            format!("timestamp of metric {key:?} of run {run_id}")
        })?,
    })
}
