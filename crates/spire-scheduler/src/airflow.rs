//! Export to Apache Airflow (`spire export airflow`): one DAG file per schedule group, whose
//! tasks are the same batched tasks Spire's own scheduler runs, each calling
//! `spire task run --dag DAG --task TASK --logical-time …`. Retries (with exponential
//! backoff), timeouts, priorities, pools and dependencies carry over; `pools.json` declares
//! the pools (`airflow pools import pools.json`).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use spire_core::config::Catchup;

use crate::dag::{plan, Due, Plan, PlannedTask};
use crate::model::ScheduledModel;

/// Segments that share a schedule, a zone and a catch-up policy: one Airflow DAG.
#[derive(Debug, Clone)]
pub struct Group<'a> {
    /// The DAG id, e.g. `spire__0_6_x_x_x__europe_berlin`.
    pub dag_id: String,
    /// Cron expression (`None`: triggered by hand only).
    pub cron: Option<String>,
    /// IANA zone of the cron expression.
    pub timezone: String,
    /// Whether missed intervals all run.
    pub catchup: bool,
    /// Its segments.
    pub models: Vec<&'a ScheduledModel>,
}

fn slug(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        match c {
            'a'..='z' | '0'..='9' => out.push(c),
            'A'..='Z' => out.push(c.to_ascii_lowercase()),
            '*' => out.push('x'),
            _ => {
                if !out.ends_with('_') {
                    out.push('_');
                }
            }
        }
    }
    out.trim_matches('_').to_string()
}

/// The schedule groups of `models`, by DAG id.
pub fn groups(models: &[ScheduledModel]) -> Vec<Group<'_>> {
    let mut by_id: BTreeMap<String, Group<'_>> = BTreeMap::new();
    for m in models {
        let (cron, timezone) = match &m.schedule.schedule {
            Some(s) => (Some(s.expr().to_string()), s.timezone().to_string()),
            None => (None, "UTC".to_string()),
        };
        let catchup = m.schedule.catchup == Catchup::All;
        let dag_id = match &cron {
            Some(c) => format!(
                "spire__{}__{}{}",
                slug(c),
                slug(&timezone),
                if catchup { "__catchup" } else { "" }
            ),
            None => "spire__on_demand".to_string(),
        };
        by_id
            .entry(dag_id.clone())
            .or_insert_with(|| Group {
                dag_id,
                cron,
                timezone,
                catchup,
                models: Vec::new(),
            })
            .models
            .push(m);
    }
    by_id.into_values().collect()
}

/// The batched plan of a group's run at `logical_time` (what `spire task run` executes a
/// task of).
pub fn group_plan(group: &Group<'_>, logical_time: DateTime<Utc>) -> Plan {
    let due: Vec<Due> = group
        .models
        .iter()
        .map(|m| Due {
            model: m,
            logical_time,
        })
        .collect();
    plan(&due)
}

/// An Airflow task id for a planned task: `kind__key`, made of letters, digits and `_`.
pub fn task_id(t: &PlannedTask) -> String {
    format!("{}__{}", t.kind.as_str(), slug(&t.key))
}

/// One generated DAG, as the manifest describes it (what a test checks Airflow parsed).
#[derive(Debug, Clone, Serialize)]
pub struct ExportedDag {
    /// DAG id.
    pub dag_id: String,
    /// File name in the output folder.
    pub file: String,
    /// Cron expression, if scheduled.
    pub schedule: Option<String>,
    /// Zone.
    pub timezone: String,
    /// Segments it runs.
    pub segments: usize,
    /// Task ids with their Spire task labels, retries and pools.
    pub tasks: Vec<ExportedTask>,
    /// `[upstream, downstream]` task id pairs.
    pub edges: Vec<[String; 2]>,
}

/// One task of an exported DAG.
#[derive(Debug, Clone, Serialize)]
pub struct ExportedTask {
    /// Airflow task id.
    pub task_id: String,
    /// Spire's label (`kind[key]`), passed to `spire task run --task`.
    pub label: String,
    /// Retries after the first attempt.
    pub retries: u32,
    /// Airflow pool (`default_pool` without one).
    pub pool: String,
}

fn py_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Shell single-quoting.
fn sh(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Renders every group as an Airflow DAG file whose tasks run `spire_command` (e.g.
/// `spire --project /srv/segments`) with `task run`; returns `(file name, source)` pairs
/// and the manifest.
pub fn render(
    models: &[ScheduledModel],
    spire_command: &str,
) -> (Vec<(String, String)>, Vec<ExportedDag>) {
    let placeholder = DateTime::<Utc>::UNIX_EPOCH;
    let mut files = Vec::new();
    let mut manifest = Vec::new();
    for g in groups(models) {
        let p = group_plan(&g, placeholder);
        let ids: Vec<String> = p.tasks.iter().map(task_id).collect();
        let mut src = String::new();
        src.push_str(&format!(
            "# Generated by `spire export airflow`: {} segment(s) on schedule {} ({}).\n\
             # Do not edit; export again after changing segments or schedules.\n\
             import datetime\n\n\
             import pendulum\n\n\
             try:  # Airflow 3\n    from airflow.sdk import DAG\nexcept ImportError:  # Airflow 2\n    from airflow import DAG\n\
             try:\n    from airflow.providers.standard.operators.bash import BashOperator\n\
             except ImportError:\n    from airflow.operators.bash import BashOperator\n\n\
             SPIRE = {}\n\
             LOGICAL_TIME = \"'{{{{ data_interval_end or dag_run.run_after }}}}'\"\n\n",
            g.models.len(),
            g.cron.as_deref().unwrap_or("none"),
            g.timezone,
            py_str(spire_command),
        ));
        src.push_str(&format!(
            "with DAG(\n    dag_id={},\n    schedule={},\n    start_date=pendulum.datetime(2026, 1, 1, tz={}),\n    \
             catchup={},\n    max_active_runs=1,\n    tags=[\"spire\"],\n    default_args={{\"owner\": \"spire\"}},\n) as dag:\n",
            py_str(&g.dag_id),
            g.cron.as_deref().map_or("None".to_string(), py_str),
            py_str(&g.timezone),
            if g.catchup { "True" } else { "False" },
        ));
        let mut tasks = Vec::new();
        for (i, t) in p.tasks.iter().enumerate() {
            let command = format!(
                "{{SPIRE}} task run --dag {} --task {} --logical-time {{LOGICAL_TIME}}",
                sh(&g.dag_id),
                sh(&t.label())
            );
            let pool = t.pool.clone().unwrap_or_else(|| "default_pool".to_string());
            src.push_str(&format!(
                "    t{i} = BashOperator(\n        task_id={},\n        bash_command=f{},\n        \
                 retries={},\n        retry_delay=datetime.timedelta(seconds={}),\n        \
                 retry_exponential_backoff=True,\n        execution_timeout=datetime.timedelta(seconds={}),\n        \
                 pool={},\n        priority_weight={},\n    )\n",
                py_str(&ids[i]),
                py_str(&command),
                t.max_attempts.saturating_sub(1),
                t.retry_backoff_secs,
                t.timeout_secs,
                py_str(&pool),
                t.priority.max(1),
            ));
            tasks.push(ExportedTask {
                task_id: ids[i].clone(),
                label: t.label(),
                retries: t.max_attempts.saturating_sub(1),
                pool,
            });
        }
        let mut edges = Vec::new();
        for (i, t) in p.tasks.iter().enumerate() {
            for &d in &t.depends_on {
                src.push_str(&format!("    t{d} >> t{i}\n"));
                edges.push([ids[d].clone(), ids[i].clone()]);
            }
        }
        let file = format!("{}.py", g.dag_id);
        files.push((file.clone(), src));
        manifest.push(ExportedDag {
            dag_id: g.dag_id.clone(),
            file,
            schedule: g.cron.clone(),
            timezone: g.timezone.clone(),
            segments: g.models.len(),
            tasks,
            edges,
        });
    }
    (files, manifest)
}
