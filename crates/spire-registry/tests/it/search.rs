//! Conformance: run search with MLflow's filter grammar, ordering and page tokens. Both
//! backends must return the same runs in the same order.

use std::collections::BTreeMap;

use spire_core::ErrorKind;
use spire_registry::{
    Metric, Registry, RegistryError, RunSearch, RunStatus, TrackingStore, ViewType,
};

use crate::{new_run, TestDb};

crate::conformance!(
    the_mlflow_example_filter,
    comparisons_use_the_latest_metric_value,
    text_operators_and_lists,
    attributes_can_be_filtered,
    quoted_keys,
    ordering_puts_missing_values_last,
    text_orders_by_code_point,
    pages_cover_every_run_once,
    experiments_and_views_scope_the_search,
    bad_filters_name_position_and_token,
);

/// Six runs, oldest first:
///
/// | run | experiment | segment      | algorithm           | tags.segment | auc (latest) | status   |
/// |-----|------------|--------------|---------------------|--------------|--------------|----------|
/// | r1  | daily      | reads-sports | logistic_regression | reads-sports | 0.85         | finished |
/// | r2  | daily      | reads-news   | gbdt                | reads-news   | 0.9          | failed   |
/// | r3  | daily      | Reads-Travel | logistic_regression | Reads-Travel | 0.75 → 0.95  | running  |
/// | r4  | daily      | brand-x      | logistic_regression | brand-x      | NaN          | finished |
/// | r5  | daily      | reads-arts   | logistic_regression | reads-arts   | —            | running  |
/// | r6  | weekly     | reads-sports | —                   | —            | 0.99         | running  |
///
/// r5 also has ``metrics.`f1-score` = 0.5`` and `tags."team name" = 'a b'`.
struct Seeded {
    r: [String; 6],
    weekly: String,
}

/// experiment, segment, algorithm, (auc, step) points, end status.
type SeedRow = (
    &'static str,
    &'static str,
    Option<&'static str>,
    &'static [(f64, i64)],
    Option<RunStatus>,
);

async fn seed(reg: &Registry) -> Seeded {
    let rows: [SeedRow; 6] = [
        (
            "daily",
            "reads-sports",
            Some("logistic_regression"),
            &[(0.85, 0)],
            Some(RunStatus::Finished),
        ),
        (
            "daily",
            "reads-news",
            Some("gbdt"),
            &[(0.9, 0)],
            Some(RunStatus::Failed),
        ),
        (
            "daily",
            "Reads-Travel",
            Some("logistic_regression"),
            &[(0.95, 1), (0.75, 0)],
            None,
        ),
        (
            "daily",
            "brand-x",
            Some("logistic_regression"),
            &[(f64::NAN, 0)],
            Some(RunStatus::Finished),
        ),
        (
            "daily",
            "reads-arts",
            Some("logistic_regression"),
            &[],
            None,
        ),
        ("weekly", "reads-sports", None, &[(0.99, 0)], None),
    ];
    let mut ids = Vec::new();
    for (experiment, segment, algorithm, aucs, status) in rows {
        let mut run = new_run(segment);
        run.experiment = experiment.to_string();
        run.params.clear();
        run.tags.clear();
        if let Some(algorithm) = algorithm {
            run.params.insert("algorithm".into(), algorithm.into());
            run.tags.insert("segment".into(), segment.into());
        }
        let id = reg.create_run(run).await.unwrap();
        for (value, step) in aucs {
            reg.log_metric(&id, &Metric::now("auc", *value, *step))
                .await
                .unwrap();
        }
        if let Some(status) = status {
            reg.finish_run(&id, status, None).await.unwrap();
        }
        ids.push(id);
    }
    reg.log_metric(&ids[4], &Metric::now("f1-score", 0.5, 0))
        .await
        .unwrap();
    reg.set_tag(&ids[4], "team name", "a b").await.unwrap();
    let weekly = reg
        .get_experiment_by_name("weekly")
        .await
        .unwrap()
        .experiment_id;
    Seeded {
        r: ids.try_into().unwrap(),
        weekly,
    }
}

impl Seeded {
    /// Run ids by their row number (1-based, as in the table above).
    fn ids(&self, rows: &[usize]) -> Vec<String> {
        rows.iter().map(|i| self.r[i - 1].clone()).collect()
    }
}

async fn search(reg: &Registry, search: RunSearch) -> Result<Vec<String>, RegistryError> {
    let page = reg.search_runs(&search).await?;
    assert_eq!(page.next_page_token, None, "expected one page");
    Ok(page.runs.into_iter().map(|r| r.run_id).collect())
}

async fn filter(reg: &Registry, filter: &str) -> Vec<String> {
    search(
        reg,
        RunSearch {
            filter: filter.to_string(),
            view: ViewType::All,
            ..RunSearch::default()
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{filter}: {e}"))
}

async fn ordered(reg: &Registry, order_by: &[&str]) -> Vec<String> {
    search(
        reg,
        RunSearch {
            order_by: order_by.iter().map(|s| s.to_string()).collect(),
            view: ViewType::All,
            ..RunSearch::default()
        },
    )
    .await
    .unwrap()
}

pub async fn the_mlflow_example_filter(t: TestDb) {
    let s = seed(&t.reg).await;
    let reg = &t.reg;
    let example = "metrics.auc > 0.8 and params.algorithm = 'logistic_regression' \
                   and tags.segment LIKE 'reads-%'";
    assert_eq!(
        filter(reg, example).await,
        s.ids(&[1]),
        "LIKE is case-sensitive"
    );
    let page = reg
        .search_runs(&RunSearch {
            filter: example.into(),
            ..RunSearch::default()
        })
        .await
        .unwrap();
    assert_eq!(page.runs[0].params["algorithm"], "logistic_regression");
    assert_eq!(
        page.runs[0].metrics["auc"], 0.85,
        "runs come with their data"
    );
    let ilike = example.replace("LIKE", "ILIKE");
    assert_eq!(filter(reg, &ilike).await, s.ids(&[3, 1]), "newest first");
    assert_eq!(
        filter(reg, "").await,
        s.ids(&[6, 5, 4, 3, 2, 1]),
        "empty filter"
    );
}

pub async fn comparisons_use_the_latest_metric_value(t: TestDb) {
    let s = seed(&t.reg).await;
    let reg = &t.reg;
    assert_eq!(filter(reg, "metrics.auc >= 0.95").await, s.ids(&[6, 3]));
    assert!(
        filter(reg, "metrics.auc < 0.8").await.is_empty(),
        "r3's 0.75 is not its latest value; NaN never matches"
    );
    assert_eq!(filter(reg, "metrics.auc = 0.9").await, s.ids(&[2]));
    assert_eq!(
        filter(reg, "metrics.auc != 0.85").await,
        s.ids(&[6, 3, 2]),
        "NaN and missing metrics never match"
    );
    assert_eq!(
        filter(reg, "metrics.auc > 0.8 AND metrics.auc <= 0.9").await,
        s.ids(&[2, 1])
    );
    assert!(filter(reg, "metrics.nope > -1e300").await.is_empty());
    assert_eq!(filter(reg, "metric.auc > 9e-1").await, s.ids(&[6, 3]));
}

pub async fn text_operators_and_lists(t: TestDb) {
    let s = seed(&t.reg).await;
    let reg = &t.reg;
    assert_eq!(
        filter(reg, "params.algorithm IN ('gbdt', 'xgboost')").await,
        s.ids(&[2])
    );
    let not_gbdt = s.ids(&[5, 4, 3, 1]);
    assert_eq!(
        filter(reg, "params.algorithm NOT IN ('gbdt')").await,
        not_gbdt,
        "runs without the param never match"
    );
    assert_eq!(filter(reg, "params.algorithm != 'gbdt'").await, not_gbdt);
    assert_eq!(
        filter(reg, "tags.segment LIKE '%s'").await,
        s.ids(&[5, 2, 1]),
        "LIKE: % and case"
    );
    assert_eq!(
        filter(reg, "tags.segment LIKE 'reads-_rts'").await,
        s.ids(&[5])
    );
    assert_eq!(
        filter(reg, "tags.segment ILIKE 'READS-%'").await,
        s.ids(&[5, 3, 2, 1])
    );
    assert!(filter(reg, "tags.segment LIKE 'reads-*'").await.is_empty());
    assert!(filter(reg, "tags.segment LIKE 'reads-[ns]%'")
        .await
        .is_empty());
    assert_eq!(filter(reg, "tag.segment = 'brand-x'").await, s.ids(&[4]));
}

pub async fn attributes_can_be_filtered(t: TestDb) {
    let s = seed(&t.reg).await;
    let reg = &t.reg;
    assert_eq!(
        filter(reg, "attributes.status = 'FINISHED'").await,
        s.ids(&[4, 1])
    );
    assert_eq!(
        filter(reg, "attributes.status IN ('failed', 'Running')").await,
        s.ids(&[6, 5, 3, 2])
    );
    assert_eq!(
        filter(reg, "attributes.status != 'RUNNING'").await,
        s.ids(&[4, 2, 1])
    );
    assert!(filter(reg, "attributes.status = 'KILLED'").await.is_empty());
    assert_eq!(
        filter(reg, "attributes.end_time > 0").await,
        s.ids(&[4, 2, 1]),
        "running runs have no end time"
    );
    assert_eq!(filter(reg, "attributes.start_time > 0").await.len(), 6);
    let started = |run: &spire_registry::Run| run.started_at.timestamp_millis();
    let r3 = started(&reg.get_run(&s.r[2]).await.unwrap());
    let after = filter(reg, &format!("run.created >= {r3}")).await;
    assert!(after.contains(&s.r[2]) && after.contains(&s.r[5]));
    for id in &s.r {
        let run = reg.get_run(id).await.unwrap();
        assert_eq!(after.contains(id), started(&run) >= r3, "{run:?}");
    }
    assert_eq!(
        filter(reg, "attributes.segment LIKE 'reads-%'").await,
        s.ids(&[6, 5, 2, 1])
    );
    assert_eq!(
        filter(reg, "attributes.experiment = 'weekly'").await,
        s.ids(&[6])
    );
    assert_eq!(
        filter(reg, &format!("attributes.experiment_id = '{}'", s.weekly)).await,
        s.ids(&[6])
    );
    assert_eq!(
        filter(
            reg,
            &format!("attributes.run_id IN ('{}', '{}')", s.r[1], s.r[3])
        )
        .await,
        s.ids(&[4, 2])
    );
    assert_eq!(
        filter(
            reg,
            "attr.config_hash = 'cafebabe' and attr.spire_version = '0.1.0' \
             and attr.git_commit = '0123abc' and attributes.segment = 'brand-x'"
        )
        .await,
        s.ids(&[4])
    );
}

pub async fn quoted_keys(t: TestDb) {
    let s = seed(&t.reg).await;
    let reg = &t.reg;
    assert_eq!(filter(reg, "metrics.`f1-score` = 0.5").await, s.ids(&[5]));
    assert_eq!(filter(reg, "metrics.\"f1-score\" > 0.1").await, s.ids(&[5]));
    assert_eq!(filter(reg, "tags.`team name` = 'a b'").await, s.ids(&[5]));
    assert_eq!(
        filter(reg, "tags.\"team name\" = \"a b\"").await,
        s.ids(&[5])
    );
}

pub async fn ordering_puts_missing_values_last(t: TestDb) {
    let s = seed(&t.reg).await;
    let reg = &t.reg;
    assert_eq!(
        ordered(reg, &["metrics.auc DESC"]).await,
        s.ids(&[6, 3, 2, 1, 5, 4]),
        "NaN and missing last, newest first among them"
    );
    assert_eq!(
        ordered(reg, &["metrics.auc"]).await,
        s.ids(&[1, 2, 3, 6, 5, 4])
    );
    assert_eq!(
        ordered(reg, &["params.algorithm ASC", "metrics.auc DESC"]).await,
        s.ids(&[2, 3, 1, 5, 4, 6])
    );
    assert_eq!(ordered(reg, &["attributes.start_time ASC"]).await.len(), 6);
    assert_eq!(
        ordered(reg, &["attributes.end_time DESC"]).await[3..],
        s.ids(&[6, 5, 3]),
        "running runs (no end time) last"
    );
    let page = reg
        .search_runs(&RunSearch {
            filter: "params.algorithm = 'logistic_regression'".into(),
            order_by: vec!["metrics.auc DESC".into()],
            ..RunSearch::default()
        })
        .await
        .unwrap();
    let ids: Vec<String> = page.runs.into_iter().map(|r| r.run_id).collect();
    assert_eq!(ids, s.ids(&[3, 1, 5, 4]));
}

pub async fn text_orders_by_code_point(t: TestDb) {
    let s = seed(&t.reg).await;
    let reg = &t.reg;
    // Upper case before lower case on both backends, whatever the database's collation.
    let want = s.ids(&[3, 4, 5, 2, 1]);
    let mut got = ordered(reg, &["tags.segment"]).await;
    assert_eq!(got.pop(), Some(s.r[5].clone()), "r6 has no tags: last");
    assert_eq!(got, want);
    let mut got = ordered(reg, &["attributes.segment ASC"]).await;
    assert_eq!(got.remove(0), s.r[2].clone(), "Reads-Travel first");
    assert_eq!(got, s.ids(&[4, 5, 2, 6, 1]), "equal segments: newest first");
}

pub async fn pages_cover_every_run_once(t: TestDb) {
    let s = seed(&t.reg).await;
    let reg = &t.reg;
    let base = RunSearch {
        order_by: vec!["metrics.auc DESC".into()],
        view: ViewType::All,
        max_results: 4,
        ..RunSearch::default()
    };
    let everything = search(
        reg,
        RunSearch {
            max_results: 100,
            ..base.clone()
        },
    )
    .await
    .unwrap();
    for size in [1, 2, 4, 5, 6] {
        let mut seen = Vec::new();
        let mut token = None;
        let mut pages = 0;
        loop {
            let page = reg
                .search_runs(&RunSearch {
                    max_results: size,
                    page_token: token.clone(),
                    ..base.clone()
                })
                .await
                .unwrap();
            pages += 1;
            assert!(page.runs.len() <= size);
            seen.extend(page.runs.into_iter().map(|r| r.run_id));
            token = page.next_page_token;
            if token.is_none() {
                break;
            }
        }
        assert_eq!(seen, everything, "page size {size}");
        assert_eq!(pages, 6_usize.div_ceil(size), "page size {size}");
    }
    assert_eq!(everything, s.ids(&[6, 3, 2, 1, 5, 4]));

    let first = reg.search_runs(&base).await.unwrap();
    let token = first.next_page_token.unwrap();
    let err = reg
        .search_runs(&RunSearch {
            filter: "metrics.auc > 0".into(),
            page_token: Some(token.clone()),
            ..base.clone()
        })
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.to_string().contains("another search"), "{err}");
    let err = reg
        .search_runs(&RunSearch {
            page_token: Some("not a token".into()),
            ..base.clone()
        })
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    for max_results in [0, spire_registry::MAX_SEARCH_RESULTS + 1] {
        let err = reg
            .search_runs(&RunSearch {
                max_results,
                ..RunSearch::default()
            })
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
    }
}

pub async fn experiments_and_views_scope_the_search(t: TestDb) {
    let s = seed(&t.reg).await;
    let reg = &t.reg;
    let daily = reg
        .get_experiment_by_name("daily")
        .await
        .unwrap()
        .experiment_id;
    let scoped = |ids: Vec<String>, view: ViewType| RunSearch {
        experiment_ids: ids,
        view,
        ..RunSearch::default()
    };
    assert_eq!(
        search(reg, scoped(vec![s.weekly.clone()], ViewType::ActiveOnly))
            .await
            .unwrap(),
        s.ids(&[6])
    );
    assert_eq!(
        search(
            reg,
            scoped(vec![s.weekly.clone(), daily.clone()], ViewType::ActiveOnly)
        )
        .await
        .unwrap()
        .len(),
        6
    );
    reg.delete_experiment(&s.weekly).await.unwrap();
    assert_eq!(
        search(reg, scoped(vec![], ViewType::ActiveOnly))
            .await
            .unwrap(),
        s.ids(&[5, 4, 3, 2, 1]),
        "runs of deleted experiments are hidden by default"
    );
    assert_eq!(
        search(reg, scoped(vec![], ViewType::DeletedOnly))
            .await
            .unwrap(),
        s.ids(&[6])
    );
    assert!(search(reg, scoped(vec![daily], ViewType::DeletedOnly))
        .await
        .unwrap()
        .is_empty());
    assert!(search(reg, scoped(vec!["nope".into()], ViewType::All))
        .await
        .unwrap()
        .is_empty());
}

pub async fn bad_filters_name_position_and_token(t: TestDb) {
    let reg = &t.reg;
    let cases = BTreeMap::from([
        ("metrics.auc > 0.8 andd params.a = 'x'", ("19", "\"andd\"")),
        ("params.lr = 0.1", ("13", "\"0.1\"")),
        ("attributes.colour = 'red'", ("12", "\"colour\"")),
        ("metrics.auc > 1 OR metrics.auc < 0", ("17", "\"OR\"")),
    ]);
    for (bad, (position, token)) in cases {
        let err = reg
            .search_runs(&RunSearch {
                filter: bad.into(),
                ..RunSearch::default()
            })
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
        assert!(
            matches!(err, RegistryError::InvalidFilter { .. }),
            "{err:?}"
        );
        let msg = err.to_string();
        assert!(
            msg.contains(&format!("position {position} ")) && msg.contains(token),
            "{bad}: {msg}"
        );
    }
    let err = reg
        .search_runs(&RunSearch {
            order_by: vec!["metrics.auc DOWN".into()],
            ..RunSearch::default()
        })
        .await
        .unwrap_err();
    assert!(err.to_string().contains("\"DOWN\""), "{err}");
}
