//! The model registry: registered models, their versions, aliases and the alias audit log.

use std::collections::{BTreeMap, HashMap};

use crate::error::{DbContext, RegistryError};
use crate::registry::{check_alias, check_name, now_ms, to_time};
use crate::runs::require_run;
use crate::sqlite::{self, Conn};
use crate::{AliasEvent, ModelVersion, RegisteredModel, Registry};

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

const VERSION_COLUMNS: &str = "SELECT model, version, run_id, artifact_uri, signature, created_at \
                               FROM model_versions";

impl Registry {
    /// Registers a new version of `model` produced by run `run_id`, creating the registered
    /// model on its first version.
    ///
    /// The version number is the model's previous highest plus one, allocated in the same
    /// write transaction as the insert, so concurrent callers (any number of handles or
    /// processes) get 1, 2, 3… without gaps or duplicates. An unknown run is
    /// [`RegistryError::NotFound`]; an empty model name or artifact URI is
    /// [`RegistryError::InvalidInput`].
    pub async fn create_model_version(
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
        let mut tx = sqlite::begin_write(&self.pool).await.db(ctx)?;
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
        // The counter bump locks the model's row (PostgreSQL) or the database (SQLite) until
        // commit, which serialises concurrent registrations of the same model.
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

    /// Reads one version with the aliases pointing at it. A missing model or version is
    /// [`RegistryError::NotFound`] naming it.
    pub async fn get_model_version(
        &self,
        model: &str,
        version: i64,
    ) -> Result<ModelVersion, RegistryError> {
        let ctx = || format!("reading model {model:?} version {version}");
        let mut tx = sqlite::begin_read(&self.pool).await.db(ctx)?;
        let found = load_version(&mut tx, model, version).await?;
        tx.commit().await.db(ctx)?;
        Ok(found)
    }

    /// Every version of `model`, newest first, each with its aliases. An unknown model is
    /// [`RegistryError::NotFound`].
    pub async fn list_model_versions(
        &self,
        model: &str,
    ) -> Result<Vec<ModelVersion>, RegistryError> {
        let ctx = || format!("listing versions of model {model:?}");
        let mut tx = sqlite::begin_read(&self.pool).await.db(ctx)?;
        require_model(&mut tx, model).await?;
        let rows: Vec<VersionRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{VERSION_COLUMNS} WHERE model = $1 ORDER BY version DESC"
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

    /// Every registered model, by name, with version counts and current aliases.
    pub async fn list_models(&self) -> Result<Vec<RegisteredModel>, RegistryError> {
        let ctx = || "listing registered models".to_string();
        let mut tx = sqlite::begin_read(&self.pool).await.db(ctx)?;
        let rows: Vec<(String, i64, i64, i64, i64)> = sqlx::query_as(
            "SELECT m.name, m.latest_version, \
               (SELECT COUNT(*) FROM model_versions v WHERE v.model = m.name), \
               m.created_at, m.updated_at \
             FROM registered_models m ORDER BY m.name",
        )
        .fetch_all(&mut *tx)
        .await
        .db(ctx)?;
        let alias_rows: Vec<(String, String, i64)> =
            sqlx::query_as("SELECT model, alias, version FROM aliases")
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

    /// Points `alias` of `model` at `version` (creating or moving it) and appends an
    /// [`AliasEvent`] in the same transaction.
    ///
    /// Setting an alias to the version it already points at succeeds and writes nothing.
    /// A missing model or version is [`RegistryError::NotFound`]; a malformed alias (it must
    /// start with a letter and hold only ASCII letters, digits, `_`, `-`, `.`) or an empty
    /// actor is [`RegistryError::InvalidInput`].
    pub async fn set_alias(
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
        let mut tx = sqlite::begin_write(&self.pool).await.db(ctx)?;
        require_version(&mut tx, model, version).await?;
        let from = current_alias(&mut tx, model, alias).await?;
        if from == Some(version) {
            return Ok(());
        }
        let now = now_ms();
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
        record_alias_event(
            &mut tx,
            model,
            alias,
            from,
            Some(version),
            actor,
            reason,
            now,
        )
        .await?;
        tx.commit().await.db(ctx)?;
        tracing::info!(model, alias, from_version = ?from, to_version = version, actor, "moved alias");
        Ok(())
    }

    /// Removes `alias` of `model` and appends an [`AliasEvent`] (with `to_version: None`) in
    /// the same transaction. A missing model or alias is [`RegistryError::NotFound`] (a
    /// retried delete therefore reports NotFound: the alias is gone either way).
    pub async fn delete_alias(
        &self,
        model: &str,
        alias: &str,
        actor: &str,
        reason: &str,
    ) -> Result<(), RegistryError> {
        check_name("actor", actor)?;
        let ctx = || format!("deleting alias {alias:?} of model {model:?}");
        let mut tx = sqlite::begin_write(&self.pool).await.db(ctx)?;
        require_model(&mut tx, model).await?;
        let Some(from) = current_alias(&mut tx, model, alias).await? else {
            return Err(RegistryError::not_found(format!(
                "alias {alias:?} of model {model:?}"
            )));
        };
        let now = now_ms();
        sqlx::query("DELETE FROM aliases WHERE model = $1 AND alias = $2")
            .bind(model)
            .bind(alias)
            .execute(&mut *tx)
            .await
            .db(ctx)?;
        record_alias_event(&mut tx, model, alias, Some(from), None, actor, reason, now).await?;
        tx.commit().await.db(ctx)?;
        tracing::info!(model, alias, from_version = from, actor, "deleted alias");
        Ok(())
    }

    /// The version `alias` points at, or `None` if the model has no such alias. An unknown
    /// model is [`RegistryError::NotFound`].
    pub async fn get_alias(
        &self,
        model: &str,
        alias: &str,
    ) -> Result<Option<ModelVersion>, RegistryError> {
        let ctx = || format!("resolving alias {alias:?} of model {model:?}");
        let mut tx = sqlite::begin_read(&self.pool).await.db(ctx)?;
        require_model(&mut tx, model).await?;
        let found = match current_alias(&mut tx, model, alias).await? {
            Some(version) => Some(load_version(&mut tx, model, version).await?),
            None => None,
        };
        tx.commit().await.db(ctx)?;
        Ok(found)
    }

    /// Every alias move of `model`, oldest first. An unknown model is
    /// [`RegistryError::NotFound`].
    pub async fn alias_history(&self, model: &str) -> Result<Vec<AliasEvent>, RegistryError> {
        let ctx = || format!("reading alias history of model {model:?}");
        let mut tx = sqlite::begin_read(&self.pool).await.db(ctx)?;
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

/// [`RegistryError::NotFound`] unless `model` is registered.
async fn require_model(conn: &mut Conn, model: &str) -> Result<(), RegistryError> {
    let found: Option<i64> = sqlx::query_scalar("SELECT 1 FROM registered_models WHERE name = $1")
        .bind(model)
        .fetch_optional(conn)
        .await
        .db(|| format!("looking up model {model:?}"))?;
    found
        .map(|_| ())
        .ok_or_else(|| RegistryError::not_found(format!("registered model {model:?}")))
}

/// [`RegistryError::NotFound`] naming the model or the version, whichever is missing.
async fn require_version(conn: &mut Conn, model: &str, version: i64) -> Result<(), RegistryError> {
    require_model(conn, model).await?;
    let found: Option<i64> =
        sqlx::query_scalar("SELECT 1 FROM model_versions WHERE model = $1 AND version = $2")
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

#[allow(clippy::too_many_arguments)]
async fn record_alias_event(
    conn: &mut Conn,
    model: &str,
    alias: &str,
    from: Option<i64>,
    to: Option<i64>,
    actor: &str,
    reason: &str,
    at: i64,
) -> Result<(), RegistryError> {
    let ctx = || format!("recording a move of alias {alias:?} of model {model:?}");
    sqlx::query(
        "INSERT INTO alias_events (model, alias, from_version, to_version, actor, reason, at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(model)
    .bind(alias)
    .bind(from)
    .bind(to)
    .bind(actor)
    .bind(reason)
    .bind(at)
    .execute(&mut *conn)
    .await
    .db(ctx)?;
    sqlx::query("UPDATE registered_models SET updated_at = $2 WHERE name = $1")
        .bind(model)
        .bind(at)
        .execute(conn)
        .await
        .db(ctx)?;
    Ok(())
}

/// One version with its aliases, or NotFound naming the model or the version.
async fn load_version(
    conn: &mut Conn,
    model: &str,
    version: i64,
) -> Result<ModelVersion, RegistryError> {
    let ctx = || format!("reading model {model:?} version {version}");
    let row: Option<VersionRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{VERSION_COLUMNS} WHERE model = $1 AND version = $2"
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
