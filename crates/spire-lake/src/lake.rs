//! The [`Lake`]: open, write, register and query Delta tables.

use std::collections::BTreeMap;
use std::path::PathBuf;

use deltalake::arrow::array::RecordBatch;
use deltalake::datafusion::execution::config::SessionConfig;
use deltalake::datafusion::prelude::{Expr, SessionContext};
use deltalake::protocol::SaveMode;
use deltalake::DeltaTable;
use url::Url;

use crate::error::{LakeError, Result};

/// Delta versions of the tables a piece of work read, by table name.
pub type TableVersions = BTreeMap<String, i64>;

/// A set of Delta tables under one root.
///
/// A lake may carry commit tags ([`Lake::tagged`]): key–value pairs written into the
/// `commitInfo` of every commit made through it, e.g. `spire.run_id`, so each table version
/// names the run that wrote it ([`Lake::find_tagged_commit`]).
#[derive(Debug, Clone)]
pub struct Lake {
    root: Url,
    local_root: Option<PathBuf>,
    commit_tags: BTreeMap<String, String>,
}

impl Lake {
    /// Opens the lake at `root`: a local folder (created if missing) or an object-store URL.
    pub fn open(root: &str) -> Result<Lake> {
        if root.contains("://") && !root.starts_with("file://") {
            let mut url = Url::parse(root)
                .map_err(|e| LakeError::InvalidInput(format!("lake URL `{root}`: {e}")))?;
            if !url.path().ends_with('/') {
                url.set_path(&format!("{}/", url.path()));
            }
            return Ok(Lake {
                root: url,
                local_root: None,
                commit_tags: BTreeMap::new(),
            });
        }
        let path = PathBuf::from(root.trim_start_matches("file://"));
        std::fs::create_dir_all(&path).map_err(|source| LakeError::Io {
            path: path.display().to_string(),
            source,
        })?;
        let path = path.canonicalize().map_err(|source| LakeError::Io {
            path: path.display().to_string(),
            source,
        })?;
        let root = Url::from_directory_path(&path).map_err(|_| {
            LakeError::InvalidInput(format!("lake path `{}` is not absolute", path.display()))
        })?;
        Ok(Lake {
            root,
            local_root: Some(path),
            commit_tags: BTreeMap::new(),
        })
    }

    /// The same lake, with `tags` added to the `commitInfo` of every commit made through it.
    pub fn tagged<K: Into<String>, V: Into<String>>(
        &self,
        tags: impl IntoIterator<Item = (K, V)>,
    ) -> Lake {
        let mut lake = self.clone();
        lake.commit_tags
            .extend(tags.into_iter().map(|(k, v)| (k.into(), v.into())));
        lake
    }

    /// The commit tags of this lake handle.
    pub fn commit_tags(&self) -> &BTreeMap<String, String> {
        &self.commit_tags
    }

    pub(crate) fn commit_properties(&self) -> deltalake::kernel::transaction::CommitProperties {
        deltalake::kernel::transaction::CommitProperties::default().with_metadata(
            self.commit_tags
                .iter()
                .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone()))),
        )
    }

    /// The newest version of `table` whose commit carries tag `key = value` (see
    /// [`Lake::tagged`]), or `None` when no commit does (or the table does not exist).
    /// Reads the commit log newest first; every commit Spire makes carries a `commitInfo`.
    pub async fn find_tagged_commit(
        &self,
        table: &str,
        key: &str,
        value: &str,
    ) -> Result<Option<i64>> {
        use futures::StreamExt;
        let Some(t) = self.table(table).await? else {
            return Ok(None);
        };
        let Some(latest) = version_of(&t) else {
            return Ok(None);
        };
        let mut history = t.history(None);
        let mut version = latest;
        while let Some(info) = history.next().await {
            let info = info.map_err(|source| delta(table, source))?;
            if info.info.get(key).and_then(serde_json::Value::as_str) == Some(value) {
                return Ok(Some(version));
            }
            version -= 1;
        }
        Ok(None)
    }

    /// The lake's root URL.
    pub fn root(&self) -> &Url {
        &self.root
    }

    /// The local folder of a table, when the lake is local.
    pub fn local_path(&self, table: &str) -> Option<PathBuf> {
        self.local_root.as_ref().map(|r| r.join(table))
    }

    /// The URL of a table.
    pub fn table_url(&self, table: &str) -> Result<Url> {
        self.root
            .join(&format!("{table}/"))
            .map_err(|e| LakeError::InvalidInput(format!("table name `{table}`: {e}")))
    }

    /// Opens a table at its latest version, or `None` if it has never been written.
    pub async fn table(&self, table: &str) -> Result<Option<DeltaTable>> {
        if let Some(path) = self.local_path(table) {
            if !path.join("_delta_log").is_dir() {
                return Ok(None);
            }
        }
        let url = self.table_url(table)?;
        let t = DeltaTable::try_from_url(url)
            .await
            .map_err(|source| delta(table, source))?;
        Ok(version_of(&t).map(|_| t))
    }

    /// Opens a table that must exist, with a hint naming the command that creates it.
    pub async fn require(&self, table: &str, hint: &str) -> Result<DeltaTable> {
        self.table(table).await?.ok_or_else(|| LakeError::NotFound {
            table: table.to_string(),
            hint: hint.to_string(),
        })
    }

    /// The latest version of a table, or `None` if it does not exist.
    pub async fn version(&self, table: &str) -> Result<Option<i64>> {
        Ok(self.table(table).await?.and_then(|t| version_of(&t)))
    }

    async fn writable(&self, table: &str) -> Result<DeltaTable> {
        if let Some(path) = self.local_path(table) {
            std::fs::create_dir_all(&path).map_err(|source| LakeError::Io {
                path: path.display().to_string(),
                source,
            })?;
        }
        let url = self.table_url(table)?;
        DeltaTable::try_from_url(url)
            .await
            .map_err(|source| delta(table, source))
    }

    /// Appends batches in one commit (creating the table, partitioned by `partition_by`, if
    /// needed) and returns the new version. Empty input commits nothing and returns the
    /// current version.
    pub async fn append(
        &self,
        table: &str,
        batches: Vec<RecordBatch>,
        partition_by: &[&str],
    ) -> Result<Option<i64>> {
        if batches.iter().all(|b| b.num_rows() == 0) {
            return self.version(table).await;
        }
        let batches = normalize_all(batches)?;
        let t = self.writable(table).await?;
        let mut w = t
            .write(batches)
            .with_save_mode(SaveMode::Append)
            .with_commit_properties(self.commit_properties());
        if !partition_by.is_empty() {
            w = w.with_partition_columns(partition_by.iter().map(|s| s.to_string()));
        }
        let t = w.await.map_err(|source| delta(table, source))?;
        Ok(version_of(&t))
    }

    /// Appends `batches` in one commit that moves each application transaction `id` from
    /// `expected` to `version`, only if the table still records `expected` for every `id`
    /// (`None`: the table has never recorded it) — a compare-and-set on Delta's
    /// application-transaction ids. Columns the batches have and the table lacks are added
    /// to the table (nullable), so tables written by an older Spire keep taking appends.
    ///
    /// The check is made on the snapshot the commit is built on, and Delta's conflict
    /// checker refuses the commit if any commit after that snapshot recorded one of the same
    /// ids; either way the outcome is [`CasOutcome::Conflict`] and nothing was written. A
    /// conflict means another writer (a consumer that took over the partition, a zombie
    /// after a restart) moved the stream on: the caller drops its batch and re-reads the
    /// table's positions.
    pub async fn append_cas(
        &self,
        table: &str,
        batches: Vec<RecordBatch>,
        partition_by: &[&str],
        txns: &[TxnAdvance],
    ) -> Result<CasOutcome> {
        let batches = normalize_all(batches)?;
        let t = self.writable(table).await?;
        let mut recorded = BTreeMap::new();
        if let Ok(snapshot) = t.snapshot() {
            for txn in txns {
                if let Some(v) = snapshot
                    .transaction_version(t.log_store().as_ref(), &txn.id)
                    .await
                    .map_err(|source| delta(table, source))?
                {
                    recorded.insert(txn.id.clone(), v);
                }
            }
        }
        for txn in txns {
            let found = recorded.get(&txn.id).copied();
            if found != txn.expected {
                return Ok(CasOutcome::Conflict {
                    id: txn.id.clone(),
                    expected: txn.expected,
                    found,
                });
            }
        }
        let props = self.commit_properties().with_application_transactions(
            txns.iter()
                .map(|x| deltalake::kernel::Transaction::new(&x.id, x.version))
                .collect(),
        );
        // Merge: columns a table written by an older Spire lacks (e.g. `source_sequence`)
        // are added, nullable, instead of refusing the append.
        let mut w = t
            .write(batches)
            .with_save_mode(SaveMode::Append)
            .with_schema_mode(deltalake::operations::write::SchemaMode::Merge)
            .with_commit_properties(props);
        if !partition_by.is_empty() {
            w = w.with_partition_columns(partition_by.iter().map(|s| s.to_string()));
        }
        match w.await {
            Ok(t) => Ok(CasOutcome::Committed(version_of(&t))),
            Err(deltalake::DeltaTableError::Transaction {
                source:
                    deltalake::kernel::transaction::TransactionError::CommitConflict(_)
                    | deltalake::kernel::transaction::TransactionError::VersionAlreadyExists(_),
            }) => {
                // Someone committed one of these ids after our snapshot: read what they
                // recorded so the caller's message names it.
                let id = txns.first().map(|t| t.id.clone()).unwrap_or_default();
                let found = self.txn_version(table, &id).await?;
                Ok(CasOutcome::Conflict {
                    expected: txns.first().and_then(|t| t.expected),
                    id,
                    found,
                })
            }
            Err(source) => Err(delta(table, source)),
        }
    }

    /// The last version recorded for application transaction `app_id` in `table`.
    pub async fn txn_version(&self, table: &str, app_id: &str) -> Result<Option<i64>> {
        let Some(t) = self.table(table).await? else {
            return Ok(None);
        };
        let snapshot = t.snapshot().map_err(|source| delta(table, source))?;
        snapshot
            .transaction_version(t.log_store().as_ref(), app_id)
            .await
            .map_err(|source| delta(table, source))
    }

    /// The last versions recorded for several application transactions of one table,
    /// loading the table once. Missing ids are absent from the map.
    pub async fn txn_versions(
        &self,
        table: &str,
        app_ids: &[String],
    ) -> Result<BTreeMap<String, i64>> {
        let mut out = BTreeMap::new();
        let Some(t) = self.table(table).await? else {
            return Ok(out);
        };
        let snapshot = t.snapshot().map_err(|source| delta(table, source))?;
        for id in app_ids {
            if let Some(v) = snapshot
                .transaction_version(t.log_store().as_ref(), id)
                .await
                .map_err(|source| delta(table, source))?
            {
                out.insert(id.clone(), v);
            }
        }
        Ok(out)
    }

    /// Replaces, in one commit, the rows matching `replace_where` (or the whole table when
    /// `None`) with `batches`, and returns the new version.
    ///
    /// Writers replacing disjoint rows of one partition at once (two scheduled tasks
    /// publishing different segments for the same date) can make Delta's conflict check
    /// refuse a commit; such a commit is rebuilt on the table's new version and tried again
    /// (up to [`OVERWRITE_ATTEMPTS`] times, after a short randomised wait). Replacing is
    /// idempotent, so the retried commit means what the first one meant.
    pub async fn overwrite(
        &self,
        table: &str,
        batches: Vec<RecordBatch>,
        partition_by: &[&str],
        replace_where: Option<Expr>,
    ) -> Result<Option<i64>> {
        let batches = normalize_all(batches)?;
        let mut attempt = 1;
        loop {
            let t = self.writable(table).await?;
            let mut w = t
                .write(batches.clone())
                .with_save_mode(SaveMode::Overwrite)
                .with_commit_properties(self.commit_properties());
            if !partition_by.is_empty() {
                w = w.with_partition_columns(partition_by.iter().map(|s| s.to_string()));
            }
            if let Some(p) = &replace_where {
                w = w.with_replace_where(p.clone());
            }
            match w.await {
                Ok(t) => return Ok(version_of(&t)),
                Err(deltalake::DeltaTableError::Transaction {
                    source: deltalake::kernel::transaction::TransactionError::CommitConflict(e),
                }) if attempt < OVERWRITE_ATTEMPTS => {
                    let wait = conflict_wait(attempt);
                    tracing::info!(table, attempt, conflict = %e, wait_ms = wait.as_millis() as u64,
                        "concurrent commit; rebuilding the overwrite on the new version");
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                Err(source) => return Err(delta(table, source)),
            }
        }
    }

    /// A new DataFusion session sized for this machine.
    pub fn session(&self) -> SessionContext {
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
        let config = SessionConfig::new()
            .with_target_partitions(threads)
            .with_information_schema(true);
        SessionContext::new_with_config(config)
    }

    /// Registers `table` in `ctx` under `alias` at its latest version; returns that version,
    /// or `None` (nothing registered) if the table does not exist.
    pub async fn register_as(
        &self,
        ctx: &SessionContext,
        table: &str,
        alias: &str,
    ) -> Result<Option<i64>> {
        let Some(t) = self.table(table).await? else {
            return Ok(None);
        };
        t.update_datafusion_session(&ctx.state())
            .map_err(|source| delta(table, source))?;
        let provider = t
            .table_provider()
            .await
            .map_err(|source| LakeError::query(format!("reading table `{table}`"), source))?;
        let _ = ctx.deregister_table(alias);
        ctx.register_table(alias, provider)
            .map_err(|source| LakeError::query(format!("registering table `{table}`"), source))?;
        Ok(version_of(&t))
    }

    /// Registers every table of the lake under its own name; returns the versions read.
    pub async fn register_all(&self, ctx: &SessionContext) -> Result<TableVersions> {
        let mut versions = TableVersions::new();
        for name in self.list_tables()? {
            if let Some(v) = self.register_as(ctx, &name, &name).await? {
                versions.insert(name, v);
            }
        }
        Ok(versions)
    }

    /// Names of the tables in a local lake (folders holding a `_delta_log`).
    pub fn list_tables(&self) -> Result<Vec<String>> {
        let Some(root) = &self.local_root else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        let entries = std::fs::read_dir(root).map_err(|source| LakeError::Io {
            path: root.display().to_string(),
            source,
        })?;
        for e in entries.flatten() {
            if e.path().join("_delta_log").is_dir() {
                out.push(e.file_name().to_string_lossy().into_owned());
            }
        }
        out.sort();
        Ok(out)
    }

    /// URIs of the active data files of a table (empty if it does not exist).
    pub async fn file_uris(&self, table: &str) -> Result<Vec<String>> {
        let Some(t) = self.table(table).await? else {
            return Ok(Vec::new());
        };
        let uris = t.get_file_uris().map_err(|source| delta(table, source))?;
        Ok(uris.collect())
    }

    /// Active data files of a table grouped by the value of a partition column, read from
    /// the file paths (`column=value/`), with values URL-decoded.
    pub async fn files_by_partition(
        &self,
        table: &str,
        column: &str,
    ) -> Result<BTreeMap<String, Vec<String>>> {
        let key = format!("{column}=");
        let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for uri in self.file_uris(table).await? {
            let Some(pos) = uri.find(&key) else { continue };
            let rest = &uri[pos + key.len()..];
            let value = &rest[..rest.find('/').unwrap_or(rest.len())];
            let value = percent_decode(value);
            out.entry(value).or_default().push(uri);
        }
        Ok(out)
    }

    /// Runs a query and collects its batches; when it returns no rows, one empty batch with
    /// the query's schema is returned, so the result can always be written.
    pub async fn query_for_write(ctx: &SessionContext, sql: &str) -> Result<Vec<RecordBatch>> {
        let df = ctx
            .sql(sql)
            .await
            .map_err(|source| query_error(sql, source))?;
        let schema = std::sync::Arc::new(df.schema().as_arrow().clone());
        let mut batches = df
            .collect()
            .await
            .map_err(|source| query_error(sql, source))?;
        batches.retain(|b| b.num_rows() > 0);
        if batches.is_empty() {
            batches.push(RecordBatch::new_empty(schema));
        }
        Ok(batches)
    }

    /// Whether the table registered in `ctx` as `alias` has `column` (tables written by an
    /// older Spire may lack one added since).
    pub async fn has_column(ctx: &SessionContext, alias: &str, column: &str) -> bool {
        match ctx.table(alias).await {
            Ok(df) => df.schema().has_column_with_unqualified_name(column),
            Err(_) => false,
        }
    }

    /// Runs a query and collects its batches.
    pub async fn query(ctx: &SessionContext, sql: &str) -> Result<Vec<RecordBatch>> {
        let df = ctx
            .sql(sql)
            .await
            .map_err(|source| query_error(sql, source))?;
        df.collect()
            .await
            .map_err(|source| query_error(sql, source))
    }
}

fn query_error(sql: &str, source: deltalake::datafusion::error::DataFusionError) -> LakeError {
    let short: String = sql.split_whitespace().collect::<Vec<_>>().join(" ");
    let short = if short.len() > 200 {
        format!("{}…", &short[..short.floor_char_boundary(200)])
    } else {
        short
    };
    LakeError::query(format!("query `{short}`"), source)
}

/// How many times [`Lake::overwrite`] tries a commit that concurrent writers conflict with.
pub const OVERWRITE_ATTEMPTS: u32 = 8;

/// The wait before retry `attempt` of a conflicting commit: 50 ms doubling, capped at
/// 3.2 s, times a factor in [0.5, 1.5) so that writers which collided do not collide again.
fn conflict_wait(attempt: u32) -> std::time::Duration {
    use std::hash::{BuildHasher, Hasher};
    let base = 50u64 << attempt.saturating_sub(1).min(6);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(attempt);
    let jitter = 0.5 + (h.finish() % 1000) as f64 / 1000.0;
    std::time::Duration::from_millis((base as f64 * jitter) as u64)
}

pub(crate) fn delta(table: &str, source: deltalake::DeltaTableError) -> LakeError {
    LakeError::delta(table, source)
}

/// A table's loaded version as the signed integer the registry records.
pub(crate) fn version_of(t: &DeltaTable) -> Option<i64> {
    t.version().and_then(|v| i64::try_from(v).ok())
}

fn normalize_all(batches: Vec<RecordBatch>) -> Result<Vec<RecordBatch>> {
    batches.into_iter().map(crate::columns::normalize).collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Some(b) = std::str::from_utf8(&bytes[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One application transaction a [`Lake::append_cas`] commit moves on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnAdvance {
    /// The application-transaction id (one per stream partition).
    pub id: String,
    /// The version the table must still record (`None`: never recorded).
    pub expected: Option<i64>,
    /// The version the commit records.
    pub version: i64,
}

/// The outcome of [`Lake::append_cas`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CasOutcome {
    /// Committed; the table's new version.
    Committed(Option<i64>),
    /// Not committed: the table records another version for `id`.
    Conflict {
        /// The id that did not match.
        id: String,
        /// What the caller expected.
        expected: Option<i64>,
        /// What the table records.
        found: Option<i64>,
    },
}
