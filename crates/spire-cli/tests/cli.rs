//! The `spire` binary: exit codes, messages, scaffolding, JSON output.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::process::Command;

fn spire(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_spire"))
        .args(args)
        .env("SPIRE_LOG", "error")
        .output()
        .unwrap()
}

#[test]
fn broken_config_exits_2_and_lists_every_problem() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("spire.toml"),
        "[[sources]]\nname = \"a\"\nkind = \"ftp\"\n[[feature_sets]]\nname = \"B-ad\"\n",
    )
    .unwrap();
    let out = spire(&["--project", dir.path().to_str().unwrap(), "validate"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("2 problem(s)"), "{err}");
    assert!(
        err.contains("sources[0].kind") && err.contains("feature_sets[0].name"),
        "{err}"
    );
}

#[test]
fn init_scaffolds_a_valid_project_and_ingest_reports_json() {
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("p");
    let p = project.to_str().unwrap();
    assert!(spire(&["init", p]).status.success());
    let out = spire(&["--project", p, "validate", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["valid"], true);

    // No events yet: a clear error naming the glob, exit code 2.
    let out = spire(&["--project", p, "ingest"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no file matches"));

    let file = project.join("events/day1.jsonl");
    std::fs::write(&file, "{\"event_id\":\"1\",\"user_id\":\"u1\",\"ts\":1730000000,\"event_type\":\"pageview\"}\nnot json\n").unwrap();
    let out = spire(&[
        "--project",
        p,
        "--json",
        "ingest",
        "--path",
        file.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let r = &v["sources"][0]["reconciliation"];
    assert_eq!(
        (
            r["read"].as_u64(),
            r["accepted"].as_u64(),
            r["dead_lettered"].as_u64()
        ),
        (Some(2), Some(1), Some(1))
    );

    let out = spire(&["--project", p, "sql", "SELECT reason FROM dead_letters"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("malformed JSON"));
    let out = spire(&["--project", p, "sql", "SELECT nope FROM events"]);
    assert_eq!(out.status.code(), Some(2), "bad SQL is bad input");
}

#[test]
fn unknown_env_and_missing_project_are_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let out = spire(&["--project", dir.path().to_str().unwrap(), "runs", "list"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("spire init"));
}

const SHOPPERS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/data/online_shoppers_intention/online_shoppers_intention.csv"
);

#[test]
fn ml_evaluate_cross_validates_a_csv_reproducibly() {
    let run = || {
        let out = spire(&[
            "--json", "ml", "evaluate", "--data", SHOPPERS, "--label", "Revenue", "--cv", "4",
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let v = run();
    assert_eq!(v["rows"], 12330);
    assert_eq!(v["positives"], 1908, "TRUE/FALSE label read as booleans");
    // Month, VisitorType and Weekend are text or booleans: one-hot encoded.
    assert_eq!(v["categorical_columns"], 3);
    let auc = &v["cv"]["metrics"][0];
    assert_eq!(auc["name"], "roc_auc");
    assert_eq!(auc["values"].as_array().unwrap().len(), 4);
    let mean = auc["mean"].as_f64().unwrap();
    assert!((0.85..0.95).contains(&mean), "AUC {mean}");
    assert_eq!(run()["cv"], v["cv"], "same seed, same folds, same metrics");

    // --save writes the encoder + model, which loads back as one tabular model.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.json");
    let out = spire(&[
        "--json",
        "ml",
        "evaluate",
        "--data",
        SHOPPERS,
        "--label",
        "Revenue",
        "--cv",
        "2",
        "--save",
        path.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let artifact = spire_ml::Artifact::from_bytes(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(artifact.flavor, "tabular");
    assert!(artifact.feature_names.iter().any(|c| c == "VisitorType"));
    assert!(
        !artifact.feature_names.iter().any(|c| c == "Revenue"),
        "the label is not a feature"
    );
    assert_eq!(spire_ml::load_model(&artifact).unwrap().kind(), "tabular");
}

#[test]
fn ml_evaluate_bad_input_exits_2_naming_the_problem() {
    let out = spire(&["ml", "evaluate", "--data", SHOPPERS, "--label", "Month"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("\"Month\"") && err.contains("--positive"),
        "{err}"
    );
    let out = spire(&[
        "ml", "evaluate", "--data", SHOPPERS, "--label", "Revenue", "--drop", "nosuch",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("\"nosuch\""));
    let out = spire(&[
        "ml", "evaluate", "--data", SHOPPERS, "--label", "Revenue", "--params", "l2=-1",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("l2 = -1: must be >= 0"));
}

#[test]
fn runs_search_and_manual_promotion_with_audit_log() {
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("demo");
    let p = project.to_str().unwrap();
    let out = spire(&[
        "--json", "demo", "--dir", p, "--users", "1500", "--days", "16", "--seed", "3",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = spire(&["--project", p, "--json", "run", "reads-gadgets"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // MLflow filter grammar and ordering from the command line.
    let out = spire(&[
        "--project",
        p,
        "--json",
        "runs",
        "list",
        "--filter",
        "metrics.auc > 0 and params.algorithm = 'logistic_regression'",
        "--order-by",
        "metrics.auc DESC",
        "--limit",
        "100",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let runs: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert!(runs.len() >= 21, "{} runs", runs.len());
    let aucs: Vec<f64> = runs
        .iter()
        .map(|r| r["metrics"]["auc"].as_f64().unwrap())
        .collect();
    assert!(
        aucs.windows(2).all(|w| w[0] >= w[1]),
        "ordered by AUC: {aucs:?}"
    );
    let out = spire(&["--project", p, "runs", "list", "--filter", "metrics.auc >"]);
    assert_eq!(out.status.code(), Some(2), "a broken filter is bad input");

    // Promote by hand, then roll back; every move is in the audit log with its reason.
    for (v, why) in [("1", "first pick"), ("2", "second pick")] {
        let out = spire(&[
            "--project",
            p,
            "models",
            "promote",
            "reads-gadgets",
            v,
            "--reason",
            why,
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = spire(&[
        "--project",
        p,
        "--json",
        "models",
        "rollback",
        "reads-gadgets",
        "--reason",
        "bad week",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let moved: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(moved["version"], 1);
    let out = spire(&[
        "--project",
        p,
        "--json",
        "models",
        "history",
        "reads-gadgets",
    ]);
    let events: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let last = events.last().unwrap();
    assert_eq!(
        (last["from_version"].as_i64(), last["to_version"].as_i64()),
        (Some(2), Some(1))
    );
    assert!(last["reason"].as_str().unwrap().contains("bad week"));
    let out = spire(&[
        "--project",
        p,
        "models",
        "promote",
        "reads-gadgets",
        "99",
        "--reason",
        "x",
    ]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "an unknown version is `not found`: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
