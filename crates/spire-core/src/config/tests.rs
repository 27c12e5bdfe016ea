#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

fn project(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    dir
}

const BASE: &str = r#"
[[sources]]
name = "clicks"
kind = "synthetic"
users = 100
start_date = "2026-10-01"

[[feature_sets]]
name = "behaviour"
"#;

#[test]
fn loads_defaults_and_expands_families() {
    let dir = project(&[
        ("spire.toml", BASE),
        (
            "segments/a.toml",
            r#"
[[segment]]
name = "reads-{value}"
kind = "model"
feature_set = "behaviour"
for_each = { values = ["tech", "o'reilly"] }
label = { kind = "future_events", where = "category = '{value}'" }
"#,
        ),
    ]);
    let p = load_project(dir.path(), &LoadOptions::default()).unwrap();
    assert!(p.storage.registry.starts_with("sqlite://"));
    assert_eq!(p.feature_sets[0].windows_days, vec![1, 7, 28]);
    let family = p.segments[0].expand(&["tech".into(), "o'reilly".into()]);
    assert_eq!(family[1].name, "reads-o-reilly");
    match &family[1].kind {
        SegmentKind::Model(m) => match &m.label {
            Label::FutureEvents {
                predicate,
                horizon_days,
                ..
            } => {
                assert_eq!(predicate, "category = 'o''reilly'");
                assert_eq!(*horizon_days, 7);
            }
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    }
}

#[test]
fn reports_every_problem_with_file_and_key() {
    let dir = project(&[
        (
            "spire.toml",
            r#"
[[sources]]
name = "clicks"
kind = "kafka"

[[feature_sets]]
name = "behaviour"
windows_days = [0, 7]
aggregations = ["events", "vibes"]

[defaults]
test_fraction = 2.0
"#,
        ),
        (
            "segments/bad.toml",
            r#"
[[segment]]
name = "x"
kind = "model"
feature_set = "nope"
label = { kind = "future_events", where = "true", horizon_days = 0 }
model = { l2 = -1.0, l1 = -0.5 }
output = { top_fraction = 0.1, min_precision = 0.9 }

[[segment]]
name = "y"
kind = "rule"
combine = "x AND NOT"
output = { target_size = 0 }

[[segment]]
name = "z"
kind = "model"
feature_set = "nope"
label = { kind = "future_events", where = "true", horizon_days = 1 }
model = { tune = { trials = 0, folds = 1, space = { l2 = { log_uniform = [0.0, 1.0] }, max_iter = { int = [1, 5] } } } }
"#,
        ),
        ("segments/syntax.toml", "[[segment]\nname = 1"),
    ]);
    let err = load_project(dir.path(), &LoadOptions::default()).unwrap_err();
    let text = err.to_string();
    for needle in [
        "sources[0].brokers: missing",
        "sources[0].topics: missing",
        "feature_sets[0].windows_days",
        "`vibes`",
        "defaults.test_fraction",
        "segment[0].feature_set: unknown feature set `nope`",
        "segment[0].label.horizon_days",
        "segment[0].model.l2",
        "segment[0].model.l1",
        "segment[0].output: give one threshold rule, not top_fraction and min_precision",
        "segment[1].combine",
        "segment[1].output.target_size",
        "segment[2].model.tune.space: l2: log_uniform needs 0 < low < high",
        "segment[2].model.tune.space.max_iter: `logistic_regression` tunes `l2` and `l1` only",
        "segment[2].model.tune: trials = 0",
        "segment[2].model.tune.folds: 1: must be in 2..=20",
        "syntax.toml: line 1",
    ] {
        assert!(text.contains(needle), "missing `{needle}` in:\n{text}");
    }
    assert!(err.0.len() >= 9, "{text}");
}

#[test]
fn gbdt_segments_are_validated_at_load_time() {
    let good = r#"
[[segment]]
name = "trees"
kind = "model"
feature_set = "behaviour"
label = { kind = "future_events", where = "true" }

[segment.model]
algorithm = "gbdt"
params = { learning_rate = 0.05, n_estimators = 200, growth = "leaf_wise", max_leaves = 15 }

[[segment]]
name = "linear"
kind = "model"
feature_set = "behaviour"
label = { kind = "future_events", where = "true" }
model = { l2 = 0.01 }
"#;
    let dir = project(&[("spire.toml", BASE), ("segments/a.toml", good)]);
    let p = load_project(dir.path(), &LoadOptions::default()).unwrap();
    let model = |i: usize| match &p.segments[i].kind {
        SegmentKind::Model(m) => m.clone(),
        other => panic!("{other:?}"),
    };
    let trees = model(0);
    assert_eq!(trees.algorithm, "gbdt");
    assert_eq!(trees.params["learning_rate"], 0.05);
    assert_eq!(trees.params["n_estimators"], 200);
    assert_eq!(trees.params["growth"], "leaf_wise");
    assert_eq!(trees.params["max_depth"], 5, "defaults are filled in");
    let linear = model(1);
    assert_eq!(linear.algorithm, "logistic_regression");
    assert_eq!(
        linear.params,
        serde_json::json!({"l2": 0.01, "l1": 0.0, "max_iter": 100})
    );

    let bad = r#"
[[segment]]
name = "a"
kind = "model"
feature_set = "behaviour"
label = { kind = "future_events", where = "true" }
model = { algorithm = "gbdt", params = { learning_rate = 0.0 } }

[[segment]]
name = "b"
kind = "model"
feature_set = "behaviour"
label = { kind = "future_events", where = "true" }
model = { algorithm = "gbdt", l2 = 1.0, params = { learning_rat = 0.1, depth = 3 } }

[[segment]]
name = "c"
kind = "model"
feature_set = "behaviour"
label = { kind = "future_events", where = "true" }
model = { algorithm = "xgboost" }

[[segment]]
name = "d"
kind = "model"
feature_set = "behaviour"
label = { kind = "future_events", where = "true" }
model = { algorithm = "gbdt", params = { growth = "sideways" }, tune = { space = { l2 = { log_uniform = [1e-5, 1.0] } } } }

[[segment]]
name = "e"
kind = "model"
feature_set = "behaviour"
label = { kind = "future_events", where = "true" }
model = { params = { learning_rate = 0.1 } }
"#;
    let dir = project(&[("spire.toml", BASE), ("segments/bad.toml", bad)]);
    let err = load_project(dir.path(), &LoadOptions::default()).unwrap_err();
    let text = err.to_string();
    for needle in [
        "bad.toml",
        "segment[0].model.params.learning_rate: 0: must be in (0, 1]",
        "segment[1].model.l2: `gbdt` takes its params in `[segment.model.params]`",
        "segment[1].model.params.learning_rat: unknown gbdt param",
        "segment[1].model.params.depth: unknown gbdt param",
        "segment[2].model.algorithm: `xgboost`: available algorithms: logistic_regression, gbdt, import",
        "segment[3].model.tune: tuning is available for `logistic_regression` only",
        "segment[4].model.params: `logistic_regression` takes",
    ] {
        assert!(text.contains(needle), "missing `{needle}` in:\n{text}");
    }
}

#[test]
fn imported_models_are_validated_at_load_time() {
    let good = r#"
[[segment]]
name = "byom"
kind = "model"
feature_set = "behaviour"
label = { kind = "future_events", where = "true" }
model = { algorithm = "import", file = "models/churn.onnx", features = ["a", "b"] }

[[segment]]
name = "trees"
kind = "model"
feature_set = "behaviour"
label = { kind = "future_events", where = "true" }
model = { algorithm = "import", file = "models/churn.txt" }
"#;
    let dir = project(&[
        ("spire.toml", BASE),
        ("segments/a.toml", good),
        ("models/churn.onnx", "x"),
        ("models/churn.txt", "tree"),
    ]);
    let p = load_project(dir.path(), &LoadOptions::default()).unwrap();
    let import = |i: usize| match &p.segments[i].kind {
        SegmentKind::Model(m) => m.import.clone().unwrap(),
        other => panic!("{other:?}"),
    };
    assert_eq!(import(0).format(), "onnx");
    assert!(import(0).path.ends_with("models/churn.onnx") && import(0).path.is_file());
    assert_eq!(
        import(0).features,
        Some(vec!["a".to_string(), "b".to_string()])
    );
    assert_eq!((import(1).format(), import(1).features), ("lightgbm", None));

    let bad = r#"
[[segment]]
name = "a"
kind = "model"
feature_set = "behaviour"
label = { kind = "future_events", where = "true" }
model = { algorithm = "import" }

[[segment]]
name = "b"
kind = "model"
feature_set = "behaviour"
label = { kind = "future_events", where = "true" }
model = { algorithm = "import", file = "models/nope.onnx", l2 = 0.1 }

[[segment]]
name = "c"
kind = "model"
feature_set = "behaviour"
label = { kind = "future_events", where = "true" }
model = { file = "models/x.onnx" }

[[segment]]
name = "d"
kind = "model"
feature_set = "behaviour"
label = { kind = "future_events", where = "true" }
model = { algorithm = "import", file = "models/x.onnx", features = ["a", "a"] }
"#;
    let dir = project(&[
        ("spire.toml", BASE),
        ("segments/bad.toml", bad),
        ("models/x.onnx", "x"),
    ]);
    let text = load_project(dir.path(), &LoadOptions::default())
        .unwrap_err()
        .to_string();
    for needle in [
        "segment[0].model.file: missing: `algorithm = \"import\"` needs the model file",
        "segment[1].model.l2: an imported model is trained elsewhere",
        "nope.onnx does not exist",
        "segment[2].model.file: only `algorithm = \"import\"` reads a model file",
        "segment[3].model.features: `a` is listed twice",
    ] {
        assert!(text.contains(needle), "missing `{needle}` in:\n{text}");
    }
}

#[test]
fn env_sections_and_overrides_apply() {
    let text = format!("{BASE}\n[env.prod.storage]\nlake = \"s3://bucket/lake\"\n");
    let dir = project(&[("spire.toml", &text)]);
    let p = load_project(
        dir.path(),
        &LoadOptions {
            env: Some("prod".into()),
            overrides: vec![],
        },
    )
    .unwrap();
    assert_eq!(p.storage.lake, "s3://bucket/lake");
    let err = load_project(
        dir.path(),
        &LoadOptions {
            env: Some("staging".into()),
            overrides: vec![],
        },
    )
    .unwrap_err();
    assert!(err.to_string().contains("no `[env.staging]` section"));
    let o = LoadOptions {
        env: None,
        overrides: vec![("SPIRE__INTAKE__MAX_FUTURE_SKEW_SECS".into(), "42".into())],
    };
    assert_eq!(
        load_project(dir.path(), &o)
            .unwrap()
            .intake
            .max_future_skew_secs,
        42
    );
}

#[test]
fn missing_project_says_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let err = load_project(dir.path(), &LoadOptions::default()).unwrap_err();
    assert!(err.to_string().contains("spire init"), "{err}");
}

#[test]
fn segment_expressions_parse() {
    let e = SegmentExpr::parse("a AND NOT (b OR c)").unwrap();
    let mut names = Vec::new();
    e.names(&mut names);
    assert_eq!(names, vec!["a", "b", "c"]);
    assert!(SegmentExpr::parse("a AND").is_err());
    assert!(SegmentExpr::parse("(a").is_err());
}

const SCHEDULED: &str = r#"
[[segment]]
name = "reads-{value}"
kind = "model"
feature_set = "behaviour"
for_each = { values = ["tech", "travel"] }
label = { kind = "future_events", where = "category = '{value}'" }

[[segment]]
name = "gbdt-buyers"
kind = "model"
feature_set = "behaviour"
label = { kind = "future_events", where = "event_type = 'purchase'" }
model = { algorithm = "gbdt" }
schedule = { cron = "30 2 * * 1", timezone = "America/New_York", pool = "gbdt", retries = 5, catchup = "all" }
"#;

#[test]
fn segments_inherit_the_project_schedule_and_may_override_it() {
    let spire = format!(
        "{BASE}\n[schedule]\ncron = \"0 6 * * *\"\ntimezone = \"Europe/Berlin\"\nretry_backoff_secs = 30\n\n[scheduler]\nmax_running = 4\npools = {{ gbdt = 2 }}\n"
    );
    let dir = project(&[("spire.toml", &spire), ("segments/s.toml", SCHEDULED)]);
    let p = load_project(dir.path(), &LoadOptions::default()).unwrap();
    assert_eq!(p.scheduler.max_running, Some(4));
    assert_eq!(p.scheduler.pools["gbdt"], 2);
    assert_eq!(p.scheduler.lease_secs, 60);
    assert_eq!(
        p.scheduler.keep_finished_days,
        Some(30),
        "the default retention"
    );
    let family = &p.segments[0].schedule;
    let s = family.schedule.as_ref().unwrap();
    assert_eq!((s.expr(), s.timezone()), ("0 6 * * *", "Europe/Berlin"));
    assert_eq!(family.retry_backoff_secs, 30);
    assert_eq!(family.retries, 2);
    assert_eq!(family.catchup, Catchup::Latest);
    assert_eq!(family.pool, None);
    let own = &p.segments[1].schedule;
    let s = own.schedule.as_ref().unwrap();
    assert_eq!((s.expr(), s.timezone()), ("30 2 * * 1", "America/New_York"));
    assert_eq!(
        (own.retries, own.catchup, own.pool.as_deref()),
        (5, Catchup::All, Some("gbdt"))
    );
    assert_eq!(own.retry_backoff_secs, 30, "inherited key by key");
}

#[test]
fn bad_schedules_are_rejected_with_file_and_key() {
    let spire =
        format!("{BASE}\n[schedule]\ncron = \"0 6 * *\"\n\n[scheduler]\npools = {{ gbdt = 0 }}\n");
    let segments = r#"
[[segment]]
name = "a"
kind = "model"
feature_set = "behaviour"
label = { kind = "future_events", where = "true" }
schedule = { cron = "0 6 * * *", timezone = "Mars/Olympus" }

[[segment]]
name = "b"
kind = "model"
feature_set = "behaviour"
label = { kind = "future_events", where = "true" }
schedule = { cron = "61 * * * *", pool = "gpu", catchup = "some" }
"#;
    let dir = project(&[("spire.toml", &spire), ("segments/bad.toml", segments)]);
    let err = load_project(dir.path(), &LoadOptions::default()).unwrap_err();
    let text = err.to_string();
    for needle in [
        "spire.toml: schedule.cron: cron expression \"0 6 * *\" has 4 fields",
        "scheduler.pools.gbdt: a pool needs at least 1 slot",
        "bad.toml: segment[0].schedule.timezone: unknown time zone \"Mars/Olympus\"",
        "bad.toml: segment[1].schedule.cron: invalid cron expression \"61 * * * *\"",
        "bad.toml: segment[1].schedule.pool: pool \"gpu\" does not exist",
        "bad.toml: segment[1].schedule.catchup: unknown catch-up policy \"some\"",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
    // The project default's bad cron is reported once, in spire.toml, not per segment.
    assert_eq!(text.matches("has 4 fields").count(), 1, "{text}");
}

#[test]
fn combine_cycles_are_rejected_naming_the_loop() {
    let segments = r#"
[[segment]]
name = "a"
kind = "rule"
combine = "b AND NOT c"

[[segment]]
name = "b"
kind = "rule"
combine = "c OR a"

[[segment]]
name = "c"
kind = "rule"
feature_set = "behaviour"
where = "true"
"#;
    let dir = project(&[("spire.toml", BASE), ("segments/loop.toml", segments)]);
    let err = load_project(dir.path(), &LoadOptions::default()).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("loop.toml: segment `a`.combine: combine references form a cycle: a → b → a"),
        "{text}"
    );
    assert_eq!(text.matches("form a cycle").count(), 1, "{text}");
}

#[test]
fn kafka_sources_are_validated() {
    let ok = project(&[(
        "spire.toml",
        r#"
[[sources]]
name = "clicks"
kind = "kafka"
brokers = "k1:9092,k2:9092"
topics = ["clickstream"]
start_from = "latest"
[sources.options]
"security.protocol" = "SASL_SSL"
"#,
    )]);
    let p = load_project(ok.path(), &LoadOptions::default()).unwrap();
    let SourceKind::Kafka(k) = &p.sources[0].kind else {
        panic!("not a kafka source: {:?}", p.sources[0].kind);
    };
    assert_eq!(k.group_id, "spire-clicks");
    assert_eq!(k.start_from, StartFrom::Latest);
    assert_eq!(k.batch_max_wait_ms, 1000);
    assert_eq!(k.options["security.protocol"], "SASL_SSL");
    assert!(p.sources[0].kind.is_stream());

    let bad = project(&[(
        "spire.toml",
        r#"
[[sources]]
name = "clicks"
kind = "kafka"
brokers = "k1:9092"
topics = ["clickstream"]
start_from = "yesterday"
batch_max_wait_ms = 0
[sources.options]
"enable.auto.commit" = "true"
"#,
    )]);
    let text = load_project(bad.path(), &LoadOptions::default())
        .unwrap_err()
        .to_string();
    for needle in [
        "sources[0].start_from: `yesterday`: expected `earliest` or `latest`",
        "sources[0].batch_max_wait_ms: 0",
        "sources[0].options.enable.auto.commit: Spire sets this itself",
    ] {
        assert!(text.contains(needle), "missing `{needle}` in:\n{text}");
    }
}

#[test]
fn kinesis_sources_are_validated() {
    let ok = project(&[(
        "spire.toml",
        r#"
[[sources]]
name = "clicks-kinesis"
kind = "kinesis"
stream = "clickstream"
region = "eu-west-1"
endpoint = "http://127.0.0.1:4567"
batch_max_wait_ms = 250
"#,
    )]);
    let p = load_project(ok.path(), &LoadOptions::default()).unwrap();
    let SourceKind::Kinesis(k) = &p.sources[0].kind else {
        panic!("not a kinesis source: {:?}", p.sources[0].kind);
    };
    assert_eq!(k.stream, "clickstream");
    assert_eq!(k.region.as_deref(), Some("eu-west-1"));
    assert_eq!(k.endpoint.as_deref(), Some("http://127.0.0.1:4567"));
    assert_eq!(k.start_from, StartFrom::Earliest);
    assert_eq!(k.batch_max_wait_ms, 250);
    assert_eq!(k.batch_max_bytes, 64 << 20);
    assert!(p.sources[0].kind.is_stream());

    let bad = project(&[(
        "spire.toml",
        r#"
[[sources]]
name = "clicks"
kind = "kinesis"
endpoint = "127.0.0.1:4567"
start_from = "now"
[sources.options]
"aws_secret_access_key" = "x"
"#,
    )]);
    let text = load_project(bad.path(), &LoadOptions::default())
        .unwrap_err()
        .to_string();
    for needle in [
        "sources[0].stream: missing: a kinesis source needs `stream`",
        "sources[0].endpoint: `127.0.0.1:4567`: expected an http:// or https:// URL",
        "sources[0].start_from: `now`: expected `earliest` or `latest`",
        "sources[0].options: kinesis sources take no `options`",
    ] {
        assert!(text.contains(needle), "missing `{needle}` in:\n{text}");
    }
}

#[test]
fn fallbacks_name_another_stream_source() {
    let ok = project(&[(
        "spire.toml",
        r#"
[[sources]]
name = "clicks"
kind = "kafka"
brokers = "k1:9092"
topics = ["clickstream"]
fallback = "clicks-kinesis"
failover_after_secs = 10

[[sources]]
name = "clicks-kinesis"
kind = "kinesis"
stream = "clickstream"
"#,
    )]);
    let p = load_project(ok.path(), &LoadOptions::default()).unwrap();
    assert_eq!(
        p.sources[0].fallback,
        Some(Fallback {
            source: "clicks-kinesis".into(),
            after_secs: 10
        })
    );
    assert_eq!(p.sources[1].fallback, None);

    let bad = project(&[(
        "spire.toml",
        r#"
[[sources]]
name = "clicks"
kind = "kafka"
brokers = "k1:9092"
topics = ["clickstream"]
fallback = "nowhere"

[[sources]]
name = "files"
kind = "file"
path = "x/*.jsonl"
fallback = "clicks"

[[sources]]
name = "k2"
kind = "kafka"
brokers = "k1:9092"
topics = ["clickstream"]
fallback = "files"
failover_after_secs = 0

[[sources]]
name = "k3"
kind = "kafka"
brokers = "k1:9092"
topics = ["clickstream"]
failover_after_secs = 5
"#,
    )]);
    let text = load_project(bad.path(), &LoadOptions::default())
        .unwrap_err()
        .to_string();
    for needle in [
        "sources[0].fallback: `nowhere`: no source has this name",
        "sources[1].fallback: only stream sources (kafka, kinesis) fail over",
        "sources[2].fallback: `files` is not a stream",
        "sources[2].failover_after_secs: 0: must be in 1..=86400",
        "sources[3].failover_after_secs: set without `fallback`",
    ] {
        assert!(text.contains(needle), "missing `{needle}` in:\n{text}");
    }
}
