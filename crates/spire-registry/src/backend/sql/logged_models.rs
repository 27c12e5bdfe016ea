//! Shared SQL for MLflow 3 logged models and run outputs (compiled once per backend; see
//! `backend/mod.rs`). The contract is documented on
//! [`TrackingStore`](crate::TrackingStore).

use std::collections::{BTreeMap, HashMap};

use sqlx::AssertSqlSafe;

use super::runs_io::require_run;
use super::{Conn, Store};
use crate::backend::{new_id, placeholders};
use crate::check::{check_name, now_ms, to_time};
use crate::error::{DbContext, RegistryError};
use crate::{Lifecycle, LoggedModel, LoggedModelStatus, NewLoggedModel, RunOutput};

/// The columns of [`ModelRow`].
const MODEL_SELECT: &str = "SELECT model_id, experiment_id, name, source_run_id, model_type, \
                            status, created_at, updated_at FROM logged_models";

/// A `logged_models` row as stored.
#[derive(sqlx::FromRow)]
struct ModelRow {
    model_id: String,
    experiment_id: String,
    name: String,
    source_run_id: Option<String>,
    model_type: String,
    status: String,
    created_at: i64,
    updated_at: i64,
}

/// Params and tags of some logged models, by model id.
type KeyValues = HashMap<String, BTreeMap<String, String>>;

impl Store {
    /// See [`TrackingStore::create_logged_model`](crate::TrackingStore::create_logged_model).
    pub(super) async fn insert_logged_model(
        &self,
        model: NewLoggedModel,
    ) -> Result<LoggedModel, RegistryError> {
        check_name("logged model name", &model.name)?;
        for key in model.params.keys().chain(model.tags.keys()) {
            check_name("logged model param or tag key", key)?;
        }
        let model_id = format!("m-{}", new_id());
        let ctx = || format!("logging model {:?}", model.name);
        let mut tx = self.begin_write().await.db(ctx)?;
        let lifecycle: Option<String> =
            sqlx::query_scalar("SELECT lifecycle FROM experiments WHERE experiment_id = $1")
                .bind(&model.experiment_id)
                .fetch_optional(&mut *tx)
                .await
                .db(ctx)?;
        match lifecycle.as_deref() {
            None => {
                return Err(RegistryError::not_found(format!(
                    "experiment with id {}",
                    model.experiment_id
                )))
            }
            Some(l) if l == Lifecycle::Deleted.as_str() => {
                return Err(RegistryError::conflict(format!(
                    "experiment {} is deleted, so no model can be logged in it",
                    model.experiment_id
                )))
            }
            Some(_) => {}
        }
        if let Some(run_id) = &model.source_run_id {
            require_run(&mut tx, run_id).await?;
        }
        let now = now_ms();
        sqlx::query(
            "INSERT INTO logged_models (model_id, experiment_id, name, source_run_id, model_type, \
             status, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, 'pending', $6, $6)",
        )
        .bind(&model_id)
        .bind(&model.experiment_id)
        .bind(&model.name)
        .bind(model.source_run_id.as_deref())
        .bind(&model.model_type)
        .bind(now)
        .execute(&mut *tx)
        .await
        .db(ctx)?;
        put_key_values(
            &mut tx,
            "logged_model_params",
            &model_id,
            &model.params,
            false,
        )
        .await?;
        put_key_values(&mut tx, "logged_model_tags", &model_id, &model.tags, true).await?;
        tx.commit().await.db(ctx)?;
        tracing::info!(model_id = %model_id, name = %model.name, "logged model");
        let at = to_time(now, || "current time".to_string())?;
        Ok(LoggedModel {
            model_id,
            experiment_id: model.experiment_id,
            name: model.name,
            source_run_id: model.source_run_id,
            model_type: model.model_type,
            status: LoggedModelStatus::Pending,
            params: model.params,
            tags: model.tags,
            created_at: at,
            updated_at: at,
        })
    }

    /// See [`TrackingStore::get_logged_model`](crate::TrackingStore::get_logged_model).
    pub(super) async fn read_logged_model(
        &self,
        model_id: &str,
    ) -> Result<LoggedModel, RegistryError> {
        let ctx = || format!("reading logged model {model_id}");
        let mut tx = self.begin_read().await.db(ctx)?;
        let row: Option<ModelRow> =
            sqlx::query_as(AssertSqlSafe(format!("{MODEL_SELECT} WHERE model_id = $1")))
                .bind(model_id)
                .fetch_optional(&mut *tx)
                .await
                .db(ctx)?;
        let row = row.ok_or_else(|| not_found(model_id))?;
        let mut models = with_key_values(&mut tx, vec![row]).await?;
        tx.commit().await.db(ctx)?;
        models.pop().ok_or_else(|| not_found(model_id))
    }

    /// See [`TrackingStore::list_logged_models`](crate::TrackingStore::list_logged_models).
    pub(super) async fn read_logged_models(
        &self,
        experiment_ids: &[String],
    ) -> Result<Vec<LoggedModel>, RegistryError> {
        let ctx = || "listing logged models".to_string();
        let mut tx = self.begin_read().await.db(ctx)?;
        let sql = if experiment_ids.is_empty() {
            format!("{MODEL_SELECT} ORDER BY id DESC")
        } else {
            format!(
                "{MODEL_SELECT} WHERE experiment_id IN ({}) ORDER BY id DESC",
                placeholders(1, experiment_ids.len())
            )
        };
        let mut query = sqlx::query_as::<_, ModelRow>(AssertSqlSafe(sql));
        for id in experiment_ids {
            query = query.bind(id);
        }
        let rows = query.fetch_all(&mut *tx).await.db(ctx)?;
        let models = with_key_values(&mut tx, rows).await?;
        tx.commit().await.db(ctx)?;
        Ok(models)
    }

    /// See [`TrackingStore::finalize_logged_model`](crate::TrackingStore::finalize_logged_model).
    pub(super) async fn set_logged_model_status(
        &self,
        model_id: &str,
        status: LoggedModelStatus,
    ) -> Result<LoggedModel, RegistryError> {
        if status == LoggedModelStatus::Pending {
            return Err(RegistryError::InvalidInput(format!(
                "cannot finalize logged model {model_id} as pending; use ready or failed"
            )));
        }
        let ctx = || format!("finalizing logged model {model_id} as {status}");
        let mut tx = self.begin_write().await.db(ctx)?;
        let changed = sqlx::query(
            "UPDATE logged_models SET status = $2, updated_at = $3 WHERE model_id = $1",
        )
        .bind(model_id)
        .bind(status.as_str())
        .bind(now_ms())
        .execute(&mut *tx)
        .await
        .db(ctx)?
        .rows_affected();
        if changed == 0 {
            return Err(not_found(model_id));
        }
        tx.commit().await.db(ctx)?;
        self.read_logged_model(model_id).await
    }

    /// See [`TrackingStore::set_logged_model_tags`](crate::TrackingStore::set_logged_model_tags).
    pub(super) async fn put_logged_model_tags(
        &self,
        model_id: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<(), RegistryError> {
        self.write_key_values("logged_model_tags", model_id, tags, true)
            .await
    }

    /// See [`TrackingStore::log_logged_model_params`](crate::TrackingStore::log_logged_model_params).
    pub(super) async fn put_logged_model_params(
        &self,
        model_id: &str,
        params: &BTreeMap<String, String>,
    ) -> Result<(), RegistryError> {
        self.write_key_values("logged_model_params", model_id, params, false)
            .await
    }

    /// See [`TrackingStore::delete_logged_model_tag`](crate::TrackingStore::delete_logged_model_tag).
    pub(super) async fn remove_logged_model_tag(
        &self,
        model_id: &str,
        key: &str,
    ) -> Result<(), RegistryError> {
        let ctx = || format!("deleting tag {key:?} of logged model {model_id}");
        let mut tx = self.begin_write().await.db(ctx)?;
        require_model(&mut tx, model_id).await?;
        let deleted = sqlx::query("DELETE FROM logged_model_tags WHERE model_id = $1 AND key = $2")
            .bind(model_id)
            .bind(key)
            .execute(&mut *tx)
            .await
            .db(ctx)?
            .rows_affected();
        if deleted == 0 {
            return Err(RegistryError::not_found(format!(
                "tag {key:?} of logged model {model_id}"
            )));
        }
        touch(&mut tx, model_id).await?;
        tx.commit().await.db(ctx)
    }

    /// See [`TrackingStore::log_run_outputs`](crate::TrackingStore::log_run_outputs).
    pub(super) async fn put_run_outputs(
        &self,
        run_id: &str,
        outputs: &[RunOutput],
    ) -> Result<(), RegistryError> {
        let ctx = || format!("recording the outputs of run {run_id}");
        let mut tx = self.begin_write().await.db(ctx)?;
        require_run(&mut tx, run_id).await?;
        for output in outputs {
            require_model(&mut tx, &output.model_id).await?;
            sqlx::query(
                "INSERT INTO run_outputs (run_id, model_id, step) VALUES ($1, $2, $3) \
                 ON CONFLICT (run_id, model_id, step) DO NOTHING",
            )
            .bind(run_id)
            .bind(&output.model_id)
            .bind(output.step)
            .execute(&mut *tx)
            .await
            .db(ctx)?;
        }
        tx.commit().await.db(ctx)
    }

    /// Writes params (`replace: false`, immutable) or tags (`replace: true`) of a logged
    /// model in one transaction.
    async fn write_key_values(
        &self,
        table: &'static str,
        model_id: &str,
        entries: &BTreeMap<String, String>,
        replace: bool,
    ) -> Result<(), RegistryError> {
        for key in entries.keys() {
            check_name("logged model param or tag key", key)?;
        }
        let ctx = || format!("writing {table} of logged model {model_id}");
        let mut tx = self.begin_write().await.db(ctx)?;
        require_model(&mut tx, model_id).await?;
        put_key_values(&mut tx, table, model_id, entries, replace).await?;
        touch(&mut tx, model_id).await?;
        tx.commit().await.db(ctx)
    }
}

fn not_found(model_id: &str) -> RegistryError {
    RegistryError::not_found(format!("logged model {model_id}"))
}

/// Checks that a logged model exists.
async fn require_model(conn: &mut Conn, model_id: &str) -> Result<(), RegistryError> {
    let found: Option<String> =
        sqlx::query_scalar("SELECT model_id FROM logged_models WHERE model_id = $1")
            .bind(model_id)
            .fetch_optional(conn)
            .await
            .db(|| format!("looking up logged model {model_id}"))?;
    found.map(|_| ()).ok_or_else(|| not_found(model_id))
}

/// Stamps a logged model's `updated_at`.
async fn touch(conn: &mut Conn, model_id: &str) -> Result<(), RegistryError> {
    sqlx::query("UPDATE logged_models SET updated_at = $2 WHERE model_id = $1")
        .bind(model_id)
        .bind(now_ms())
        .execute(conn)
        .await
        .db(|| format!("touching logged model {model_id}"))?;
    Ok(())
}

/// Inserts key/value rows of `table` (`logged_model_params` or `logged_model_tags`).
/// Existing keys are replaced (`replace`) or must hold the same value (params).
async fn put_key_values(
    conn: &mut Conn,
    table: &'static str,
    model_id: &str,
    entries: &BTreeMap<String, String>,
    replace: bool,
) -> Result<(), RegistryError> {
    let ctx = || format!("writing {table} of logged model {model_id}");
    let on_conflict = if replace {
        "DO UPDATE SET value = excluded.value"
    } else {
        "DO NOTHING"
    };
    for (key, value) in entries {
        let inserted = sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO {table} (model_id, key, value) VALUES ($1, $2, $3) \
             ON CONFLICT (model_id, key) {on_conflict}"
        )))
        .bind(model_id)
        .bind(key)
        .bind(value)
        .execute(&mut *conn)
        .await
        .db(ctx)?
        .rows_affected();
        if inserted == 0 && !replace {
            let old: String = sqlx::query_scalar(AssertSqlSafe(format!(
                "SELECT value FROM {table} WHERE model_id = $1 AND key = $2"
            )))
            .bind(model_id)
            .bind(key)
            .fetch_one(&mut *conn)
            .await
            .db(ctx)?;
            if old != *value {
                return Err(RegistryError::conflict(format!(
                    "param {key:?} of logged model {model_id} is already {old:?}; params \
                     cannot change, so {value:?} was not logged"
                )));
            }
        }
    }
    Ok(())
}

/// Loads params and tags of the given models and converts them, keeping their order.
async fn with_key_values(
    conn: &mut Conn,
    rows: Vec<ModelRow>,
) -> Result<Vec<LoggedModel>, RegistryError> {
    let ids: Vec<String> = rows.iter().map(|r| r.model_id.clone()).collect();
    let mut params = KeyValues::new();
    let mut tags = KeyValues::new();
    for chunk in ids.chunks(super::runs_io::IN_CHUNK) {
        for (table, out) in [
            ("logged_model_params", &mut params),
            ("logged_model_tags", &mut tags),
        ] {
            let sql = format!(
                "SELECT model_id, key, value FROM {table} WHERE model_id IN ({})",
                placeholders(1, chunk.len())
            );
            let mut query = sqlx::query_as::<_, (String, String, String)>(AssertSqlSafe(sql));
            for id in chunk {
                query = query.bind(id);
            }
            let found = query
                .fetch_all(&mut *conn)
                .await
                .db(|| format!("reading {table}"))?;
            for (id, key, value) in found {
                out.entry(id).or_default().insert(key, value);
            }
        }
    }
    rows.into_iter()
        .map(|row| {
            let id = row.model_id.clone();
            let status: LoggedModelStatus = row.status.parse().map_err(|_| {
                RegistryError::corrupt(format!(
                    "logged model {id} has unknown status {:?}",
                    row.status
                ))
            })?;
            Ok(LoggedModel {
                params: params.remove(&id).unwrap_or_default(),
                tags: tags.remove(&id).unwrap_or_default(),
                created_at: to_time(row.created_at, || format!("created_at of model {id}"))?,
                updated_at: to_time(row.updated_at, || format!("updated_at of model {id}"))?,
                model_id: row.model_id,
                experiment_id: row.experiment_id,
                name: row.name,
                source_run_id: row.source_run_id,
                model_type: row.model_type,
                status,
            })
        })
        .collect()
}
