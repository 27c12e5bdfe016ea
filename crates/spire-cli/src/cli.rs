//! Command-line arguments.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Spire: audience segmentation at media scale — events in, segments out.
#[derive(Debug, Parser)]
#[command(name = "spire", version, about, long_about = None)]
pub struct Cli {
    /// Project folder (holds spire.toml and segments/).
    #[arg(long, global = true, default_value = ".", env = "SPIRE_PROJECT")]
    pub project: PathBuf,
    /// Apply the `[env.NAME]` section of spire.toml (e.g. production storage URLs).
    #[arg(long = "env", global = true, value_name = "NAME")]
    pub env_name: Option<String>,
    /// Print machine-readable JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Scaffold a synthetic project and run the whole lifecycle end to end.
    ///
    /// Example: spire demo --dir spire-demo --users 100000 --days 30
    Demo(DemoArgs),
    /// Create a new project on the embedded defaults (local Delta lake, SQLite registry).
    ///
    /// Example: spire init my-project
    Init {
        /// Folder to create.
        dir: PathBuf,
    },
    /// Check spire.toml and segments/*.toml, reporting every problem with file and key.
    ///
    /// Example: spire validate --project my-project
    Validate,
    /// Ingest sources into events_raw / dead_letters, then clean the touched dates into events.
    ///
    /// Example: spire ingest --path 'exports/*.jsonl' --json
    Ingest(IngestArgs),
    /// Rebuild event dates of `events` from `events_raw` (dedupe, bot flags).
    ///
    /// Example: spire clean --date 2026-11-01
    Clean {
        /// Dates to rebuild (all when omitted).
        #[arg(long = "date", value_name = "YYYY-MM-DD")]
        dates: Vec<String>,
    },
    /// Feature snapshots.
    #[command(subcommand)]
    Features(FeaturesCommand),
    /// Train, evaluate, register, score and threshold segments (dataset → segments).
    ///
    /// Example: spire run reads-gadgets gadget-fans   |   spire run --all
    Run {
        /// Segments or families to run.
        segments: Vec<String>,
        /// Run every segment.
        #[arg(long, conflicts_with = "segments")]
        all: bool,
    },
    /// Tracked runs.
    #[command(subcommand)]
    Runs(RunsCommand),
    /// Registered models.
    #[command(subcommand)]
    Models(ModelsCommand),
    /// Segment memberships.
    #[command(subcommand)]
    Segments(SegmentsCommand),
    /// Model-library tools that need no project.
    #[command(subcommand)]
    Ml(MlCommand),
    /// Run SQL over the lake tables (DataFusion).
    ///
    /// Example: spire sql "SELECT segment, COUNT(*) FROM segments GROUP BY segment"
    Sql {
        /// The query.
        query: String,
        /// Print at most this many rows.
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Serve the segment lookup API and the MLflow-compatible tracking API.
    ///
    /// MLflow clients point their tracking URI at the server (MLFLOW_TRACKING_URI=http://ADDR,
    /// and MLFLOW_TRACKING_TOKEN once tokens exist). Without any API token (`spire tokens
    /// create`) the server listens on loopback only; with one, every request but /healthz
    /// needs a token. The `champion` alias moves through the API only with an admin token.
    ///
    /// Example: spire serve --addr 127.0.0.1:8080 ; curl localhost:8080/v1/users/u0000042/segments
    Serve {
        /// Address to listen on (a non-loopback address needs an API token to exist).
        #[arg(long, default_value = "127.0.0.1:8080")]
        addr: std::net::SocketAddr,
        /// An extra admin token, e.g. for automation, that may move the protected
        /// `champion` alias (sent as `Authorization: Bearer TOKEN`). On its own it opens
        /// nothing else: tokens made with `spire tokens create` decide who may call.
        #[arg(long, env = "SPIRE_ADMIN_TOKEN", hide_env_values = true)]
        admin_token: Option<String>,
    },
    /// Show a segment's lifecycle DAG and the batched tasks of its next run.
    ///
    /// Example: spire dag reads-gadgets   |   spire dag reads-gadgets --dot | dot -Tpng -o dag.png
    Dag {
        /// Segment name (a family member's concrete name, e.g. reads-gadgets).
        segment: String,
        /// Print Graphviz DOT instead of text.
        #[arg(long)]
        dot: bool,
    },
    /// Run the scheduler: each tick enqueues the batched tasks of every segment due.
    ///
    /// One scheduler is active per registry database; another one started against it waits
    /// as a standby and takes over when the first stops.
    ///
    /// Example: spire scheduler --interval-secs 30   |   spire scheduler --once --json
    Scheduler {
        /// Seconds between ticks.
        #[arg(long, default_value_t = 30)]
        interval_secs: u64,
        /// Tick once and exit (e.g. from cron or a test).
        #[arg(long)]
        once: bool,
    },
    /// Run a worker: claims tasks from the queue (leases, heartbeats) and runs their stages.
    ///
    /// Start any number, on any machine sharing the registry database and the lake.
    ///
    /// Example: spire worker   |   spire worker --drain
    Worker {
        /// The worker's name in leases and attempts (default: HOST:PID:START_TICKS).
        #[arg(long)]
        id: Option<String>,
        /// Exit once the queue holds nothing that could still run (waiting while other
        /// workers' tasks run, since their dependents may follow) instead of waiting for
        /// the next schedule.
        #[arg(long)]
        drain: bool,
    },
    /// Queue every run of a segment between two dates (inclusive), whatever its catch-up
    /// policy; runs already queued are not added twice.
    ///
    /// Example: spire backfill reads-gadgets --from 2026-11-01 --to 2026-11-07
    Backfill {
        /// Segment name.
        segment: String,
        /// First date (YYYY-MM-DD).
        #[arg(long)]
        from: String,
        /// Last date (YYYY-MM-DD).
        #[arg(long)]
        to: String,
    },
    /// Export the fleet's schedules for another orchestrator.
    #[command(subcommand)]
    Export(ExportCommand),
    /// Run one batched task directly (what exported Airflow tasks call).
    #[command(subcommand)]
    Task(TaskCommand),
    /// Segment schedules: list, pause, resume.
    #[command(subcommand)]
    Schedule(ScheduleCommand),
    /// Scheduled tasks: list, show one with its attempts.
    #[command(subcommand)]
    Tasks(TasksCommand),
    /// API tokens for `spire serve` (stored hashed in the registry).
    #[command(subcommand)]
    Tokens(TokensCommand),
    /// Records intake rejected: list them, or replay them after a config fix.
    #[command(subcommand, name = "dead-letters")]
    DeadLetters(DeadLettersCommand),
    /// Delta table upkeep: compact small files, remove files no recent version needs.
    #[command(subcommand)]
    Lake(LakeCommand),
    /// Remove deleted runs for good: their artifacts (local or S3), then their rows.
    ///
    /// Runs that are the source of a model version are kept.
    ///
    /// Example: spire gc --older-than 30d --dry-run
    Gc {
        /// Only runs deleted at least this long ago, e.g. `30d`, `12h`, `0s`.
        #[arg(long, default_value = "0s", value_name = "DURATION")]
        older_than: String,
        /// Report what would be removed, remove nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

/// `spire export ...`.
#[derive(Debug, Subcommand)]
pub enum ExportCommand {
    /// Write one Airflow DAG file per schedule group (tasks run `spire task run`), plus
    /// pools.json (`airflow pools import`) and manifest.json.
    ///
    /// Example: spire export airflow --out dags/ --spire-command "spire --project /srv/segments"
    Airflow {
        /// Output folder (created if missing).
        #[arg(long)]
        out: PathBuf,
        /// How Airflow's workers call Spire (default: this binary with this project).
        #[arg(long)]
        spire_command: Option<String>,
    },
}

/// `spire task ...`.
#[derive(Debug, Subcommand)]
pub enum TaskCommand {
    /// Run one task of an exported DAG for a logical time, in this process.
    ///
    /// Example: spire task run --dag spire__0_6_x_x_x__utc --task 'train[behaviour/fused]'
    /// --logical-time 2026-11-20T06:00:00+00:00
    Run {
        /// The DAG id (`spire export airflow` names them).
        #[arg(long)]
        dag: String,
        /// The task's label, e.g. `score[behaviour]`.
        #[arg(long)]
        task: String,
        /// The run's logical time (RFC 3339).
        #[arg(long)]
        logical_time: String,
    },
}

/// `spire schedule ...`.
#[derive(Debug, Subcommand)]
pub enum ScheduleCommand {
    /// Every segment's schedule, next run and state.
    ///
    /// Example: spire schedule list --json
    List,
    /// Stop scheduling a segment (its missed runs follow its catch-up policy on resume).
    ///
    /// Example: spire schedule pause reads-gadgets
    Pause {
        /// Segment name.
        segment: String,
    },
    /// Schedule a paused segment again.
    ///
    /// Example: spire schedule resume reads-gadgets
    Resume {
        /// Segment name.
        segment: String,
    },
}

/// `spire dead-letters ...`.
#[derive(Debug, Subcommand)]
pub enum DeadLettersCommand {
    /// Pending dead letters (not replayed yet), with counts by reason.
    ///
    /// Example: spire dead-letters list --source clickstream --limit 20
    List {
        /// Only this source's.
        #[arg(long)]
        source: Option<String>,
        /// Show at most this many records (the counts cover all).
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// Parse pending dead letters again with the current config (after fixing a field
    /// mapping or a limit); those that pass join events_raw under their original positions
    /// and their dates are cleaned again. Running it twice appends nothing twice.
    ///
    /// Example: spire dead-letters replay --source clickstream --dry-run
    Replay {
        /// Only this source's.
        #[arg(long)]
        source: Option<String>,
        /// Report what would be replayed, write nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

/// `spire lake ...`.
#[derive(Debug, Subcommand)]
pub enum LakeCommand {
    /// Compact the small files streaming appends leave into files of about --target-mb
    /// (delta-rs optimize). Rows and intake checkpoints are unchanged; the old files stay
    /// until a vacuum.
    ///
    /// Example: spire lake optimize events_raw dead_letters
    Optimize {
        /// Tables to compact (default: every table in the lake).
        tables: Vec<String>,
        /// Target file size in MiB.
        #[arg(long, default_value_t = 128)]
        target_mb: u64,
    },
    /// Delete the files no version newer than --retain-hours refers to (delta-rs vacuum).
    ///
    /// Example: spire lake vacuum --retain-hours 168 --dry-run
    Vacuum {
        /// Tables to vacuum (default: every table in the lake).
        tables: Vec<String>,
        /// Keep every file a version of the last H hours needs (Delta's default: 168).
        #[arg(long, default_value_t = spire_lake::maintenance::DEFAULT_RETENTION_HOURS, value_name = "H")]
        retain_hours: u64,
        /// List what would be deleted, delete nothing.
        #[arg(long)]
        dry_run: bool,
        /// Allow a retention below 168 hours (nothing may still read or write an older
        /// version).
        #[arg(long)]
        force: bool,
    },
}

/// `spire tasks ...`.
#[derive(Debug, Subcommand)]
pub enum TasksCommand {
    /// Tasks, newest run first, with counts per state.
    ///
    /// Example: spire tasks list --state failed --segment reads-gadgets
    List {
        /// Only tasks in this state.
        #[arg(long, value_parser = ["queued", "running", "succeeded", "failed"])]
        state: Option<String>,
        /// Only tasks serving this segment.
        #[arg(long)]
        segment: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// One task: what it runs, its attempts and every error (the "logs" of its runs).
    ///
    /// Example: spire tasks logs 42
    Logs {
        /// Task id.
        task_id: i64,
    },
    /// Delete finished tasks (succeeded or failed) with their attempts, keeping those an
    /// unfinished task depends on. `spire scheduler` also does this by itself, for tasks
    /// older than `[scheduler] keep_finished_days`.
    ///
    /// Example: spire tasks purge --older-than 30d
    Purge {
        /// Only tasks finished at least this long ago, e.g. `30d`, `12h`, `0s`.
        #[arg(long, value_name = "DURATION")]
        older_than: String,
    },
}

/// `spire tokens ...`.
#[derive(Debug, Subcommand)]
pub enum TokensCommand {
    /// Make a token; its secret is printed once and stored only as a hash.
    ///
    /// Example: spire tokens create ad-server --role read
    Create {
        /// A name for the token (unique among live tokens), e.g. the client it is for.
        name: String,
        /// `read` (lookups, searches, downloads), `write` (also logging, registering,
        /// uploading) or `admin` (also moving `champion`).
        #[arg(long, value_parser = ["read", "write", "admin"])]
        role: String,
    },
    /// List tokens (never their secrets).
    ///
    /// Example: spire tokens list --json
    List,
    /// Revoke a token by name or id; it stops working at once.
    ///
    /// Example: spire tokens revoke ad-server
    Revoke {
        /// The token's name or id.
        token: String,
    },
}

/// `spire demo` arguments.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Project folder to create (reused if it already holds a demo).
    #[arg(long, default_value = "spire-demo")]
    pub dir: PathBuf,
    /// Synthetic users.
    #[arg(long, default_value_t = 100_000)]
    pub users: u64,
    /// Days of traffic.
    #[arg(long, default_value_t = 30)]
    pub days: u32,
    /// Random seed.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
}

/// `spire ingest` arguments.
#[derive(Debug, Args)]
pub struct IngestArgs {
    /// Only these sources (all configured sources when omitted).
    #[arg(long = "source", value_name = "NAME")]
    pub sources: Vec<String>,
    /// Ingest files matching this path or glob instead of the configured sources.
    #[arg(long, value_name = "FILE_OR_GLOB", conflicts_with = "sources")]
    pub path: Option<String>,
    /// Keep consuming a stream (a kafka or kinesis source) until SIGTERM or Ctrl-C, which commit the
    /// batch in flight before stopping. Reads the one stream source, or the one `--source`.
    #[arg(long, conflicts_with = "path")]
    pub follow: bool,
    /// With --follow: how often touched dates are cleaned into `events` and a status line
    /// (a JSON line with --json: counts, rate, lag per partition or shard) is printed.
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "30s",
        requires = "follow"
    )]
    pub clean_every: String,
    /// With --follow: compact events_raw and dead_letters this often (e.g. 1h); off when
    /// omitted.
    #[arg(long, value_name = "DURATION", requires = "follow")]
    pub compact_every: Option<String>,
}

/// `spire features ...`.
#[derive(Debug, Subcommand)]
pub enum FeaturesCommand {
    /// Refresh daily partials and write a snapshot.
    ///
    /// Example: spire features build --as-of 2026-11-01
    Build {
        /// Snapshot date (default: the day after the last event date).
        #[arg(long, value_name = "YYYY-MM-DD")]
        as_of: Option<String>,
        /// Only this feature set.
        #[arg(long = "feature-set", value_name = "NAME")]
        feature_sets: Vec<String>,
    },
}

/// `spire runs ...`.
#[derive(Debug, Subcommand)]
pub enum RunsCommand {
    /// List runs, newest first.
    ///
    /// Example: spire runs list --segment reads-gadgets --json
    List {
        /// Only runs of this segment.
        #[arg(long)]
        segment: Option<String>,
        /// MLflow search filter, e.g. `metrics.auc > 0.8 and params.l2 = '0.0001'`.
        #[arg(long)]
        filter: Option<String>,
        /// Ordering, e.g. `metrics.auc DESC` (repeatable).
        #[arg(long = "order-by", value_name = "TERM")]
        order_by: Vec<String>,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Show one run.
    ///
    /// Example: spire runs show 3f2a...
    Show {
        /// Run id.
        run_id: String,
    },
}

/// `spire models ...`.
#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// List registered models with their champion.
    ///
    /// Example: spire models list --json
    List,
    /// Point an alias (default `champion`) at a version, by hand; recorded in the audit log.
    ///
    /// Example: spire models promote reads-gadgets 3 --reason "approved by editorial"
    Promote {
        /// Model (segment) name.
        model: String,
        /// Version to promote.
        version: i64,
        /// Why (kept in the audit log).
        #[arg(long)]
        reason: String,
        /// The alias to move.
        #[arg(long, default_value = "champion")]
        alias: String,
    },
    /// Move an alias (default `champion`) back to the version it pointed at before.
    ///
    /// Example: spire models rollback reads-gadgets --reason "AUC dropped in production"
    Rollback {
        /// Model (segment) name.
        model: String,
        /// Why (kept in the audit log).
        #[arg(long)]
        reason: String,
        /// The alias to move back.
        #[arg(long, default_value = "champion")]
        alias: String,
    },
    /// The audit log of a model's alias moves: who, when, why.
    ///
    /// Example: spire models history reads-gadgets
    History {
        /// Model (segment) name.
        model: String,
    },
}

/// `spire segments ...`.
#[derive(Debug, Subcommand)]
pub enum SegmentsCommand {
    /// Segment sizes in the latest snapshot.
    ///
    /// Example: spire segments list
    List,
    /// A user's segments.
    ///
    /// Example: spire segments get u0000042
    Get {
        /// User id.
        user_id: String,
    },
}

/// `spire ml ...`.
#[derive(Debug, Subcommand)]
pub enum MlCommand {
    /// Cross-validate an algorithm on any CSV or Parquet table (types are inferred: numbers
    /// stay numeric, everything else is one-hot encoded, missing numbers are imputed).
    ///
    /// Example: spire ml evaluate --data bank-full.csv --label y --drop duration --cv 5
    ///
    /// Example: spire ml evaluate --data bank.csv --label y --fold-column fold
    /// --algorithm gbdt --params learning_rate=0.05,n_estimators=300
    Evaluate(EvaluateArgs),
}

/// `spire ml evaluate` arguments.
#[derive(Debug, Args)]
pub struct EvaluateArgs {
    /// The table: a .parquet file, or delimited text with a header line.
    #[arg(long, value_name = "FILE")]
    pub data: PathBuf,
    /// The label column.
    #[arg(long, value_name = "COLUMN")]
    pub label: String,
    /// The label value that counts as positive (inferred for yes/no, true/false, 1/0).
    #[arg(long, value_name = "VALUE")]
    pub positive: Option<String>,
    /// Columns to leave out, comma-separated (identifiers, leaky columns).
    #[arg(long, value_name = "COL,...", value_delimiter = ',')]
    pub drop: Vec<String>,
    /// Algorithm name: `logistic_regression` or `gbdt` (gradient-boosted trees).
    #[arg(long, default_value = "logistic_regression")]
    pub algorithm: String,
    /// Algorithm params, e.g. `l2=0.001,max_iter=200` (logistic_regression: l2, l1, max_iter,
    /// tol, fit_intercept, standardize) or `learning_rate=0.05,n_estimators=300` (gbdt:
    /// n_estimators, learning_rate, max_depth, max_leaves, growth, min_leaf_weight, l1, l2,
    /// gamma, subsample, colsample, max_bins, seed, nthreads).
    #[arg(long, value_name = "K=V,...", default_value = "")]
    pub params: String,
    /// Number of stratified folds (default 5).
    #[arg(long = "cv", value_name = "K")]
    pub folds: Option<usize>,
    /// Seed of the fold assignment.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Read each row's fold from this column (integers or labels, one distinct value per
    /// fold) instead of making stratified folds, e.g. to compare with another tool on the
    /// same folds. The column is not a feature.
    #[arg(long, value_name = "COLUMN")]
    pub fold_column: Option<String>,
    /// Field delimiter of a text file (sniffed from the header when omitted).
    #[arg(long, value_name = "CHAR")]
    pub delimiter: Option<char>,
    /// Numeric columns to transform with ln(1 + x), comma-separated.
    #[arg(long, value_name = "COL,...", value_delimiter = ',')]
    pub log1p: Vec<String>,
    /// Also fit on every row and write the model (encoder + estimator) to this file.
    #[arg(long, value_name = "FILE")]
    pub save: Option<PathBuf>,
}
