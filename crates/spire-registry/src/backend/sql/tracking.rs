//! Shared SQL: [`TrackingStore`] for this backend's `Store` (compiled once per backend; see
//! `backend/mod.rs`). The contract is documented on the trait.

use std::collections::BTreeMap;

use sqlx::AssertSqlSafe;

use super::runs_io::{
    check_batch, check_new_run, ensure_experiment, experiment_tags, into_experiment, into_metric,
    put_inputs, put_metrics, put_params, put_tags, require_run, with_children, ExperimentRow,
    RunRow, EXPERIMENT_SELECT, RUN_SELECT,
};
use super::{Store, DIALECT};
use crate::backend::new_id;
use crate::check::{check_name, now_ms, to_time};
use crate::error::{DbContext, RegistryError};
use crate::search::{search_sql, Bind, ValidSearch};
use crate::{
    DeletedRun, Experiment, Lifecycle, LogBatch, LoggedModel, LoggedModelStatus, Metric,
    NewLoggedModel, NewRun, Run, RunFilter, RunOutput, RunPage, RunSearch, RunStatus,
    TrackingStore, ViewType,
};

/// A deleted run: id, experiment id, deletion time, and a model version made from it.
type DeletedRunRow = (String, String, i64, Option<String>, Option<i64>);

impl TrackingStore for Store {
    async fn create_experiment(
        &self,
        name: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<Experiment, RegistryError> {
        check_name("experiment name", name)?;
        for key in tags.keys() {
            check_name("experiment tag key", key)?;
        }
        let ctx = || format!("creating experiment {name:?}");
        let id = new_id();
        let now = now_ms();
        let mut tx = self.begin_write().await.db(ctx)?;
        let created = sqlx::query(
            "INSERT INTO experiments (name, experiment_id, lifecycle, created_at, updated_at) \
             VALUES ($1, $2, 'active', $3, $3) ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(&id)
        .bind(now)
        .execute(&mut *tx)
        .await
        .db(ctx)?
        .rows_affected();
        if created == 0 {
            tx.rollback().await.db(ctx)?;
            return Err(RegistryError::AlreadyExists {
                what: format!("experiment {name:?}"),
            });
        }
        for (key, value) in tags {
            sqlx::query(
                "INSERT INTO experiment_tags (experiment_id, key, value) VALUES ($1, $2, $3)",
            )
            .bind(&id)
            .bind(key)
            .bind(value)
            .execute(&mut *tx)
            .await
            .db(ctx)?;
        }
        tx.commit().await.db(ctx)?;
        tracing::info!(experiment = name, experiment_id = %id, "created experiment");
        let at = to_time(now, || "current time".to_string())?;
        Ok(Experiment {
            experiment_id: id,
            name: name.to_string(),
            lifecycle: Lifecycle::Active,
            tags: tags.clone(),
            created_at: at,
            updated_at: at,
        })
    }

    async fn get_experiment(&self, experiment_id: &str) -> Result<Experiment, RegistryError> {
        self.read_experiment("experiment_id", experiment_id, || {
            format!("experiment with id {experiment_id}")
        })
        .await
    }

    async fn get_experiment_by_name(&self, name: &str) -> Result<Experiment, RegistryError> {
        self.read_experiment("name", name, || format!("experiment {name:?}"))
            .await
    }

    async fn list_experiments(&self, view: ViewType) -> Result<Vec<Experiment>, RegistryError> {
        let ctx = || "listing experiments".to_string();
        let mut tx = self.begin_read().await.db(ctx)?;
        let rows: Vec<ExperimentRow> =
            sqlx::query_as(AssertSqlSafe(format!("{EXPERIMENT_SELECT} ORDER BY name")))
                .fetch_all(&mut *tx)
                .await
                .db(ctx)?;
        let mut tags = experiment_tags(&mut tx, None).await?;
        tx.commit().await.db(ctx)?;
        let mut out = Vec::new();
        for row in rows {
            let tags = tags.remove(row.experiment_id()).unwrap_or_default();
            let experiment = into_experiment(row, tags)?;
            if view.includes(experiment.lifecycle) {
                out.push(experiment);
            }
        }
        Ok(out)
    }

    async fn set_experiment_tag(
        &self,
        experiment_id: &str,
        key: &str,
        value: &str,
    ) -> Result<(), RegistryError> {
        check_name("experiment tag key", key)?;
        let ctx = || format!("setting tag {key:?} of experiment {experiment_id}");
        let mut tx = self.begin_write().await.db(ctx)?;
        let touched =
            sqlx::query("UPDATE experiments SET updated_at = $2 WHERE experiment_id = $1")
                .bind(experiment_id)
                .bind(now_ms())
                .execute(&mut *tx)
                .await
                .db(ctx)?
                .rows_affected();
        if touched == 0 {
            tx.rollback().await.db(ctx)?;
            return Err(RegistryError::not_found(format!(
                "experiment with id {experiment_id}"
            )));
        }
        sqlx::query(
            "INSERT INTO experiment_tags (experiment_id, key, value) VALUES ($1, $2, $3) \
             ON CONFLICT (experiment_id, key) DO UPDATE SET value = excluded.value",
        )
        .bind(experiment_id)
        .bind(key)
        .bind(value)
        .execute(&mut *tx)
        .await
        .db(ctx)?;
        tx.commit().await.db(ctx)
    }

    async fn delete_experiment(&self, experiment_id: &str) -> Result<(), RegistryError> {
        self.set_lifecycle(experiment_id, Lifecycle::Deleted).await
    }

    async fn restore_experiment(&self, experiment_id: &str) -> Result<(), RegistryError> {
        self.set_lifecycle(experiment_id, Lifecycle::Active).await
    }

    async fn create_run(&self, run: NewRun) -> Result<String, RegistryError> {
        check_new_run(&run)?;
        let run_id = new_id();
        let now = now_ms();
        let ctx = || {
            format!(
                "creating a run for segment {:?} in experiment {:?}",
                run.segment, run.experiment
            )
        };
        let mut tx = self.begin_write().await.db(ctx)?;
        ensure_experiment(&mut tx, &run.experiment, now).await?;
        sqlx::query(
            "INSERT INTO runs (run_id, experiment, segment, status, config_hash, spire_version, \
             git_commit, started_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&run_id)
        .bind(&run.experiment)
        .bind(&run.segment)
        .bind(RunStatus::Running.as_str())
        .bind(&run.config_hash)
        .bind(&run.spire_version)
        .bind(run.git_commit.as_deref())
        .bind(now)
        .execute(&mut *tx)
        .await
        .db(ctx)?;
        put_params(&mut tx, &run_id, &run.params).await?;
        put_tags(&mut tx, &run_id, &run.tags).await?;
        put_inputs(&mut tx, &run_id, &run.inputs).await?;
        tx.commit().await.db(ctx)?;
        tracing::info!(run_id = %run_id, segment = %run.segment, experiment = %run.experiment, "created run");
        Ok(run_id)
    }

    async fn log_param(&self, run_id: &str, key: &str, value: &str) -> Result<(), RegistryError> {
        check_name("param key", key)?;
        let params = BTreeMap::from([(key.to_string(), value.to_string())]);
        self.write_batch(run_id, &[], &params, &BTreeMap::new())
            .await
    }

    async fn log_metric(&self, run_id: &str, metric: &Metric) -> Result<(), RegistryError> {
        check_name("metric key", &metric.key)?;
        self.write_batch(
            run_id,
            std::slice::from_ref(metric),
            &BTreeMap::new(),
            &BTreeMap::new(),
        )
        .await
    }

    async fn log_metrics(
        &self,
        run_id: &str,
        metrics: &[(String, f64)],
        step: i64,
    ) -> Result<(), RegistryError> {
        let timestamp = chrono::Utc::now();
        let batch = LogBatch {
            metrics: metrics
                .iter()
                .map(|(key, value)| Metric {
                    key: key.clone(),
                    value: *value,
                    step,
                    timestamp,
                })
                .collect(),
            ..LogBatch::default()
        };
        check_batch(run_id, &batch)?;
        self.write_batch(run_id, &batch.metrics, &batch.params, &batch.tags)
            .await
    }

    async fn log_batch(&self, run_id: &str, batch: &LogBatch) -> Result<(), RegistryError> {
        check_batch(run_id, batch)?;
        self.write_batch(run_id, &batch.metrics, &batch.params, &batch.tags)
            .await
    }

    async fn set_tag(&self, run_id: &str, key: &str, value: &str) -> Result<(), RegistryError> {
        check_name("tag key", key)?;
        let tags = BTreeMap::from([(key.to_string(), value.to_string())]);
        self.write_batch(run_id, &[], &BTreeMap::new(), &tags).await
    }

    async fn delete_tag(&self, run_id: &str, key: &str) -> Result<(), RegistryError> {
        let ctx = || format!("deleting tag {key:?} of run {run_id}");
        let mut tx = self.begin_write().await.db(ctx)?;
        require_run(&mut tx, run_id).await?;
        let deleted = sqlx::query("DELETE FROM tags WHERE run_id = $1 AND key = $2")
            .bind(run_id)
            .bind(key)
            .execute(&mut *tx)
            .await
            .db(ctx)?
            .rows_affected();
        if deleted == 0 {
            tx.rollback().await.db(ctx)?;
            return Err(RegistryError::not_found(format!(
                "tag {key:?} of run {run_id}"
            )));
        }
        tx.commit().await.db(ctx)
    }

    async fn finish_run(
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
        let mut tx = self.begin_write().await.db(ctx)?;
        // Only a running run changes; the row lock this takes settles races between two
        // finishers (the second sees the first's status below).
        let changed = sqlx::query(
            "UPDATE runs SET status = $2, ended_at = $3, error = $4 \
             WHERE run_id = $1 AND status = 'running'",
        )
        .bind(run_id)
        .bind(status.as_str())
        .bind(now_ms())
        .bind(error)
        .execute(&mut *tx)
        .await
        .db(ctx)?
        .rows_affected();
        if changed == 1 {
            tx.commit().await.db(ctx)?;
            tracing::info!(run_id, status = %status, "finished run");
            return Ok(());
        }
        let current = require_run(&mut tx, run_id).await?;
        tx.rollback().await.db(ctx)?;
        if current == status {
            Ok(())
        } else {
            Err(RegistryError::conflict(format!(
                "run {run_id} already ended as {current}; it cannot be marked {status}"
            )))
        }
    }

    async fn get_run(&self, run_id: &str) -> Result<Run, RegistryError> {
        let ctx = || format!("reading run {run_id}");
        let mut tx = self.begin_read().await.db(ctx)?;
        let row: Option<RunRow> =
            sqlx::query_as(AssertSqlSafe(format!("{RUN_SELECT} WHERE r.run_id = $1")))
                .bind(run_id)
                .fetch_optional(&mut *tx)
                .await
                .db(ctx)?;
        let row = row.ok_or_else(|| RegistryError::not_found(format!("run {run_id}")))?;
        let mut runs = with_children(&mut tx, vec![row]).await?;
        tx.commit().await.db(ctx)?;
        runs.pop()
            .ok_or_else(|| RegistryError::not_found(format!("run {run_id}")))
    }

    async fn list_runs(&self, filter: &RunFilter) -> Result<Vec<Run>, RegistryError> {
        if filter.limit == 0 {
            return Err(RegistryError::InvalidInput(
                "run filter limit must be at least 1".to_string(),
            ));
        }
        let limit = i64::try_from(filter.limit).unwrap_or(i64::MAX);
        let ctx = || "listing runs".to_string();
        let mut tx = self.begin_read().await.db(ctx)?;
        let rows: Vec<RunRow> = sqlx::query_as(AssertSqlSafe(format!(
            "{RUN_SELECT} \
             WHERE ($1 IS NULL OR r.experiment = $1) AND ($2 IS NULL OR r.segment = $2) \
               AND ($3 IS NULL OR r.status = $3) \
             ORDER BY r.id DESC LIMIT $4"
        )))
        .bind(filter.experiment.as_deref())
        .bind(filter.segment.as_deref())
        .bind(filter.status.map(RunStatus::as_str))
        .bind(limit)
        .fetch_all(&mut *tx)
        .await
        .db(ctx)?;
        let runs = with_children(&mut tx, rows).await?;
        tx.commit().await.db(ctx)?;
        Ok(runs)
    }

    async fn search_runs(&self, search: &RunSearch) -> Result<RunPage, RegistryError> {
        let valid = ValidSearch::new(search)?;
        let built = search_sql(DIALECT, RUN_SELECT, &valid);
        let ctx = || format!("searching runs with filter {:?}", search.filter);
        let mut query = sqlx::query_as::<_, RunRow>(AssertSqlSafe(built.sql));
        for bind in built.binds {
            query = match bind {
                Bind::Text(s) => query.bind(s),
                Bind::Int(i) => query.bind(i),
                Bind::Float(f) => query.bind(f),
            };
        }
        let mut tx = self.begin_read().await.db(ctx)?;
        let mut rows: Vec<RunRow> = query.fetch_all(&mut *tx).await.db(ctx)?;
        let more = rows.len() > valid.page_size;
        rows.truncate(valid.page_size);
        let runs = with_children(&mut tx, rows).await?;
        tx.commit().await.db(ctx)?;
        Ok(RunPage {
            runs,
            next_page_token: more.then(|| valid.next_token()),
        })
    }

    async fn metric_history(&self, run_id: &str, key: &str) -> Result<Vec<Metric>, RegistryError> {
        let ctx = || format!("reading metric {key:?} of run {run_id}");
        let mut tx = self.begin_read().await.db(ctx)?;
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
            .map(|row| into_metric(run_id, key, row))
            .collect()
    }

    async fn runs_reading(
        &self,
        table: &str,
        version: Option<i64>,
    ) -> Result<Vec<String>, RegistryError> {
        check_name("table name", table)?;
        if let Some(v) = version.filter(|v| *v < 0) {
            return Err(RegistryError::InvalidInput(format!(
                "table {table:?} version {v} is negative; Delta table versions start at 0"
            )));
        }
        let ctx = || format!("finding the runs that read table {table:?}");
        let mut tx = self.begin_read().await.db(ctx)?;
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT r.run_id FROM runs r WHERE EXISTS (\
               SELECT i.run_id FROM run_inputs i WHERE i.run_id = r.run_id \
               AND i.table_name = $1 AND ($2 IS NULL OR i.version = $2)) \
             ORDER BY r.id DESC",
        )
        .bind(table)
        .bind(version)
        .fetch_all(&mut *tx)
        .await
        .db(ctx)?;
        tx.commit().await.db(ctx)?;
        Ok(ids)
    }

    async fn delete_run(&self, run_id: &str) -> Result<(), RegistryError> {
        self.set_run_lifecycle(run_id, Lifecycle::Deleted).await
    }

    async fn restore_run(&self, run_id: &str) -> Result<(), RegistryError> {
        self.set_run_lifecycle(run_id, Lifecycle::Active).await
    }

    async fn deleted_runs(
        &self,
        before: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<DeletedRun>, RegistryError> {
        let rows: Vec<DeletedRunRow> = sqlx::query_as(
            "SELECT r.run_id, e.experiment_id, r.deleted_at, \
                 (SELECT v.model FROM model_versions v WHERE v.run_id = r.run_id \
                  ORDER BY v.model, v.version LIMIT 1), \
                 (SELECT v.version FROM model_versions v WHERE v.run_id = r.run_id \
                  ORDER BY v.model, v.version LIMIT 1) \
             FROM runs r JOIN experiments e ON e.name = r.experiment \
             WHERE r.lifecycle = 'deleted' AND r.deleted_at < $1 \
             ORDER BY r.deleted_at, r.run_id",
        )
        .bind(before.timestamp_millis())
        .fetch_all(&self.pool)
        .await
        .db(|| "listing deleted runs".into())?;
        rows.into_iter()
            .map(|(run_id, experiment_id, deleted_at, model, version)| {
                Ok(DeletedRun {
                    deleted_at: to_time(deleted_at, || format!("run {run_id} deleted_at"))?,
                    run_id,
                    experiment_id,
                    model_version: model.zip(version),
                })
            })
            .collect()
    }

    async fn purge_run(&self, run_id: &str) -> Result<(), RegistryError> {
        let ctx = || format!("purging run {run_id}");
        let mut tx = self.begin_write().await.db(ctx)?;
        let found: Option<(String,)> =
            sqlx::query_as("SELECT lifecycle FROM runs WHERE run_id = $1")
                .bind(run_id)
                .fetch_optional(&mut *tx)
                .await
                .db(ctx)?;
        let refusal = match found {
            None => Some(RegistryError::not_found(format!("run {run_id}"))),
            Some((lifecycle,)) if lifecycle != Lifecycle::Deleted.as_str() => {
                Some(RegistryError::conflict(format!(
                    "run {run_id} is {lifecycle}: only deleted runs can be purged (delete it first)"
                )))
            }
            Some(_) => {
                let source: Option<(String, i64)> = sqlx::query_as(
                    "SELECT model, version FROM model_versions WHERE run_id = $1 \
                     ORDER BY model, version LIMIT 1",
                )
                .bind(run_id)
                .fetch_optional(&mut *tx)
                .await
                .db(ctx)?;
                source.map(|(model, version)| {
                    RegistryError::conflict(format!(
                        "run {run_id} is the source of model {model:?} version {version}: its \
                         artifacts are that version's, so it is kept"
                    ))
                })
            }
        };
        if let Some(refusal) = refusal {
            tx.rollback().await.db(ctx)?;
            return Err(refusal);
        }
        sqlx::query("UPDATE logged_models SET source_run_id = NULL WHERE source_run_id = $1")
            .bind(run_id)
            .execute(&mut *tx)
            .await
            .db(ctx)?;
        sqlx::query("DELETE FROM runs WHERE run_id = $1")
            .bind(run_id)
            .execute(&mut *tx)
            .await
            .db(ctx)?;
        tx.commit().await.db(ctx)?;
        tracing::info!(run_id, "purged run");
        Ok(())
    }

    async fn create_logged_model(
        &self,
        model: NewLoggedModel,
    ) -> Result<LoggedModel, RegistryError> {
        self.insert_logged_model(model).await
    }

    async fn get_logged_model(&self, model_id: &str) -> Result<LoggedModel, RegistryError> {
        self.read_logged_model(model_id).await
    }

    async fn finalize_logged_model(
        &self,
        model_id: &str,
        status: LoggedModelStatus,
    ) -> Result<LoggedModel, RegistryError> {
        self.set_logged_model_status(model_id, status).await
    }

    async fn set_logged_model_tags(
        &self,
        model_id: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<(), RegistryError> {
        self.put_logged_model_tags(model_id, tags).await
    }

    async fn delete_logged_model_tag(
        &self,
        model_id: &str,
        key: &str,
    ) -> Result<(), RegistryError> {
        self.remove_logged_model_tag(model_id, key).await
    }

    async fn log_logged_model_params(
        &self,
        model_id: &str,
        params: &BTreeMap<String, String>,
    ) -> Result<(), RegistryError> {
        self.put_logged_model_params(model_id, params).await
    }

    async fn list_logged_models(
        &self,
        experiment_ids: &[String],
    ) -> Result<Vec<LoggedModel>, RegistryError> {
        self.read_logged_models(experiment_ids).await
    }

    async fn log_run_outputs(
        &self,
        run_id: &str,
        outputs: &[RunOutput],
    ) -> Result<(), RegistryError> {
        self.put_run_outputs(run_id, outputs).await
    }
}

impl Store {
    /// One experiment by `column` (`name` or `experiment_id`), with its tags.
    async fn read_experiment(
        &self,
        column: &'static str,
        value: &str,
        what: impl Fn() -> String,
    ) -> Result<Experiment, RegistryError> {
        let ctx = || format!("reading {}", what());
        let mut tx = self.begin_read().await.db(ctx)?;
        let row: Option<ExperimentRow> = sqlx::query_as(AssertSqlSafe(format!(
            "{EXPERIMENT_SELECT} WHERE {column} = $1"
        )))
        .bind(value)
        .fetch_optional(&mut *tx)
        .await
        .db(ctx)?;
        let Some(row) = row else {
            return Err(RegistryError::not_found(what()));
        };
        let mut tags = experiment_tags(&mut tx, Some(row.experiment_id())).await?;
        tx.commit().await.db(ctx)?;
        let tags = tags.remove(row.experiment_id()).unwrap_or_default();
        into_experiment(row, tags)
    }

    /// Moves an experiment to `lifecycle` (idempotent).
    async fn set_lifecycle(
        &self,
        experiment_id: &str,
        lifecycle: Lifecycle,
    ) -> Result<(), RegistryError> {
        let ctx = || format!("marking experiment {experiment_id} {lifecycle}");
        let mut tx = self.begin_write().await.db(ctx)?;
        let changed = sqlx::query(
            "UPDATE experiments SET lifecycle = $2, updated_at = $3 \
             WHERE experiment_id = $1 AND lifecycle <> $2",
        )
        .bind(experiment_id)
        .bind(lifecycle.as_str())
        .bind(now_ms())
        .execute(&mut *tx)
        .await
        .db(ctx)?
        .rows_affected();
        if changed == 1 {
            tx.commit().await.db(ctx)?;
            tracing::info!(experiment_id, lifecycle = %lifecycle, "changed experiment lifecycle");
            return Ok(());
        }
        let exists: Option<String> =
            sqlx::query_scalar("SELECT name FROM experiments WHERE experiment_id = $1")
                .bind(experiment_id)
                .fetch_optional(&mut *tx)
                .await
                .db(ctx)?;
        tx.rollback().await.db(ctx)?;
        match exists {
            Some(_) => Ok(()),
            None => Err(RegistryError::not_found(format!(
                "experiment with id {experiment_id}"
            ))),
        }
    }

    /// Moves a run to `lifecycle` (idempotent), stamping `deleted_at` on deletion.
    async fn set_run_lifecycle(
        &self,
        run_id: &str,
        lifecycle: Lifecycle,
    ) -> Result<(), RegistryError> {
        let ctx = || format!("marking run {run_id} {lifecycle}");
        let mut tx = self.begin_write().await.db(ctx)?;
        let deleted_at = (lifecycle == Lifecycle::Deleted).then(now_ms);
        let changed = sqlx::query(
            "UPDATE runs SET lifecycle = $2, deleted_at = $3 WHERE run_id = $1 AND lifecycle <> $2",
        )
        .bind(run_id)
        .bind(lifecycle.as_str())
        .bind(deleted_at)
        .execute(&mut *tx)
        .await
        .db(ctx)?
        .rows_affected();
        if changed == 0 {
            require_run(&mut tx, run_id).await?;
            tx.rollback().await.db(ctx)?;
            return Ok(());
        }
        tx.commit().await.db(ctx)?;
        tracing::info!(run_id, lifecycle = %lifecycle, "changed run lifecycle");
        Ok(())
    }

    /// Stores metric points, params and tags of a run in one transaction: all or nothing.
    async fn write_batch(
        &self,
        run_id: &str,
        metrics: &[Metric],
        params: &BTreeMap<String, String>,
        tags: &BTreeMap<String, String>,
    ) -> Result<(), RegistryError> {
        let ctx = || format!("logging to run {run_id}");
        let mut tx = self.begin_write().await.db(ctx)?;
        let written = async {
            require_run(&mut tx, run_id).await?;
            put_params(&mut tx, run_id, params).await?;
            put_metrics(&mut tx, run_id, metrics).await?;
            put_tags(&mut tx, run_id, tags).await
        }
        .await;
        match written {
            Ok(()) => tx.commit().await.db(ctx),
            Err(e) => {
                // Release the write lock now rather than when the pool recycles the
                // connection.
                let _ = tx.rollback().await;
                Err(e)
            }
        }
    }
}
