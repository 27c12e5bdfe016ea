#![allow(clippy::unwrap_used)]

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use spire_core::config::{Catchup, ScheduleSpec};
use spire_core::schedule::Schedule;

use crate::dag::{plan, render_dot, render_text, Due, TaskKind};
use crate::due::{backfill_times, due_runs, ModelState};
use crate::model::{ScheduledModel, Work};

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn model(name: &str, fs: &str, algorithm: &str, cron: Option<&str>) -> ScheduledModel {
    ScheduledModel {
        name: name.into(),
        family: "f".into(),
        feature_set: fs.into(),
        work: Work::Model {
            algorithm: algorithm.into(),
            fusable: algorithm == "logistic_regression",
        },
        schedule: ScheduleSpec {
            schedule: cron.map(|c| Schedule::parse(c, "UTC").unwrap()),
            ..ScheduleSpec::default()
        },
    }
}

#[test]
fn a_family_trains_in_one_task_per_feature_set_and_shares_snapshots() {
    let mut models: Vec<ScheduledModel> = (0..50)
        .map(|i| {
            model(
                &format!("reads-{i}"),
                "behaviour",
                "logistic_regression",
                None,
            )
        })
        .collect();
    let mut gbdt = model("buyers", "behaviour", "gbdt", None);
    gbdt.schedule.pool = Some("gbdt".into());
    gbdt.schedule.retries = 4;
    models.push(gbdt);
    models.push(model("brand-x", "brands", "logistic_regression", None));
    models.push(ScheduledModel {
        name: "travel-not-luxury".into(),
        family: "c".into(),
        feature_set: String::new(),
        work: Work::Rule {
            combines: vec!["reads-1".into(), "brand-x".into()],
        },
        schedule: ScheduleSpec::default(),
    });
    let six = utc("2026-11-20T06:00:00Z");
    let seven = utc("2026-11-20T07:00:00Z");
    let mut due: Vec<Due> = models
        .iter()
        .map(|m| Due {
            model: m,
            logical_time: six,
        })
        .collect();
    // A second run the same day reuses that day's snapshot.
    due.push(Due {
        model: &models[0],
        logical_time: seven,
    });
    let p = plan(&due);
    let labels: Vec<String> = p
        .tasks
        .iter()
        .map(|t| format!("{}@{}", t.label(), t.logical_time.format("%H")))
        .collect();
    assert_eq!(
        labels,
        vec![
            "snapshot[behaviour]@00",
            "train[behaviour/fused]@06",
            "train[behaviour/buyers]@06",
            "snapshot[brands]@00",
            "train[brands/fused]@06",
            "train[behaviour/fused]@07",
            "score[behaviour]@06",
            "score[brands]@06",
            "score[behaviour]@07",
            "publish[segments]@06",
            "publish[segments]@07",
        ]
    );
    let fused = &p.tasks[1];
    assert_eq!(fused.segments.len(), 50, "the whole family in one training");
    assert_eq!(fused.depends_on, vec![0]);
    let buyers = &p.tasks[2];
    assert_eq!(
        (buyers.pool.as_deref(), buyers.max_attempts),
        (Some("gbdt"), 5)
    );
    let score = &p.tasks[6];
    assert_eq!(score.segments.len(), 51);
    assert_eq!(score.depends_on, vec![0, 1, 2]);
    let publish = &p.tasks[9];
    assert_eq!(publish.depends_on, vec![6, 7]);
    assert!(publish.segments.contains(&"travel-not-luxury".to_string()));
    // Every dependency points backwards: the plan is a DAG in order.
    for (i, t) in p.tasks.iter().enumerate() {
        assert!(t.depends_on.iter().all(|&d| d < i), "{}", t.label());
    }
    assert_eq!(
        p.tasks
            .iter()
            .filter(|t| t.kind == TaskKind::Snapshot)
            .count(),
        2
    );

    let text = render_text(&models[0], &p);
    assert!(text.contains("stages: features snapshot → dataset → train → evaluate → gate → score → threshold → publish"), "{text}");
    assert!(text.contains("train[behaviour/fused]"), "{text}");
    assert!(!text.contains("train[brands/fused]"), "{text}");
    let dot = render_dot(&models[0], &p);
    assert!(
        dot.starts_with("digraph spire {") && dot.contains("t1_Gate -> t6_Score"),
        "{dot}"
    );
}

#[test]
fn due_runs_follow_schedules_pause_and_catch_up() {
    let mut latest = model("latest", "fs", "logistic_regression", Some("0 6 * * *"));
    latest.schedule.catchup = Catchup::Latest;
    let mut all = model("all", "fs", "logistic_regression", Some("0 6 * * *"));
    all.schedule.catchup = Catchup::All;
    let paused = model("paused", "fs", "logistic_regression", Some("0 6 * * *"));
    let manual = model("manual", "fs", "logistic_regression", None);
    let fresh = model("fresh", "fs", "logistic_regression", Some("0 6 * * *"));
    let models = vec![latest, all, paused, manual, fresh];
    let last = Some(utc("2026-11-17T06:00:00Z"));
    let state: HashMap<String, ModelState> = [
        (
            "latest",
            ModelState {
                last_scheduled: last,
                paused: false,
            },
        ),
        (
            "all",
            ModelState {
                last_scheduled: last,
                paused: false,
            },
        ),
        (
            "paused",
            ModelState {
                last_scheduled: last,
                paused: true,
            },
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let now = utc("2026-11-20T07:30:00Z");
    let due = due_runs(&models, &state, now);
    let got: Vec<(&str, String)> = due
        .iter()
        .map(|d| {
            (
                models[d.model].name.as_str(),
                d.logical_time.format("%d").to_string(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("latest", "20".to_string()),
            ("all", "18".to_string()),
            ("all", "19".to_string()),
            ("all", "20".to_string()),
            ("fresh", "20".to_string()),
        ]
    );
    // Once scheduled up to now, nothing more is due until the next firing.
    let caught_up: HashMap<String, ModelState> = models
        .iter()
        .map(|m| {
            (
                m.name.clone(),
                ModelState {
                    last_scheduled: Some(utc("2026-11-20T06:00:00Z")),
                    paused: false,
                },
            )
        })
        .collect();
    assert!(due_runs(&models, &caught_up, now).is_empty());
    assert_eq!(
        due_runs(&models, &caught_up, utc("2026-11-21T06:00:00Z")).len(),
        4
    );
}

#[test]
fn backfills_cover_every_firing_in_the_range() {
    let hourly = model("h", "fs", "logistic_regression", Some("0 */6 * * *"));
    let d = |s: &str| s.parse::<NaiveDate>().unwrap();
    let times = backfill_times(&hourly, d("2026-11-01"), d("2026-11-02"));
    assert_eq!(times.len(), 8);
    assert_eq!(times[0], utc("2026-11-01T00:00:00Z"));
    assert_eq!(times[7], utc("2026-11-02T18:00:00Z"));
    let manual = model("m", "fs", "logistic_regression", None);
    assert_eq!(
        backfill_times(&manual, d("2026-11-01"), d("2026-11-03")).len(),
        3
    );
}

#[test]
fn ten_thousand_models_on_a_few_schedules_are_planned_together() {
    let models: Vec<ScheduledModel> = (0..10_000)
        .map(|i| {
            let cron = ["0 6 * * *", "0 7 * * *", "30 5 * * 1"][i % 3];
            model(
                &format!("m{i}"),
                &format!("fs{}", i % 7),
                "logistic_regression",
                Some(cron),
            )
        })
        .collect();
    let state = HashMap::new();
    let due = due_runs(&models, &state, utc("2026-11-23T08:00:00Z"));
    assert_eq!(due.len(), 10_000);
    let due: Vec<Due> = due
        .iter()
        .map(|d| Due {
            model: &models[d.model],
            logical_time: d.logical_time,
        })
        .collect();
    let p = plan(&due);
    // 7 feature sets × (1 snapshot shared per day + 3 run times × (train + score)) + 3 publishes,
    // minus the snapshots of days that differ: the Monday 05:30 run is on the same day.
    let trains = p.tasks.iter().filter(|t| t.kind == TaskKind::Train).count();
    assert_eq!(trains, 21);
    assert_eq!(
        p.tasks
            .iter()
            .filter(|t| t.kind == TaskKind::Publish)
            .count(),
        3
    );
    assert!(p.tasks.len() < 60, "{}", p.tasks.len());
}
