//! One function per command; `dispatch` routes to them.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::json;
use spire_core::config::{load_project, LoadOptions};
use spire_lake::Lake;
use spire_pipeline::demo::{self, DemoOptions};
use spire_pipeline::index::SegmentIndex;
use spire_pipeline::run;
use spire_pipeline::stages::{features, ingest};
use spire_pipeline::{PipelineError, Progress, Result, Workspace};
use spire_registry::{ModelRegistry, RunFilter, RunSearch, TrackingStore};

use crate::cli::{
    Cli, Command, EvaluateArgs, FeaturesCommand, MlCommand, ModelsCommand, RunsCommand,
    SegmentsCommand,
};
use crate::output::{self, metric, table};
use crate::progress::Terminal;

fn options(cli: &Cli) -> LoadOptions {
    LoadOptions::from_env(cli.env_name.clone())
}

async fn open(cli: &Cli) -> Result<Workspace> {
    Workspace::open(&cli.project, &options(cli)).await
}

fn date(text: &str) -> Result<chrono::NaiveDate> {
    spire_core::time::parse_date(text).map_err(PipelineError::InvalidInput)
}

/// Runs the parsed command.
pub async fn dispatch(cli: Cli) -> Result<()> {
    let progress = Terminal::new(cli.json);
    match &cli.command {
        Command::Demo(a) => {
            let started = std::time::Instant::now();
            let report = demo::demo(
                &a.dir,
                &DemoOptions {
                    users: a.users,
                    days: a.days,
                    seed: a.seed,
                },
                &progress,
            )
            .await?;
            if cli.json {
                output::json(&report);
                return Ok(());
            }
            let rows: Vec<Vec<String>> = report
                .rows
                .iter()
                .map(|r| {
                    vec![
                        r.segment.clone(),
                        metric(r.auc),
                        metric(r.pr_auc),
                        format!("{}/{}", r.positives_test, r.n_test),
                        r.audience.to_string(),
                        metric(r.oracle_auc),
                        metric(r.control_auc),
                    ]
                })
                .collect();
            println!();
            table(
                &[
                    "segment",
                    "AUC",
                    "PR AUC",
                    "pos/test",
                    "audience",
                    "oracle AUC",
                    "control AUC",
                ],
                &rows,
            );
            for s in report
                .run
                .scored
                .iter()
                .filter(|s| s.model_version.is_none())
            {
                println!("{:<24} rule segment: {} members", s.segment, s.members);
            }
            println!();
            println!("mean test AUC        {}", metric(report.mean_auc));
            println!(
                "mean oracle AUC      {}  (the generator's true propensity on the same test users)",
                metric(report.mean_oracle_auc)
            );
            println!(
                "mean control AUC     {}  (models fitted on shuffled labels)",
                metric(report.mean_control_auc)
            );
            for s in &report.ingest.sources {
                let r = &s.reconciliation;
                println!(
                    "ingest {}: read {} = accepted {} (bot-flagged {}) + dead-lettered {} + duplicates {}",
                    s.intake.source, r.read, r.accepted, r.bot_flagged, r.dead_lettered, r.duplicates
                );
            }
            println!(
                "done in {:.1} s; the project is in {} (try: spire --project {} segments list)",
                started.elapsed().as_secs_f64(),
                report.dir,
                report.dir
            );
            Ok(())
        }
        Command::Init { dir } => init(dir),
        Command::Validate => {
            let p = load_project(&cli.project, &options(&cli))?;
            if cli.json {
                output::json(
                    &json!({"valid": true, "segments": p.segments.len(), "feature_sets": p.feature_sets.len(), "sources": p.sources.len()}),
                );
            } else {
                println!(
                    "{}: valid ({} sources, {} feature sets, {} segment specs)",
                    cli.project.join("spire.toml").display(),
                    p.sources.len(),
                    p.feature_sets.len(),
                    p.segments.len()
                );
            }
            Ok(())
        }
        Command::Ingest(a) => {
            let ws = open(&cli).await?;
            let target = match (&a.path, a.sources.is_empty()) {
                (Some(p), _) => ingest::IngestTarget::Path(p.clone()),
                (None, true) => ingest::IngestTarget::All,
                (None, false) => ingest::IngestTarget::Sources(a.sources.clone()),
            };
            let s = if a.follow {
                follow(&cli, &ws, a, &progress).await?
            } else {
                ingest::ingest(&ws, &target, &progress).await?
            };
            if cli.json && a.follow {
                // One JSON document per line: the status lines, then this summary.
                match serde_json::to_string(&s) {
                    Ok(line) => println!("{line}"),
                    Err(e) => eprintln!("error: cannot serialize output: {e}"),
                }
            } else if cli.json {
                output::json(&s);
            } else {
                let rows: Vec<Vec<String>> = s
                    .sources
                    .iter()
                    .map(|x| {
                        let r = &x.reconciliation;
                        vec![
                            x.intake.source.clone(),
                            r.read.to_string(),
                            r.accepted.to_string(),
                            r.bot_flagged.to_string(),
                            r.dead_lettered.to_string(),
                            r.duplicates.to_string(),
                        ]
                    })
                    .collect();
                table(
                    &[
                        "source",
                        "read",
                        "accepted",
                        "bot-flagged",
                        "dead-lettered",
                        "duplicates",
                    ],
                    &rows,
                );
                for n in s.sources.iter().flat_map(|x| &x.intake.notes) {
                    println!("note: {n}");
                }
            }
            Ok(())
        }
        Command::Clean { dates } => {
            let ws = open(&cli).await?;
            let dates = if dates.is_empty() {
                None
            } else {
                Some(dates.iter().map(|d| date(d)).collect::<Result<Vec<_>>>()?)
            };
            progress.start("clean", 0);
            let mut tick = |done: usize, _: usize| progress.update("clean", done as u64);
            let r = spire_ingest::clean::clean(&ws.lake, &ws.project.cleaning, dates, &mut tick)
                .await?;
            progress.finish("clean", &format!("{} dates rebuilt", r.dates));
            if cli.json {
                output::json(&r);
            } else {
                println!("{} dates rebuilt: {} events ({} bot-flagged), {} duplicates removed; events version {:?}", r.dates, r.events, r.bot_events, r.duplicates, r.version);
            }
            Ok(())
        }
        Command::Features(FeaturesCommand::Build {
            as_of,
            feature_sets,
        }) => {
            let ws = open(&cli).await?;
            let as_of = match as_of {
                Some(d) => date(d)?,
                None => features::default_as_of(&ws).await?,
            };
            let built = features::build(&ws, feature_sets, &[as_of], &progress).await?;
            if cli.json {
                output::json(&built);
            } else {
                let rows: Vec<Vec<String>> = built
                    .iter()
                    .flat_map(|b| b.snapshots.iter())
                    .map(|s| {
                        vec![
                            s.feature_set.clone(),
                            s.as_of.to_string(),
                            s.feature_set_version.to_string(),
                            s.users.to_string(),
                            s.columns.len().to_string(),
                        ]
                    })
                    .collect();
                table(
                    &["feature set", "as of", "version", "users", "features"],
                    &rows,
                );
            }
            Ok(())
        }
        Command::Run { segments, all } => {
            let ws = open(&cli).await?;
            if segments.is_empty() && !all {
                return Err(PipelineError::InvalidInput(
                    "name the segments to run, or pass --all".into(),
                ));
            }
            let s = run::run(&ws, segments, &progress).await?;
            if cli.json {
                output::json(&s);
            } else {
                for r in &s.recovered {
                    println!(
                        "settled run {} ({}) left by an interrupted run: {} — {}",
                        r.run_id,
                        r.segment,
                        r.status.as_str(),
                        r.reason
                    );
                }
                let rows: Vec<Vec<String>> = s
                    .trained
                    .iter()
                    .map(|t| {
                        let audience = s
                            .scored
                            .iter()
                            .find(|x| x.segment == t.segment)
                            .map_or(0, |x| x.members);
                        vec![
                            t.segment.clone(),
                            t.model_version.to_string(),
                            metric(t.evaluation.auc),
                            metric(t.evaluation.pr_auc),
                            t.evaluation.positives_test.to_string(),
                            audience.to_string(),
                            t.gate.clone(),
                        ]
                    })
                    .collect();
                table(
                    &[
                        "segment", "version", "AUC", "PR AUC", "pos test", "audience", "gate",
                    ],
                    &rows,
                );
                for x in s.scored.iter().filter(|x| x.model_version.is_none()) {
                    println!(
                        "{}: {} members{}",
                        x.segment,
                        x.members,
                        x.skipped
                            .as_ref()
                            .map(|r| format!(" (skipped: {r})"))
                            .unwrap_or_default()
                    );
                }
            }
            Ok(())
        }
        Command::Runs(RunsCommand::List {
            segment,
            filter,
            order_by,
            limit,
        }) => {
            let ws = open(&cli).await?;
            let runs = if filter.is_some() || !order_by.is_empty() {
                let mut runs = Vec::new();
                let mut page_token = None;
                loop {
                    let page = ws
                        .registry
                        .search_runs(&RunSearch {
                            filter: filter.clone().unwrap_or_default(),
                            order_by: order_by.clone(),
                            max_results: 1000,
                            page_token,
                            ..RunSearch::default()
                        })
                        .await?;
                    runs.extend(
                        page.runs
                            .into_iter()
                            .filter(|r| segment.as_ref().is_none_or(|s| &r.segment == s)),
                    );
                    page_token = page.next_page_token;
                    if page_token.is_none() || runs.len() >= *limit {
                        break;
                    }
                }
                runs.truncate(*limit);
                runs
            } else {
                ws.registry
                    .list_runs(&RunFilter {
                        segment: segment.clone(),
                        limit: *limit,
                        ..RunFilter::default()
                    })
                    .await?
            };
            if cli.json {
                output::json(&runs);
            } else {
                let rows: Vec<Vec<String>> = runs
                    .iter()
                    .map(|r| {
                        let m = |k: &str| r.metrics.get(k).copied().map_or("-".into(), metric);
                        vec![
                            r.run_id.clone(),
                            r.segment.clone(),
                            r.status.to_string(),
                            m("auc"),
                            m("pr_auc"),
                            r.started_at.format("%Y-%m-%d %H:%M:%S").to_string(),
                        ]
                    })
                    .collect();
                table(
                    &["run", "segment", "status", "AUC", "PR AUC", "started"],
                    &rows,
                );
            }
            Ok(())
        }
        Command::Runs(RunsCommand::Show { run_id }) => {
            let ws = open(&cli).await?;
            let run = ws.registry.get_run(run_id).await?;
            if cli.json {
                output::json(&run);
            } else {
                println!(
                    "run {} ({}), segment {}, experiment {}",
                    run.run_id, run.status, run.segment, run.experiment
                );
                println!(
                    "started {} ended {}",
                    run.started_at,
                    run.ended_at.map(|d| d.to_string()).unwrap_or("-".into())
                );
                println!("config {} · spire {}", run.config_hash, run.spire_version);
                for i in &run.inputs {
                    println!("read  {} @ version {}", i.table, i.version);
                }
                for (k, v) in &run.params {
                    println!("param {k} = {v}");
                }
                for (k, v) in &run.metrics {
                    println!("metric {k} = {v}");
                }
                for (k, v) in &run.tags {
                    println!("tag {k} = {v}");
                }
                if let Some(e) = &run.error {
                    println!("error: {e}");
                }
            }
            Ok(())
        }
        Command::Models(ModelsCommand::Promote {
            model,
            version,
            reason,
            alias,
        }) => {
            let ws = open(&cli).await?;
            let v = ws.registry.get_model_version(model, *version).await?;
            ws.registry
                .set_alias(model, alias, v.version, &actor(), reason)
                .await?;
            report_move(&cli, model, alias, v.version);
            Ok(())
        }
        Command::Models(ModelsCommand::Rollback {
            model,
            reason,
            alias,
        }) => {
            let ws = open(&cli).await?;
            let current = ws.registry.get_alias(model, alias).await?.ok_or_else(|| {
                PipelineError::NotFound(format!("model `{model}` has no `{alias}` to roll back"))
            })?;
            // The newest move onto the current version says where the alias was before.
            let history = ws.registry.alias_history(model).await?;
            let previous = history
                .iter()
                .rev()
                .find(|e| e.alias == *alias && e.to_version == Some(current.version))
                .and_then(|e| e.from_version)
                .ok_or_else(|| {
                    PipelineError::InvalidInput(format!(
                        "`{alias}` of `{model}` has no earlier version to roll back to \
                         (it was first set to v{}); use `spire models promote` instead",
                        current.version
                    ))
                })?;
            ws.registry
                .set_alias(
                    model,
                    alias,
                    previous,
                    &actor(),
                    &format!("rollback from v{}: {reason}", current.version),
                )
                .await?;
            report_move(&cli, model, alias, previous);
            Ok(())
        }
        Command::Models(ModelsCommand::History { model }) => {
            let ws = open(&cli).await?;
            let events = ws.registry.alias_history(model).await?;
            if cli.json {
                output::json(&events);
            } else {
                let v = |x: Option<i64>| x.map_or("-".to_string(), |v| format!("v{v}"));
                let rows: Vec<Vec<String>> = events
                    .iter()
                    .map(|e| {
                        vec![
                            e.at.format("%Y-%m-%d %H:%M:%S").to_string(),
                            e.alias.clone(),
                            format!("{} → {}", v(e.from_version), v(e.to_version)),
                            e.actor.clone(),
                            e.reason.clone(),
                        ]
                    })
                    .collect();
                table(&["when", "alias", "move", "who", "why"], &rows);
            }
            Ok(())
        }
        Command::Models(ModelsCommand::List) => {
            let ws = open(&cli).await?;
            let models = ws.registry.list_models().await?;
            if cli.json {
                output::json(&models);
            } else {
                let rows: Vec<Vec<String>> = models
                    .iter()
                    .map(|m| {
                        vec![
                            m.name.clone(),
                            m.versions.to_string(),
                            m.latest_version.to_string(),
                            m.aliases
                                .get("champion")
                                .map_or("-".into(), |v| v.to_string()),
                        ]
                    })
                    .collect();
                table(&["model", "versions", "latest", "champion"], &rows);
            }
            Ok(())
        }
        Command::Segments(SegmentsCommand::List) => {
            let ws = open(&cli).await?;
            let index = SegmentIndex::load(&ws.lake).await?;
            let sizes = index.sizes();
            if cli.json {
                output::json(&sizes);
            } else {
                let rows: Vec<Vec<String>> = sizes
                    .iter()
                    .map(|s| {
                        vec![
                            s.segment.clone(),
                            s.members.to_string(),
                            s.as_of.to_string(),
                            s.model_version.map_or("rule".into(), |v| format!("v{v}")),
                        ]
                    })
                    .collect();
                table(&["segment", "members", "as of", "model"], &rows);
            }
            Ok(())
        }
        Command::Segments(SegmentsCommand::Get { user_id }) => {
            let ws = open(&cli).await?;
            let index = SegmentIndex::load(&ws.lake).await?;
            let m = index.user(user_id);
            if cli.json {
                output::json(&json!({"user_id": user_id, "segments": m}));
            } else if m.is_empty() {
                println!("{user_id}: no segments");
            } else {
                let rows: Vec<Vec<String>> = m
                    .iter()
                    .map(|s| {
                        vec![
                            s.segment.clone(),
                            metric(s.score),
                            s.model_version.map_or("rule".into(), |v| format!("v{v}")),
                            s.as_of.to_string(),
                        ]
                    })
                    .collect();
                table(&["segment", "score", "model", "as of"], &rows);
            }
            Ok(())
        }
        Command::Ml(MlCommand::Evaluate(a)) => ml_evaluate(&cli, a, &progress).await,
        Command::Sql { query, limit } => sql(&cli, query, *limit).await,
        Command::Serve { addr, admin_token } => {
            let ws = open(&cli).await?;
            crate::admin::serve(ws, *addr, admin_token.as_deref()).await
        }
        Command::Dag { segment, dot } => {
            let ws = open(&cli).await?;
            let dag =
                spire_pipeline::scheduling::segment_dag(&ws, segment, chrono::Utc::now()).await?;
            if cli.json {
                output::json(&json!({
                    "segment": dag.model.name,
                    "logical_time": dag.logical_time,
                    "stages": spire_scheduler::dag::stages_of(&dag.model),
                    "tasks": dag.plan.tasks,
                }));
            } else if *dot {
                print!(
                    "{}",
                    spire_scheduler::dag::render_dot(&dag.model, &dag.plan)
                );
            } else {
                println!(
                    "next run: {}",
                    dag.logical_time.format("%Y-%m-%d %H:%M UTC")
                );
                print!(
                    "{}",
                    spire_scheduler::dag::render_text(&dag.model, &dag.plan)
                );
            }
            Ok(())
        }
        Command::Scheduler {
            interval_secs,
            once,
        } => {
            let ws = open(&cli).await?;
            crate::schedule::scheduler(&cli, &ws, *interval_secs, *once).await
        }
        Command::Worker { id, drain } => {
            let ws = open(&cli).await?;
            crate::schedule::worker(&cli, &ws, id.as_deref(), *drain).await
        }
        Command::Backfill { segment, from, to } => {
            let ws = open(&cli).await?;
            crate::schedule::backfill(&cli, &ws, segment, from, to).await
        }
        Command::Export(crate::cli::ExportCommand::Airflow { out, spire_command }) => {
            let ws = open(&cli).await?;
            crate::schedule::export_airflow(&cli, &ws, out, spire_command.as_deref()).await
        }
        Command::Task(crate::cli::TaskCommand::Run {
            dag,
            task,
            logical_time,
        }) => {
            let ws = open(&cli).await?;
            crate::schedule::task_run(&cli, &ws, dag, task, logical_time).await
        }
        Command::Schedule(command) => {
            let ws = open(&cli).await?;
            crate::schedule::schedule(&cli, &ws, command).await
        }
        Command::Tasks(command) => {
            let ws = open(&cli).await?;
            crate::schedule::tasks(&cli, &ws, command).await
        }
        Command::Tokens(command) => {
            let ws = open(&cli).await?;
            crate::admin::tokens(&cli, &ws, command).await
        }
        Command::DeadLetters(command) => {
            let ws = open(&cli).await?;
            crate::dead_letters::run(&cli, &ws, command, &progress).await
        }
        Command::Lake(command) => {
            let ws = open(&cli).await?;
            crate::lake::run(&cli, &ws, command).await
        }
        Command::Gc {
            older_than,
            dry_run,
        } => {
            let ws = open(&cli).await?;
            crate::admin::gc(&cli, &ws, older_than, *dry_run).await
        }
    }
}

async fn sql(cli: &Cli, query: &str, limit: usize) -> Result<()> {
    let project = load_project(&cli.project, &options(cli))?;
    let lake = Lake::open(&project.storage.lake)?;
    let ctx = lake.session();
    lake.register_all(&ctx).await?;
    let batches = Lake::query(&ctx, query).await?;
    if cli.json {
        let mut buf = Vec::new();
        {
            let mut w = spire_lake::arrow::json::ArrayWriter::new(&mut buf);
            let refs: Vec<&spire_lake::arrow::array::RecordBatch> = batches.iter().collect();
            w.write_batches(&refs)
                .and_then(|_| w.finish())
                .map_err(|source| spire_lake::LakeError::Arrow {
                    context: "JSON output".into(),
                    source,
                })?;
        }
        println!("{}", String::from_utf8_lossy(&buf));
        return Ok(());
    }
    let total: usize = batches.iter().map(|b| b.num_rows()).sum();
    let mut shown = Vec::new();
    let mut left = limit;
    for b in &batches {
        if left == 0 {
            break;
        }
        let n = b.num_rows().min(left);
        shown.push(b.slice(0, n));
        left -= n;
    }
    let text =
        spire_lake::arrow::util::pretty::pretty_format_batches(&shown).map_err(|source| {
            spire_lake::LakeError::Arrow {
                context: "formatting".into(),
                source,
            }
        })?;
    println!("{text}");
    if total > limit {
        println!("({total} rows, first {limit} shown; use --limit)");
    }
    Ok(())
}

fn init(dir: &Path) -> Result<()> {
    if dir.join("spire.toml").exists() {
        return Err(PipelineError::InvalidInput(format!(
            "{} already holds a spire.toml",
            dir.display()
        )));
    }
    let write = |rel: &str, text: &str| -> Result<()> {
        let path = dir.join(rel);
        if let Some(d) = path.parent() {
            std::fs::create_dir_all(d).map_err(|e| PipelineError::io(d, e))?;
        }
        std::fs::write(&path, text).map_err(|e| PipelineError::io(&path, e))
    };
    write("spire.toml", include_str!("../templates/init.toml"))?;
    write(
        "segments/example.toml",
        include_str!("../templates/example-segments.toml"),
    )?;
    std::fs::create_dir_all(dir.join("events"))
        .map_err(|e| PipelineError::io(dir.join("events"), e))?;
    let mut next = BTreeMap::new();
    next.insert(
        "1",
        format!(
            "put JSON Lines or Parquet events in {}/events/",
            dir.display()
        ),
    );
    next.insert("2", format!("spire --project {} ingest", dir.display()));
    next.insert("3", format!("spire --project {} run --all", dir.display()));
    println!("created {}", dir.display());
    for (k, v) in next {
        println!("  {k}. {v}");
    }
    Ok(())
}

async fn ml_evaluate(cli: &Cli, a: &EvaluateArgs, progress: &dyn Progress) -> Result<()> {
    use spire_pipeline::experiment::{evaluate, EvaluateOptions};
    let params = spire_ml::algorithms::parse_params(&a.params)
        .map_err(|e| PipelineError::InvalidInput(format!("--params: {e}")))?;
    let delimiter = match a.delimiter {
        None => None,
        Some(c) if c.is_ascii() => Some(c as u8),
        Some(c) => {
            return Err(PipelineError::InvalidInput(format!(
                "--delimiter {c:?}: must be a single ASCII character"
            )))
        }
    };
    let opts = EvaluateOptions {
        data: a.data.clone(),
        label: a.label.clone(),
        positive: a.positive.clone(),
        drop: a.drop.clone(),
        algorithm: a.algorithm.clone(),
        params,
        folds: a.folds,
        seed: a.seed,
        fold_column: a.fold_column.clone(),
        delimiter,
        preprocess: spire_ml::PreprocessParams {
            log1p: a.log1p.clone(),
            ..spire_ml::PreprocessParams::default()
        },
        save: a.save.clone(),
    };
    let report = evaluate(&opts, progress).await?;
    if cli.json {
        output::json(&report);
        return Ok(());
    }
    println!(
        "{}: {} rows ({} positive, {:.1} %), {} numeric + {} categorical columns → {} features",
        report.data,
        report.rows,
        report.positives,
        100.0 * report.positives as f64 / report.rows.max(1) as f64,
        report.numeric_columns,
        report.categorical_columns,
        report.encoded_features
    );
    let folds = match &report.fold_column {
        Some(c) => format!(
            "{}-fold cross-validation on column {c:?}",
            report.cv.n_folds()
        ),
        None => format!("{}-fold stratified cross-validation", report.cv.n_folds()),
    };
    println!(
        "{} {} — {folds}, {:.1} s",
        report.algorithm, report.params, report.seconds
    );
    let rows: Vec<Vec<String>> = report
        .cv
        .metrics
        .iter()
        .map(|m| {
            vec![
                m.name.clone(),
                format!("{:.4}", m.mean),
                format!("{:.4}", m.std),
                m.values
                    .iter()
                    .map(|v| format!("{v:.4}"))
                    .collect::<Vec<_>>()
                    .join(" "),
            ]
        })
        .collect();
    table(&["metric", "mean", "± std", "per fold"], &rows);
    if let Some(path) = &report.saved {
        println!("model fitted on all {} rows written to {path}", report.rows);
    }
    Ok(())
}

/// Who moves an alias by hand: `$USER` (or `cli`).
fn actor() -> String {
    std::env::var("USER")
        .ok()
        .filter(|u| !u.is_empty())
        .map_or_else(|| "cli".to_string(), |u| format!("{u} (cli)"))
}

fn report_move(cli: &Cli, model: &str, alias: &str, version: i64) {
    if cli.json {
        output::json(&json!({"model": model, "alias": alias, "version": version}));
    } else {
        println!("{model}: `{alias}` now points at v{version}");
    }
}

/// `spire ingest --follow`: runs the follow loop until SIGTERM or Ctrl-C.
async fn follow(
    cli: &Cli,
    ws: &Workspace,
    a: &crate::cli::IngestArgs,
    progress: &Terminal,
) -> Result<ingest::IngestSummary> {
    let every = |flag: &str, text: &str| {
        humantime::parse_duration(text).map_err(|e| {
            PipelineError::InvalidInput(format!(
                "{flag} {text:?} is not a duration ({e}); write e.g. 30s, 5m or 1h"
            ))
        })
    };
    let sources = &a.sources;
    if sources.len() > 1 {
        return Err(PipelineError::InvalidInput(
            "--follow reads one stream per process; pass one --source".into(),
        ));
    }
    let settings = ingest::Follow {
        source: sources.first().cloned(),
        clean_every: every("--clean-every", &a.clean_every)?,
        compact_every: a
            .compact_every
            .as_deref()
            .map(|t| every("--compact-every", t))
            .transpose()?,
        compact_target_bytes: 128 << 20,
    };
    let shutdown = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = shutdown.clone();
    tokio::spawn(async move {
        crate::schedule::shutdown_signal().await;
        tracing::info!("stop requested: committing the batch in flight");
        flag.store(true, std::sync::atomic::Ordering::SeqCst);
    });
    let json = cli.json;
    let mut on_status = |s: &ingest::FollowStatus| {
        if json {
            if let Ok(line) = serde_json::to_string(&serde_json::json!({ "status": s })) {
                println!("{line}");
            }
        } else {
            for w in &s.switches {
                eprintln!("switched from `{}` to `{}`: {}", w.from, w.to, w.reason);
            }
            // Kafka counts records behind; Kinesis tells milliseconds behind the tip.
            let lag = match s.partitions.iter().filter_map(|p| p.behind_ms).max() {
                Some(ms) => format!("{ms} ms behind"),
                None => format!(
                    "lag {}",
                    s.partitions.iter().filter_map(|p| p.lag).sum::<i64>()
                ),
            };
            let name = if s.reading == s.source {
                s.source.clone()
            } else {
                format!("{} (reading fallback `{}`)", s.source, s.reading)
            };
            eprintln!(
                "{}: {} read ({:.0}/s), {} accepted, {} dead-lettered, {} partitions, {}{}",
                name,
                s.read,
                s.events_per_sec,
                s.accepted,
                s.dead_lettered,
                s.partitions.len(),
                lag,
                if s.refused_batches > 0 {
                    format!(", {} batches refused (rebalances)", s.refused_batches)
                } else {
                    String::new()
                }
            );
        }
    };
    ingest::follow(ws, &settings, &shutdown, progress, &mut on_status).await
}
