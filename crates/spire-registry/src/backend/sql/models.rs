//! Shared SQL: [`ModelRegistry`] for this backend's `Store` (compiled once per backend; see
//! `backend/mod.rs`). The contract is documented on the trait.

use std::collections::{BTreeMap, HashMap};

use sqlx::AssertSqlSafe;

use super::runs_io::require_run;
use super::{Conn, Store};
use crate::check::{check_alias, check_name, now_ms, to_time};
use crate::error::{DbContext, RegistryError};
use crate::{AliasEvent, ModelRegistry, ModelVersion, RegisteredModel};

/// A `model_versions` row as stored.
#[derive(sqlx::FromRow)]
struct VersionRow {
    model: String,
    version: i64,
    run_id: String,
    artifact_uri: String,
    signature: String,
    created_at: i64,
}

const VERSION_SELECT: &str = "SELECT model, version, run_id, artifact_uri, signature, created_at \
                              FROM model_versions";

/// A registered model with its version count: name, latest, count, created, updated.
type ModelRow = (String, i64, i64, i64, i64);

const MODEL_SELECT: &str = "SELECT m.name, m.latest_version, \
       (SELECT COUNT(*) FROM model_versions v WHERE v.model = m.name), \
       m.created_at, m.updated_at \
     FROM registered_models m WHERE ($1 IS NULL OR m.name = $1) ORDER BY m.name";

impl ModelRegistry for Store {
    async fn create_model(&self, name: &str) -> Result<RegisteredModel, RegistryError> {
        check_name("model name", name)?;
        let ctx = || format!("registering model {name:?}");
        let now = now_ms();
        let mut tx = self.begin_write().await.db(ctx)?;
        let created = sqlx::query(
            "INSERT INTO registered_models (name, latest_version, created_at, updated_at) \
             VALUES ($1, 0, $2, $2) ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(now)
        .execute(&mut *tx)
        .await
        .db(ctx)?
        .rows_affected();
        if created == 0 {
            tx.rollback().await.db(ctx)?;
            return Err(RegistryError::AlreadyExists {
                what: format!("registered model {name:?}"),
            });
        }
        tx.commit().await.db(ctx)?;
        tracing::info!(model = name, "registered model");
        let at = to_time(now, || "current time".to_string())?;
        Ok(RegisteredModel {
            name: name.to_string(),
            latest_version: 0,
            versions: 0,
            aliases: BTreeMap::new(),
            created_at: at,
            updated_at: at,
        })
    }

    async fn get_model(&self, name: &str) -> Result<RegisteredModel, RegistryError> {
        self.read_models(Some(name))
            .await?
            .pop()
            .ok_or_else(|| RegistryError::not_found(format!("registered model {name:?}")))
    }

    async fn list_models(&self) -> Result<Vec<RegisteredModel>, RegistryError> {
        self.read_models(None).await
    }

    async fn create_model_version(
        &self,
        model: &str,
        run_id: &str,
        artifact_uri: &str,
        signature: serde_json::Value,
    ) -> Result<ModelVersion, RegistryError> {
        check_name("model name", model)?;
        if artifact_uri.trim().is_empty() {
            return Err(RegistryError::InvalidInput(format!(
                "artifact URI of the new version of model {model:?} must not be empty"
            )));
        }
        let signature_json = serde_json::to_string(&signature).map_err(|e| {
            RegistryError::InvalidInput(format!("signature of model {model:?} is not JSON: {e}"))
        })?;
        let now = now_ms();
        let ctx = || format!("registering a version of model {model:?} from run {run_id}");
        let mut tx = self.begin_write().await.db(ctx)?;
        require_run(&mut tx, run_id).await?;
        sqlx::query(
            "INSERT INTO registered_models (name, latest_version, created_at, updated_at) \
             VALUES ($1, 0, $2, $2) ON CONFLICT (name) DO NOTHING",
        )
        .bind(model)
        .bind(now)
        .execute(&mut *tx)
        .await
        .db(ctx)?;
        // The counter bump locks the model's row (PostgreSQL) or runs under the database
        // write lock (SQLite) until commit, which serialises registrations of one model.
        let version: i64 = sqlx::query_scalar(
            "UPDATE registered_models SET latest_version = latest_version + 1, updated_at = $2 \
             WHERE name = $1 RETURNING latest_version",
        )
        .bind(model)
        .bind(now)
        .fetch_one(&mut *tx)
        .await
        .db(ctx)?;
        sqlx::query(
            "INSERT INTO model_versions (model, version, run_id, artifact_uri, signature, \
             created_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(model)
        .bind(version)
        .bind(run_id)
        .bind(artifact_uri)
        .bind(&signature_json)
        .bind(now)
        .execute(&mut *tx)
        .await
        .db(ctx)?;
        tx.commit().await.db(ctx)?;
        tracing::info!(model, version, run_id, "registered model version");
        Ok(ModelVersion {
            model: model.to_string(),
            version,
            run_id: run_id.to_string(),
            artifact_uri: artifact_uri.to_string(),
            signature,
            created_at: to_time(now, || "current time".to_string())?,
            aliases: Vec::new(),
        })
    }

    async fn get_model_version(
        &self,
        model: &str,
        version: i64,
    ) -> Result<ModelVersion, RegistryError> {
        let ctx = || format!("reading model {model:?} version {version}");
        let mut tx = self.begin_read().await.db(ctx)?;
        let found = load_version(&mut tx, model, version).await?;
        tx.commit().await.db(ctx)?;
        Ok(found)
    }

    async fn list_model_versions(&self, model: &str) -> Result<Vec<ModelVersion>, RegistryError> {
        let ctx = || format!("listing versions of model {model:?}");
        let mut tx = self.begin_read().await.db(ctx)?;
        require_model(&mut tx, model).await?;
        let rows: Vec<VersionRow> = sqlx::query_as(AssertSqlSafe(format!(
            "{VERSION_SELECT} WHERE model = $1 ORDER BY version DESC"
        )))
        .bind(model)
        .fetch_all(&mut *tx)
        .await
        .db(ctx)?;
        let mut aliases = aliases_by_version(&mut tx, model).await?;
        tx.commit().await.db(ctx)?;
        rows.into_iter()
            .map(|row| {
                let names = aliases.remove(&row.version).unwrap_or_default();
                into_version(row, names)
            })
            .collect()
    }

    async fn set_alias(
        &self,
        model: &str,
        alias: &str,
        version: i64,
        actor: &str,
        reason: &str,
    ) -> Result<(), RegistryError> {
        check_alias(alias)?;
        check_name("actor", actor)?;
        let ctx = || format!("pointing alias {alias:?} of model {model:?} at version {version}");
        let now = now_ms();
        let mut tx = self.begin_write().await.db(ctx)?;
        lock_model(&mut tx, model, now).await?;
        require_version(&mut tx, model, version).await?;
        let from = current_alias(&mut tx, model, alias).await?;
        if from == Some(version) {
            tx.rollback().await.db(ctx)?;
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO aliases (model, alias, version, updated_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (model, alias) DO UPDATE \
             SET version = excluded.version, updated_at = excluded.updated_at",
        )
        .bind(model)
        .bind(alias)
        .bind(version)
        .bind(now)
        .execute(&mut *tx)
        .await
        .db(ctx)?;
        let event = AliasMove {
            model,
            alias,
            from,
            to: Some(version),
            actor,
            reason,
            at: now,
        };
        record_alias_event(&mut tx, &event).await?;
        tx.commit().await.db(ctx)?;
        tracing::info!(model, alias, from_version = ?from, to_version = version, actor, "moved alias");
        Ok(())
    }

    async fn delete_alias(
        &self,
        model: &str,
        alias: &str,
        actor: &str,
        reason: &str,
    ) -> Result<(), RegistryError> {
        check_name("actor", actor)?;
        let ctx = || format!("deleting alias {alias:?} of model {model:?}");
        let now = now_ms();
        let mut tx = self.begin_write().await.db(ctx)?;
        lock_model(&mut tx, model, now).await?;
        let Some(from) = current_alias(&mut tx, model, alias).await? else {
            tx.rollback().await.db(ctx)?;
            return Err(RegistryError::not_found(format!(
                "alias {alias:?} of model {model:?}"
            )));
        };
        sqlx::query("DELETE FROM aliases WHERE model = $1 AND alias = $2")
            .bind(model)
            .bind(alias)
            .execute(&mut *tx)
            .await
            .db(ctx)?;
        let event = AliasMove {
            model,
            alias,
            from: Some(from),
            to: None,
            actor,
            reason,
            at: now,
        };
        record_alias_event(&mut tx, &event).await?;
        tx.commit().await.db(ctx)?;
        tracing::info!(model, alias, from_version = from, actor, "deleted alias");
        Ok(())
    }

    async fn get_alias(
        &self,
        model: &str,
        alias: &str,
    ) -> Result<Option<ModelVersion>, RegistryError> {
        let ctx = || format!("resolving alias {alias:?} of model {model:?}");
        let mut tx = self.begin_read().await.db(ctx)?;
        require_model(&mut tx, model).await?;
        let found = match current_alias(&mut tx, model, alias).await? {
            Some(version) => Some(load_version(&mut tx, model, version).await?),
            None => None,
        };
        tx.commit().await.db(ctx)?;
        Ok(found)
    }

    async fn alias_history(&self, model: &str) -> Result<Vec<AliasEvent>, RegistryError> {
        let ctx = || format!("reading alias history of model {model:?}");
        let mut tx = self.begin_read().await.db(ctx)?;
        require_model(&mut tx, model).await?;
        type EventRow = (String, Option<i64>, Option<i64>, String, String, i64);
        let rows: Vec<EventRow> = sqlx::query_as(
            "SELECT alias, from_version, to_version, actor, reason, at FROM alias_events \
             WHERE model = $1 ORDER BY id",
        )
        .bind(model)
        .fetch_all(&mut *tx)
        .await
        .db(ctx)?;
        tx.commit().await.db(ctx)?;
        rows.into_iter()
            .map(|(alias, from_version, to_version, actor, reason, at)| {
                Ok(AliasEvent {
                    model: model.to_string(),
                    at: to_time(at, || format!("time of an alias event of model {model:?}"))?,
                    alias,
                    from_version,
                    to_version,
                    actor,
                    reason,
                })
            })
            .collect()
    }
}

impl Store {
    /// Registered models (one, or all by name) with version counts and aliases.
    async fn read_models(&self, name: Option<&str>) -> Result<Vec<RegisteredModel>, RegistryError> {
        let ctx = || match name {
            Some(name) => format!("reading registered model {name:?}"),
            None => "listing registered models".to_string(),
        };
        let mut tx = self.begin_read().await.db(ctx)?;
        let rows: Vec<ModelRow> = sqlx::query_as(MODEL_SELECT)
            .bind(name)
            .fetch_all(&mut *tx)
            .await
            .db(ctx)?;
        let alias_rows: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT model, alias, version FROM aliases WHERE ($1 IS NULL OR model = $1)",
        )
        .bind(name)
        .fetch_all(&mut *tx)
        .await
        .db(ctx)?;
        tx.commit().await.db(ctx)?;
        let mut aliases: HashMap<String, BTreeMap<String, i64>> = HashMap::new();
        for (model, alias, version) in alias_rows {
            aliases.entry(model).or_default().insert(alias, version);
        }
        rows.into_iter()
            .map(|(name, latest_version, versions, created_at, updated_at)| {
                Ok(RegisteredModel {
                    created_at: to_time(created_at, || format!("created_at of model {name:?}"))?,
                    updated_at: to_time(updated_at, || format!("updated_at of model {name:?}"))?,
                    aliases: aliases.remove(&name).unwrap_or_default(),
                    name,
                    latest_version,
                    versions,
                })
            })
            .collect()
    }
}

/// Stamps the model's `updated_at`, which locks its row until commit (PostgreSQL; SQLite
/// holds the database write lock already), so alias moves of one model are serialised and
/// each reads the alias its predecessor wrote. [`RegistryError::NotFound`] if the model is
/// not registered.
async fn lock_model(conn: &mut Conn, model: &str, now: i64) -> Result<(), RegistryError> {
    let touched = sqlx::query("UPDATE registered_models SET updated_at = $2 WHERE name = $1")
        .bind(model)
        .bind(now)
        .execute(conn)
        .await
        .db(|| format!("locking model {model:?}"))?
        .rows_affected();
    if touched == 0 {
        return Err(RegistryError::not_found(format!(
            "registered model {model:?}"
        )));
    }
    Ok(())
}

/// [`RegistryError::NotFound`] unless `model` is registered.
async fn require_model(conn: &mut Conn, model: &str) -> Result<(), RegistryError> {
    let found: Option<String> =
        sqlx::query_scalar("SELECT name FROM registered_models WHERE name = $1")
            .bind(model)
            .fetch_optional(conn)
            .await
            .db(|| format!("looking up model {model:?}"))?;
    found
        .map(|_| ())
        .ok_or_else(|| RegistryError::not_found(format!("registered model {model:?}")))
}

/// [`RegistryError::NotFound`] naming the version if `model` has no such version.
async fn require_version(conn: &mut Conn, model: &str, version: i64) -> Result<(), RegistryError> {
    let found: Option<i64> =
        sqlx::query_scalar("SELECT version FROM model_versions WHERE model = $1 AND version = $2")
            .bind(model)
            .bind(version)
            .fetch_optional(conn)
            .await
            .db(|| format!("looking up model {model:?} version {version}"))?;
    found
        .map(|_| ())
        .ok_or_else(|| version_not_found(model, version))
}

fn version_not_found(model: &str, version: i64) -> RegistryError {
    RegistryError::not_found(format!("version {version} of model {model:?}"))
}

async fn current_alias(
    conn: &mut Conn,
    model: &str,
    alias: &str,
) -> Result<Option<i64>, RegistryError> {
    sqlx::query_scalar("SELECT version FROM aliases WHERE model = $1 AND alias = $2")
        .bind(model)
        .bind(alias)
        .fetch_optional(conn)
        .await
        .db(|| format!("looking up alias {alias:?} of model {model:?}"))
}

/// One alias move, as appended to the audit log.
struct AliasMove<'a> {
    model: &'a str,
    alias: &'a str,
    from: Option<i64>,
    to: Option<i64>,
    actor: &'a str,
    reason: &'a str,
    at: i64,
}

async fn record_alias_event(conn: &mut Conn, event: &AliasMove<'_>) -> Result<(), RegistryError> {
    sqlx::query(
        "INSERT INTO alias_events (model, alias, from_version, to_version, actor, reason, at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(event.model)
    .bind(event.alias)
    .bind(event.from)
    .bind(event.to)
    .bind(event.actor)
    .bind(event.reason)
    .bind(event.at)
    .execute(conn)
    .await
    .db(|| {
        format!(
            "recording a move of alias {:?} of model {:?}",
            event.alias, event.model
        )
    })?;
    Ok(())
}

/// One version with its aliases, or NotFound naming the model or the version.
async fn load_version(
    conn: &mut Conn,
    model: &str,
    version: i64,
) -> Result<ModelVersion, RegistryError> {
    let ctx = || format!("reading model {model:?} version {version}");
    let row: Option<VersionRow> = sqlx::query_as(AssertSqlSafe(format!(
        "{VERSION_SELECT} WHERE model = $1 AND version = $2"
    )))
    .bind(model)
    .bind(version)
    .fetch_optional(&mut *conn)
    .await
    .db(ctx)?;
    let Some(row) = row else {
        require_model(conn, model).await?;
        return Err(version_not_found(model, version));
    };
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT alias FROM aliases WHERE model = $1 AND version = $2 ORDER BY alias",
    )
    .bind(model)
    .bind(version)
    .fetch_all(conn)
    .await
    .db(ctx)?;
    into_version(row, names)
}

/// Alias names of each version of `model`, sorted.
async fn aliases_by_version(
    conn: &mut Conn,
    model: &str,
) -> Result<HashMap<i64, Vec<String>>, RegistryError> {
    let rows: Vec<(i64, String)> =
        sqlx::query_as("SELECT version, alias FROM aliases WHERE model = $1 ORDER BY alias")
            .bind(model)
            .fetch_all(conn)
            .await
            .db(|| format!("reading aliases of model {model:?}"))?;
    let mut out: HashMap<i64, Vec<String>> = HashMap::new();
    for (version, alias) in rows {
        out.entry(version).or_default().push(alias);
    }
    Ok(out)
}

fn into_version(row: VersionRow, aliases: Vec<String>) -> Result<ModelVersion, RegistryError> {
    let signature = serde_json::from_str(&row.signature).map_err(|e| {
        RegistryError::corrupt(format!(
            "signature of model {:?} version {} is not JSON: {e}",
            row.model, row.version
        ))
    })?;
    let created_at = to_time(row.created_at, || {
        format!(
            "created_at of model {:?} version {}",
            row.model, row.version
        )
    })?;
    Ok(ModelVersion {
        model: row.model,
        version: row.version,
        run_id: row.run_id,
        artifact_uri: row.artifact_uri,
        signature,
        created_at,
        aliases,
    })
}
