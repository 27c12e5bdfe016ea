//! Scheduling commands: `spire scheduler`, `spire worker`, `spire backfill`,
//! `spire schedule ...` and `spire tasks ...`.

use std::time::Duration;

use chrono::Utc;
use serde_json::json;
use spire_pipeline::scheduling::{scheduled_models, PipelineRunner};
use spire_pipeline::{segments, PipelineError, Result, Workspace};
use spire_registry::tasks::{ClaimLimits, ScheduleState, TaskFilter, TaskQueue, TaskState};
use spire_registry::RegistryError;
use spire_scheduler::scheduler::{run, LoopEvent};
use spire_scheduler::{ScheduledModel, Scheduler, Worker, WorkerConfig};

use crate::cli::{Cli, ScheduleCommand, TasksCommand};
use crate::output::{self, table};

/// The project's segments, families expanded, as the scheduler sees them.
async fn models(ws: &Workspace) -> Result<Vec<ScheduledModel>> {
    Ok(scheduled_models(&segments::resolve(ws).await?))
}

/// Resolves when the process gets Ctrl-C or SIGTERM.
pub(crate) async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                    return;
                }
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// `spire scheduler`.
pub async fn scheduler(cli: &Cli, ws: &Workspace, interval_secs: u64, once: bool) -> Result<()> {
    let scheduler = Scheduler::new(ws.registry.clone(), ws.project.scheduler.clone());
    if once {
        let Some(_lock) = ws.registry.try_lock_scheduler().await? else {
            return Err(RegistryError::Conflict {
                what: "another scheduler is active on this registry; `--once` does not wait".into(),
            }
            .into());
        };
        scheduler.sync_pools().await?;
        let report = scheduler.tick(&models(ws).await?, Utc::now()).await?;
        if cli.json {
            output::json(&report);
        } else {
            println!(
                "{} segment runs due, {} tasks planned, {} expired leases taken back ({:.1} ms to decide)",
                report.due_runs,
                report.planned_tasks,
                report.requeued.len(),
                report.decide_ms
            );
        }
        return Ok(());
    }
    eprintln!(
        "scheduler on {} every {interval_secs} s (Ctrl-C or SIGTERM stops it)",
        ws.registry.location()
    );
    let json = cli.json;
    let mut was_standby = None;
    run(
        &scheduler,
        Duration::from_secs(interval_secs.max(1)),
        || async {
            models(ws).await.map_err(|e| {
                RegistryError::InvalidInput(format!("cannot resolve the project's segments: {e}"))
            })
        },
        |event| {
            let standby = matches!(event, LoopEvent::Standby);
            if was_standby != Some(standby) {
                eprintln!(
                    "{}",
                    if standby {
                        "standby: another scheduler is active on this registry"
                    } else {
                        "active: this process schedules"
                    }
                );
                was_standby = Some(standby);
            }
            if let LoopEvent::Ticked(r) = event {
                if json {
                    output::json(r);
                } else if r.planned_tasks > 0 || !r.requeued.is_empty() {
                    eprintln!(
                        "{} tick: {} runs due, {} tasks, {} leases taken back",
                        Utc::now().format("%H:%M:%S"),
                        r.due_runs,
                        r.planned_tasks,
                        r.requeued.len()
                    );
                }
            }
        },
        shutdown_signal(),
    )
    .await?;
    Ok(())
}

/// A worker's default name: this process as recovery names it (`host:pid:start_ticks`).
fn default_worker_id() -> String {
    spire_pipeline::recovery::this_process()
        .unwrap_or_else(|| format!("worker:{}", std::process::id()))
}

/// `spire worker`.
pub async fn worker(cli: &Cli, ws: &Workspace, id: Option<&str>, drain: bool) -> Result<()> {
    let cfg = WorkerConfig {
        id: id.map_or_else(default_worker_id, str::to_string),
        lease: Duration::from_secs(ws.project.scheduler.lease_secs),
        limits: ClaimLimits {
            max_running: ws.project.scheduler.max_running,
        },
        idle_poll: Duration::from_secs(2),
    };
    let worker = Worker::new(ws.registry.clone(), cfg.clone());
    let runner = PipelineRunner::new(ws.clone());
    let json = cli.json;
    let report = move |r: &spire_scheduler::worker::Ran| {
        if json {
            output::json(r);
        } else {
            eprintln!(
                "{} task {} {}: {}{}",
                Utc::now().format("%H:%M:%S"),
                r.task_id,
                r.label,
                r.state,
                r.error
                    .as_ref()
                    .map_or(String::new(), |e| format!(" ({e})"))
            );
        }
    };
    if drain {
        worker.drain(&runner, report).await?;
        return Ok(());
    }
    eprintln!(
        "worker {} on {} (Ctrl-C or SIGTERM stops it after the task in hand)",
        cfg.id,
        ws.registry.location()
    );
    let (tx, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = tx.send(true);
    });
    worker.run(&runner, report, rx).await?;
    Ok(())
}

/// `spire backfill`.
pub async fn backfill(
    cli: &Cli,
    ws: &Workspace,
    segment: &str,
    from: &str,
    to: &str,
) -> Result<()> {
    let date = |flag: &str, text: &str| {
        spire_core::time::parse_date(text)
            .map_err(|e| PipelineError::InvalidInput(format!("--{flag}: {e}")))
    };
    let (from, to) = (date("from", from)?, date("to", to)?);
    let scheduler = Scheduler::new(ws.registry.clone(), ws.project.scheduler.clone());
    scheduler.sync_pools().await?;
    let plan = scheduler
        .backfill(&models(ws).await?, segment, from, to)
        .await?;
    if cli.json {
        output::json(&plan);
    } else {
        let runs = plan
            .tasks
            .iter()
            .filter(|t| t.kind == spire_scheduler::TaskKind::Publish)
            .count();
        println!(
            "queued {runs} runs of {segment} from {from} to {to} ({} tasks); `spire worker` runs them",
            plan.tasks.len()
        );
    }
    Ok(())
}

/// `spire schedule list|pause|resume`.
pub async fn schedule(cli: &Cli, ws: &Workspace, command: &ScheduleCommand) -> Result<()> {
    match command {
        ScheduleCommand::List => {
            let models = models(ws).await?;
            let states: std::collections::HashMap<String, _> = ws
                .registry
                .list_schedule_states()
                .await?
                .into_iter()
                .map(|s| (s.model.clone(), s))
                .collect();
            let now = Utc::now();
            let rows: Vec<serde_json::Value> = models
                .iter()
                .map(|m| {
                    let st = states.get(&m.name);
                    json!({
                        "segment": m.name,
                        "schedule": m.schedule.schedule.as_ref().map(|s| s.to_string()),
                        "next_run": m.schedule.schedule.as_ref().and_then(|s| s.next_after(now)),
                        "last_scheduled": st.and_then(|s| s.last_logical_time),
                        "paused": st.is_some_and(|s| s.paused),
                        "pool": m.schedule.pool,
                    })
                })
                .collect();
            if cli.json {
                output::json(&rows);
            } else {
                let text = |v: &serde_json::Value| v.as_str().unwrap_or("-").to_string();
                let table_rows: Vec<Vec<String>> = rows
                    .iter()
                    .map(|r| {
                        vec![
                            text(&r["segment"]),
                            text(&r["schedule"]),
                            text(&r["next_run"]),
                            text(&r["last_scheduled"]),
                            if r["paused"] == true {
                                "paused"
                            } else {
                                "active"
                            }
                            .into(),
                        ]
                    })
                    .collect();
                table(
                    &["segment", "schedule", "next run", "last scheduled", "state"],
                    &table_rows,
                );
            }
        }
        ScheduleCommand::Pause { segment } | ScheduleCommand::Resume { segment } => {
            let pause = matches!(command, ScheduleCommand::Pause { .. });
            if !models(ws).await?.iter().any(|m| &m.name == segment) {
                return Err(PipelineError::NotFound(format!("segment `{segment}`")));
            }
            let st = ws.registry.set_paused(segment, pause).await?;
            if cli.json {
                output::json(&json!({"segment": st.model, "paused": st.paused}));
            } else {
                println!(
                    "{} {}",
                    if st.paused { "paused" } else { "resumed" },
                    st.model
                );
            }
        }
    }
    Ok(())
}

/// `spire tasks list|logs|purge`.
pub async fn tasks(cli: &Cli, ws: &Workspace, command: &TasksCommand) -> Result<()> {
    match command {
        TasksCommand::List {
            state,
            segment,
            limit,
        } => {
            let state: Option<TaskState> = state.as_deref().map(str::parse).transpose()?;
            let list = ws
                .registry
                .list_tasks(&TaskFilter {
                    state,
                    segment: segment.clone(),
                    limit: (*limit).max(1),
                    ..TaskFilter::default()
                })
                .await?;
            let counts = ws.registry.task_counts().await?;
            if cli.json {
                let counts: std::collections::BTreeMap<&str, u64> =
                    counts.iter().map(|(k, v)| (k.as_str(), *v)).collect();
                let tasks: Vec<serde_json::Value> = list
                    .iter()
                    .map(|t| {
                        json!({
                            "task_id": t.task_id, "kind": t.key.kind, "key": t.key.key,
                            "logical_time": t.key.logical_time, "state": t.state.as_str(),
                            "attempts": t.attempts, "max_attempts": t.max_attempts,
                            "pool": t.pool, "worker": t.lease_owner, "error": t.last_error,
                            "segments": t.payload["segments"],
                        })
                    })
                    .collect();
                output::json(&json!({"counts": counts, "tasks": tasks}));
            } else {
                let summary: Vec<String> = counts
                    .iter()
                    .map(|(k, v)| format!("{v} {}", k.as_str()))
                    .collect();
                println!("{}", summary.join(", "));
                let rows: Vec<Vec<String>> = list
                    .iter()
                    .map(|t| {
                        vec![
                            t.task_id.to_string(),
                            format!("{}[{}]", t.key.kind, t.key.key),
                            t.key.logical_time.format("%Y-%m-%d %H:%M").to_string(),
                            t.state.as_str().to_string(),
                            format!("{}/{}", t.attempts, t.max_attempts),
                            t.lease_owner.clone().unwrap_or_default(),
                            t.last_error
                                .as_deref()
                                .map(|e| e.chars().take(60).collect())
                                .unwrap_or_default(),
                        ]
                    })
                    .collect();
                table(
                    &[
                        "id",
                        "task",
                        "run",
                        "state",
                        "attempts",
                        "worker",
                        "last error",
                    ],
                    &rows,
                );
            }
        }
        TasksCommand::Purge { older_than } => {
            let age = crate::admin::parse_older_than(older_than)?;
            let purged = ws.registry.purge_finished(age).await?;
            if cli.json {
                output::json(&json!({"purged": purged}));
            } else {
                println!(
                    "purged {purged} finished task(s) older than {older_than} \
                     (kept those an unfinished task depends on)"
                );
            }
        }
        TasksCommand::Logs { task_id } => {
            let task = ws.registry.get_task(*task_id).await?;
            let attempts = ws.registry.task_attempts(*task_id).await?;
            if cli.json {
                output::json(&json!({
                    "task_id": task.task_id, "kind": task.key.kind, "key": task.key.key,
                    "logical_time": task.key.logical_time, "state": task.state.as_str(),
                    "payload": task.payload, "output": task.output, "error": task.last_error,
                    "attempts": attempts.iter().map(|a| json!({
                        "attempt": a.attempt, "worker": a.worker, "result": a.result,
                        "started_at": a.started_at, "ended_at": a.ended_at, "error": a.error,
                    })).collect::<Vec<_>>(),
                }));
            } else {
                println!(
                    "task {} {}[{}] run {} — {} after {}/{} attempts",
                    task.task_id,
                    task.key.kind,
                    task.key.key,
                    task.key.logical_time.format("%Y-%m-%d %H:%M UTC"),
                    task.state.as_str(),
                    task.attempts,
                    task.max_attempts
                );
                println!("segments: {}", task.payload["segments"]);
                for a in &attempts {
                    println!(
                        "  attempt {} by {}: {} ({} → {})",
                        a.attempt,
                        a.worker,
                        a.result,
                        a.started_at.format("%H:%M:%S"),
                        a.ended_at
                            .map_or("-".to_string(), |t| t.format("%H:%M:%S").to_string())
                    );
                    if let Some(e) = &a.error {
                        for (i, line) in e.split(": ").enumerate() {
                            println!(
                                "      {}{line}",
                                if i == 0 { "error: " } else { "caused by: " }
                            );
                        }
                    }
                }
                if let Some(out) = &task.output {
                    println!("output: {out}");
                }
            }
        }
    }
    Ok(())
}

/// `spire export airflow`.
pub async fn export_airflow(
    cli: &Cli,
    ws: &Workspace,
    out: &std::path::Path,
    spire_command: Option<&str>,
) -> Result<()> {
    let models = models(ws).await?;
    let command = match spire_command {
        Some(c) => c.to_string(),
        None => {
            let exe = std::env::current_exe().map_err(|e| PipelineError::io("spire", e))?;
            let project =
                std::fs::canonicalize(&ws.project.dir).unwrap_or_else(|_| ws.project.dir.clone());
            let quote = |s: String| format!("'{}'", s.replace('\'', r"'\''"));
            format!(
                "{} --project {}",
                quote(exe.display().to_string()),
                quote(project.display().to_string())
            )
        }
    };
    let (files, manifest) = spire_scheduler::airflow::render(&models, &command);
    std::fs::create_dir_all(out).map_err(|e| PipelineError::io(out, e))?;
    for (name, source) in &files {
        let path = out.join(name);
        std::fs::write(&path, source).map_err(|e| PipelineError::io(&path, e))?;
    }
    let pools: serde_json::Map<String, serde_json::Value> = ws
        .project
        .scheduler
        .pools
        .iter()
        .map(|(name, slots)| {
            (
                name.clone(),
                json!({"slots": slots, "description": format!("Spire pool {name}"), "include_deferred": false}),
            )
        })
        .collect();
    let write_json = |name: &str, value: &serde_json::Value| -> Result<()> {
        let path = out.join(name);
        let text = serde_json::to_string_pretty(value)
            .map_err(|e| PipelineError::InvalidInput(format!("cannot write {name}: {e}")))?;
        std::fs::write(&path, text).map_err(|e| PipelineError::io(&path, e))
    };
    write_json("pools.json", &serde_json::Value::Object(pools))?;
    write_json("manifest.json", &json!({"dags": manifest}))?;
    if cli.json {
        output::json(&json!({"out": out, "dags": manifest}));
    } else {
        for d in &manifest {
            println!(
                "{}  {} segment(s), {} task(s), schedule {} ({})",
                d.file,
                d.segments,
                d.tasks.len(),
                d.schedule.as_deref().unwrap_or("none"),
                d.timezone
            );
        }
        println!(
            "wrote {} DAG file(s) to {}; import the pools with `airflow pools import {}`",
            manifest.len(),
            out.display(),
            out.join("pools.json").display()
        );
    }
    Ok(())
}

/// `spire task run`: one task of an exported DAG, in this process.
pub async fn task_run(
    cli: &Cli,
    ws: &Workspace,
    dag: &str,
    task: &str,
    logical_time: &str,
) -> Result<()> {
    let at = chrono::DateTime::parse_from_rfc3339(logical_time.trim())
        .map_err(|e| {
            PipelineError::InvalidInput(format!(
                "--logical-time {logical_time:?} is not an RFC 3339 time ({e}), e.g. 2026-11-20T06:00:00+00:00"
            ))
        })?
        .with_timezone(&Utc);
    let models = models(ws).await?;
    let groups = spire_scheduler::airflow::groups(&models);
    let Some(group) = groups.iter().find(|g| g.dag_id == dag) else {
        let ids: Vec<&str> = groups.iter().map(|g| g.dag_id.as_str()).collect();
        return Err(PipelineError::NotFound(format!(
            "DAG `{dag}` (this project's DAGs: {}); export again if schedules changed",
            ids.join(", ")
        )));
    };
    let plan = spire_scheduler::airflow::group_plan(group, at);
    let Some(t) = plan.tasks.iter().find(|t| t.label() == task) else {
        let labels: Vec<String> = plan.tasks.iter().map(|t| t.label()).collect();
        return Err(PipelineError::NotFound(format!(
            "task `{task}` in DAG `{dag}` (its tasks: {})",
            labels.join(", ")
        )));
    };
    let runner = PipelineRunner::new(ws.clone());
    let output = runner
        .run_planned(
            t.kind.as_str(),
            &t.key,
            &t.segments,
            t.as_of,
            &format!("{dag}/{task}"),
            at,
        )
        .await?;
    if cli.json {
        output::json(&output);
    } else {
        println!("{task} of {dag} at {at}: {output}");
    }
    Ok(())
}
