//! The `spire` binary: exit codes, messages, scaffolding, JSON output.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::process::Command;

/// Fails the test with the command's stderr unless it succeeded.
fn assert_ok(out: &std::process::Output) {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `spire demo` into `project` (a small synthetic project, trained once).
fn demo(project: &str, users: &str, seed: &str) {
    assert_ok(&spire(&[
        "--json", "demo", "--dir", project, "--users", users, "--days", "16", "--seed", seed,
    ]));
}

/// Starts `spire serve --addr addr` and waits until `/healthz` answers on `probe`.
fn start_serve(project: &str, addr: &str, probe: &str) -> std::process::Child {
    let child = Command::new(env!("CARGO_BIN_EXE_spire"))
        .args(["--project", project, "serve", "--addr", addr])
        .env("SPIRE_LOG", "error")
        .env_remove("SPIRE_ADMIN_TOKEN")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    for _ in 0..300 {
        if http_status(probe, "/healthz", None) == Some(200) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    child
}

/// Stops a child and returns what it wrote to stderr.
fn stop(mut child: std::process::Child) -> String {
    child.kill().unwrap();
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        std::io::Read::read_to_string(&mut e, &mut err).unwrap();
    }
    child.wait().unwrap();
    err
}

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
    assert_ok(&out);
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
    assert_ok(&out);
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
        assert_ok(&out);
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
    assert_ok(&out);
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

/// A small table with a fold column: `y` is true when `x` is above 0.5 or `x` is missing
/// and `channel` is "b"; `fold` deals rows to folds 1..=4 within each class.
fn fold_table(dir: &std::path::Path, fold: impl Fn(usize, bool) -> String) -> String {
    let mut csv = String::from("x,channel,fold,y\n");
    let (mut pos, mut neg) = (0, 0);
    for i in 0..400 {
        let missing = i % 10 == 3;
        let x = (i * 37 % 100) as f64 / 100.0;
        let channel = ["a", "b", "c"][i % 3];
        let y = if missing { channel == "b" } else { x > 0.5 };
        let n = if y { &mut pos } else { &mut neg };
        let f = fold(*n, y);
        *n += 1;
        let x = if missing {
            String::new()
        } else {
            x.to_string()
        };
        csv.push_str(&format!("{x},{channel},{f},{y}\n"));
    }
    let path = dir.join("folds.csv");
    std::fs::write(&path, csv).unwrap();
    path.to_str().unwrap().to_string()
}

#[test]
fn ml_evaluate_gbdt_on_a_fold_column() {
    let dir = tempfile::tempdir().unwrap();
    let data = fold_table(dir.path(), |n, _| (n % 4 + 1).to_string());
    let model = dir.path().join("gbdt.json");
    let out = spire(&[
        "--json",
        "ml",
        "evaluate",
        "--data",
        &data,
        "--label",
        "y",
        "--fold-column",
        "fold",
        "--algorithm",
        "gbdt",
        "--params",
        "n_estimators=30,learning_rate=0.2,max_depth=3,min_leaf_weight=0.5",
        "--save",
        model.to_str().unwrap(),
    ]);
    assert_ok(&out);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["algorithm"], "gbdt");
    assert_eq!(v["fold_column"], "fold");
    assert_eq!(v["params"]["n_estimators"], 30);
    // x, x__missing and three channels: the fold column is not a feature.
    assert_eq!(v["encoded_features"], 5);
    let auc = &v["cv"]["metrics"][0];
    assert_eq!(auc["values"].as_array().unwrap().len(), 4);
    assert!(auc["mean"].as_f64().unwrap() > 0.97, "{auc}");
    let artifact = spire_ml::Artifact::from_bytes(&std::fs::read(&model).unwrap()).unwrap();
    assert_eq!(artifact.payload["model"]["flavor"], "gbdt");
    assert!(!artifact.feature_names.iter().any(|c| c == "fold"));

    // The human form names the fold column; `--positive TRUE` finds the boolean `true`.
    let out = spire(&[
        "ml",
        "evaluate",
        "--data",
        &data,
        "--label",
        "y",
        "--fold-column",
        "fold",
        "--positive",
        "TRUE",
    ]);
    assert_ok(&out);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("4-fold cross-validation on column \"fold\"")
    );
}

#[test]
fn ml_evaluate_bad_fold_column_exits_2_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let good = fold_table(dir.path(), |n, _| (n % 4).to_string());
    let run = |data: &str, extra: &[&str]| {
        let mut args = vec!["ml", "evaluate", "--data", data, "--label", "y"];
        args.extend_from_slice(extra);
        let out = spire(&args);
        assert_eq!(out.status.code(), Some(2));
        String::from_utf8_lossy(&out.stderr).to_string()
    };
    let err = run(&good, &["--fold-column", "nosuch"]);
    assert!(err.contains("no fold column \"nosuch\""), "{err}");
    let err = run(&good, &["--fold-column", "fold", "--cv", "3"]);
    assert!(err.contains("--cv 3") && err.contains("4 folds"), "{err}");
    let err = run(&good, &["--fold-column", "y"]);
    assert!(err.contains("label column"), "{err}");
    let sub = tempfile::tempdir().unwrap();
    let gaps = fold_table(sub.path(), |n, _| {
        if n == 7 {
            String::new()
        } else {
            (n % 4).to_string()
        }
    });
    let err = run(&gaps, &["--fold-column", "fold"]);
    assert!(err.contains("no value in fold column \"fold\""), "{err}");
    let sub = tempfile::tempdir().unwrap();
    let halves = fold_table(sub.path(), |n, _| format!("{}.5", n % 3));
    let err = run(&halves, &["--fold-column", "fold"]);
    assert!(err.contains("must be integers or labels"), "{err}");
    let sub = tempfile::tempdir().unwrap();
    let skewed = fold_table(sub.path(), |n, y| {
        if y {
            "a".into()
        } else {
            ["a", "b"][n % 2].into()
        }
    });
    let err = run(&skewed, &["--fold-column", "fold"]);
    assert!(
        err.contains("fold \"b\"") && err.contains("no positive rows"),
        "{err}"
    );
}

#[test]
fn runs_search_and_manual_promotion_with_audit_log() {
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("demo");
    let p = project.to_str().unwrap();
    demo(p, "1500", "3");
    let out = spire(&["--project", p, "--json", "run", "reads-gadgets"]);
    assert_ok(&out);

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
    assert_ok(&out);
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
        assert_ok(&out);
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
    assert_ok(&out);
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

/// A free loopback port (bound, then released).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The status code of `GET path` on `addr`, with an optional bearer token; `None` when
/// nothing accepts the connection.
fn http_status(addr: &str, path: &str, token: Option<&str>) -> Option<u16> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect_timeout(
        &addr.parse().unwrap(),
        std::time::Duration::from_secs(2),
    )
    .ok()?;
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    response.split_whitespace().nth(1)?.parse().ok()
}

/// This machine's address on its main interface, if it has one beyond loopback.
fn outward_ip() -> Option<std::net::IpAddr> {
    let socket = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    socket.connect("10.255.255.255:1").ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

#[test]
fn serve_stays_on_loopback_until_a_token_exists_then_requires_one() {
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("p");
    let p = project.to_str().unwrap();
    assert!(spire(&["init", p]).status.success());

    // No token: asked for every interface, it listens on loopback only and says so.
    let port = free_port();
    let loopback = format!("127.0.0.1:{port}");
    let child = start_serve(p, &format!("0.0.0.0:{port}"), &loopback);
    assert_eq!(http_status(&loopback, "/v1/segments", None), Some(200));
    if let Some(ip) = outward_ip() {
        let outside = std::net::SocketAddr::new(ip, port).to_string();
        assert_eq!(
            http_status(&outside, "/healthz", None),
            None,
            "reachable on {outside} without a token"
        );
    }
    let err = stop(child);
    assert!(
        err.contains(&format!("listens on 127.0.0.1:{port} only"))
            && err.contains("spire tokens create"),
        "{err}"
    );

    // A write token: printed once, listed without its secret.
    let out = spire(&["--project", p, "tokens", "create", "ci", "--role", "write"]);
    assert_ok(&out);
    let secret = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(secret.starts_with("spire_"), "{secret}");
    let out = spire(&["--project", p, "--json", "tokens", "list"]);
    let listed = String::from_utf8_lossy(&out.stdout).to_string();
    let v: serde_json::Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(v[0]["name"], "ci");
    assert_eq!(v[0]["role"], "write");
    assert!(
        !listed.contains(&secret[6..]),
        "the secret is never shown again"
    );
    let out = spire(&["--project", p, "tokens", "create", "bad", "--role", "owner"]);
    assert_eq!(out.status.code(), Some(2));

    // With a token, every interface, and every request but /healthz needs the token.
    let port = free_port();
    let loopback = format!("127.0.0.1:{port}");
    let child = start_serve(p, &format!("0.0.0.0:{port}"), &loopback);
    let statuses = (
        http_status(&loopback, "/v1/segments", None),
        http_status(&loopback, "/v1/segments", Some(&secret)),
        http_status(
            &loopback,
            "/api/2.0/mlflow/experiments/search?max_results=10",
            Some(&secret),
        ),
        outward_ip().map(|ip| {
            http_status(
                &std::net::SocketAddr::new(ip, port).to_string(),
                "/healthz",
                None,
            )
        }),
    );
    stop(child);
    assert_eq!(statuses.0, Some(401));
    assert_eq!(statuses.1, Some(200));
    assert_eq!(statuses.2, Some(200));
    if let Some(outside) = statuses.3 {
        assert_eq!(
            outside,
            Some(200),
            "a token lets the server listen beyond loopback"
        );
    }
    let out = spire(&["--project", p, "tokens", "revoke", "ci"]);
    assert!(out.status.success());
}

#[test]
fn scheduled_runs_survive_a_killed_worker_without_duplicating_output() {
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("demo");
    let p = project.to_str().unwrap();
    demo(p, "1200", "5");
    let toml = project.join("spire.toml");
    let mut text = std::fs::read_to_string(&toml).unwrap();
    text.push_str("\n[schedule]\ncron = \"0 6 * * *\"\nretry_backoff_secs = 1\n\n[scheduler]\nlease_secs = 5\n");
    std::fs::write(&toml, text).unwrap();

    let out = spire(&["--project", p, "--json", "dag", "reads-gadgets"]);
    assert_ok(&out);
    let dag: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let kinds: Vec<&str> = dag["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        vec!["snapshot", "train", "score", "publish"],
        "{dag}"
    );
    assert_eq!(
        dag["tasks"][1]["segments"].as_array().unwrap().len(),
        20,
        "one fused training for the family"
    );

    let out = spire(&["--project", p, "--json", "scheduler", "--once"]);
    assert_ok(&out);
    let tick: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let planned = tick["planned_tasks"].as_u64().unwrap();
    assert!(planned >= 4, "{tick}");

    let tasks = |state: Option<&str>| -> Vec<serde_json::Value> {
        let mut args = vec!["--project", p, "--json", "tasks", "list", "--limit", "100"];
        if let Some(s) = state {
            args.extend(["--state", s]);
        }
        let out = spire(&args);
        assert_ok(&out);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v["tasks"].as_array().unwrap().clone()
    };
    // A worker starts, and is SIGKILLed while it runs a task.
    let mut victim = Command::new(env!("CARGO_BIN_EXE_spire"))
        .args(["--project", p, "worker", "--id", "victim"])
        .env("SPIRE_LOG", "error")
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut killed_task = None;
    for _ in 0..600 {
        if let Some(t) = tasks(Some("running")).first() {
            killed_task = Some(t["task_id"].as_i64().unwrap());
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    victim.kill().unwrap();
    victim.wait().unwrap();
    let killed_task = killed_task.expect("the victim never ran a task");

    // After its lease expires the scheduler takes the task back; another worker finishes.
    std::thread::sleep(std::time::Duration::from_millis(5500));
    let out = spire(&["--project", p, "--json", "scheduler", "--once"]);
    let tick: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(tick["requeued"], serde_json::json!([killed_task]), "{tick}");
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let out = spire(&["--project", p, "worker", "--drain", "--id", "rescuer"]);
    assert_ok(&out);

    let all = tasks(None);
    assert_eq!(all.len() as u64, planned, "no task lost or added");
    assert!(all.iter().all(|t| t["state"] == "succeeded"), "{all:?}");
    let out = spire(&[
        "--project",
        p,
        "--json",
        "tasks",
        "logs",
        &killed_task.to_string(),
    ]);
    let logs: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let attempts: Vec<(String, String)> = logs["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["worker"].as_str().unwrap().into(),
                a["result"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        attempts,
        vec![
            ("victim".to_string(), "lost".to_string()),
            ("rescuer".to_string(), "succeeded".to_string())
        ]
    );
    // The training runs name the task that made them.
    let train = all.iter().find(|t| t["kind"] == "train").unwrap();
    let filter = format!("tags.`spire.task_id` = '{}'", train["task_id"]);
    let out = spire(&[
        "--project",
        p,
        "--json",
        "runs",
        "list",
        "--filter",
        &filter,
        "--limit",
        "100",
    ]);
    assert_ok(&out);
    let runs: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        runs.len() >= 20,
        "{} runs of the fused training task",
        runs.len()
    );
    // The memberships the runs wrote are unique per (segment, user, as_of).
    let out = spire(&[
        "--project", p, "--json", "sql",
        "SELECT segment, user_id, as_of, COUNT(*) AS n FROM segments GROUP BY segment, user_id, as_of HAVING COUNT(*) > 1",
    ]);
    assert_ok(&out);
    let dupes: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(dupes, serde_json::json!([]), "duplicated memberships");
}

/// The python of the Airflow venv (`scripts/airflow-venv.sh`), from `SPIRE_AIRFLOW_PYTHON`.
fn airflow_python() -> String {
    match std::env::var("SPIRE_AIRFLOW_PYTHON") {
        Ok(p) if !p.is_empty() => p,
        _ => panic!(
            "\n\nSPIRE_AIRFLOW_PYTHON is not set. The Airflow export test checks the generated \
             DAGs with Airflow's own parser and is never skipped: run `scripts/airflow-venv.sh` \
             (it prints the venv's python) and export SPIRE_AIRFLOW_PYTHON=<that path>, or run \
             scripts/test, which does both.\n"
        ),
    }
}

#[test]
fn airflow_export_loads_in_airflows_own_parser() {
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("p");
    let quickstart =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/quickstart");
    std::fs::create_dir_all(project.join("segments")).unwrap();
    let mut toml = std::fs::read_to_string(quickstart.join("spire.toml")).unwrap();
    toml.push_str(
        "\n[schedule]\ncron = \"0 6 * * *\"\ntimezone = \"Europe/Berlin\"\nretries = 3\n\n[scheduler]\npools = { gbdt = 2 }\n",
    );
    std::fs::write(project.join("spire.toml"), toml).unwrap();
    for f in ["interests.toml", "rules.toml"] {
        std::fs::copy(
            quickstart.join("segments").join(f),
            project.join("segments").join(f),
        )
        .unwrap();
    }
    std::fs::write(
        project.join("segments/buyers.toml"),
        r#"
[[segment]]
name = "buyers"
kind = "model"
feature_set = "behaviour"
label = { kind = "future_events", where = "category = 'luxury'" }
model = { algorithm = "gbdt" }
schedule = { cron = "30 2 * * 1", timezone = "America/New_York", pool = "gbdt", retries = 1 }
"#,
    )
    .unwrap();
    let p = project.to_str().unwrap();
    let out_dir = dir.path().join("dags");
    let out = spire(&[
        "--project",
        p,
        "--json",
        "export",
        "airflow",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    assert_ok(&out);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let dags = v["dags"].as_array().unwrap();
    let ids: Vec<&str> = dags.iter().map(|d| d["dag_id"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        vec![
            "spire__0_6_x_x_x__europe_berlin",
            "spire__30_2_x_x_1__america_new_york"
        ]
    );
    assert_eq!(dags[0]["segments"], 22);
    assert_eq!(dags[1]["tasks"][1]["pool"], "gbdt");
    assert_eq!(dags[0]["tasks"][1]["retries"], 3);
    let pools: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("pools.json")).unwrap())
            .unwrap();
    assert_eq!(pools["gbdt"]["slots"], 2);

    let check =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/airflow_check.py");
    let out = Command::new(airflow_python())
        .arg(&check)
        .arg(&out_dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("AIRFLOW OK: 2 DAGs, 8 tasks"),
        "Airflow did not load the export\n--- stdout\n{stdout}\n--- stderr\n{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The command the tasks run names unknown DAGs and tasks clearly.
    let out = spire(&[
        "--project",
        p,
        "task",
        "run",
        "--dag",
        "nope",
        "--task",
        "x",
        "--logical-time",
        "2026-11-20T06:00:00+00:00",
    ]);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("spire__0_6_x_x_x__europe_berlin"));
    let out = spire(&[
        "--project",
        p,
        "task",
        "run",
        "--dag",
        "spire__0_6_x_x_x__europe_berlin",
        "--task",
        "train[x]",
        "--logical-time",
        "yesterday",
    ]);
    assert_eq!(out.status.code(), Some(2));
}

/// Parquet data files under a table folder (what is on disk, active or not).
fn parquet_files(table: &std::path::Path) -> usize {
    let mut n = 0;
    let mut todo = vec![table.to_path_buf()];
    while let Some(dir) = todo.pop() {
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = e.path();
            if path.is_dir() && !path.ends_with("_delta_log") {
                todo.push(path);
            } else if path.extension().is_some_and(|x| x == "parquet") {
                n += 1;
            }
        }
    }
    n
}

#[test]
fn lake_optimize_compacts_streamed_files_and_vacuum_removes_the_old_ones() {
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("p");
    let p = project.to_str().unwrap();
    assert!(spire(&["init", p]).status.success());
    // Small intake batches: one commit (one file per date) every 100 records.
    let toml = project.join("spire.toml");
    let text = std::fs::read_to_string(&toml).unwrap();
    std::fs::write(&toml, format!("{text}\n[intake]\nbatch_rows = 100\n")).unwrap();
    for day in 0..3 {
        let lines: String = (0..500)
            .map(|i| {
                format!(
                    "{{\"event_id\":\"d{day}-{i}\",\"user_id\":\"u{}\",\"ts\":{},\"event_type\":\"pageview\"}}\n",
                    i % 37,
                    1_730_000_000 + day * 86_400 + i * 60
                )
            })
            .collect();
        std::fs::write(project.join(format!("events/day{day}.jsonl")), lines).unwrap();
    }
    assert_ok(&spire(&["--project", p, "ingest"]));
    let table = project.join("spire-data/lake/events_raw");
    let files_before = parquet_files(&table);
    assert!(files_before >= 15, "{files_before} files");
    let digest = |p: &str| {
        let out = spire(&[
            "--project", p, "--json", "sql",
            "SELECT COUNT(*) AS n, COUNT(DISTINCT event_id) AS ids, SUM(source_offset) AS offsets FROM events_raw",
        ]);
        assert_ok(&out);
        String::from_utf8(out.stdout).unwrap()
    };
    let before = digest(p);

    let out = spire(&["--project", p, "--json", "lake", "optimize", "events_raw"]);
    assert_ok(&out);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let r = &report[0];
    assert_eq!(r["table"], "events_raw");
    assert_eq!(r["files_removed"].as_u64().unwrap() as usize, files_before);
    let files_after = r["files_added"].as_u64().unwrap() as usize;
    assert!(files_after <= 4, "one file per event date: {report}");
    assert_eq!(digest(p), before, "the rows are unchanged");

    // Vacuum: a short retention needs --force; a dry run deletes nothing.
    let out = spire(&["--project", p, "lake", "vacuum", "--retain-hours", "0"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--force"));
    let vacuum = |extra: &[&str]| -> serde_json::Value {
        let mut args = vec!["--project", p, "--json", "lake", "vacuum", "events_raw"];
        args.extend(["--retain-hours", "0", "--force"]);
        args.extend(extra);
        let out = spire(&args);
        assert_ok(&out);
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let dry = vacuum(&["--dry-run"]);
    assert_eq!(dry[0]["files"].as_array().unwrap().len(), files_before);
    assert_eq!(parquet_files(&table), files_before + files_after);
    let done = vacuum(&[]);
    assert_eq!(done[0]["files"].as_array().unwrap().len(), files_before);
    assert_eq!(parquet_files(&table), files_after);
    assert_eq!(digest(p), before, "still readable after the vacuum");

    // The intake checkpoints survived both: re-ingesting finds everything already there.
    let out = spire(&["--project", p, "--json", "ingest"]);
    assert_ok(&out);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let intake = &v["sources"][0]["intake"];
    assert_eq!(
        (intake["read"].as_u64(), intake["accepted"].as_u64()),
        (Some(0), Some(0)),
        "{v}"
    );
    assert_eq!(digest(p), before);
}

#[test]
fn dead_letters_are_listed_and_replayed_once_after_a_config_fix() {
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("p");
    let p = project.to_str().unwrap();
    assert!(spire(&["init", p]).status.success());
    // The collector nests the user id: without a field mapping every record is rejected.
    let mut lines: String = (0..40)
        .map(|i| {
            format!(
                "{{\"event_id\":\"e{i}\",\"who\":{{\"id\":\"u{}\"}},\"ts\":{},\"event_type\":\"pageview\"}}\n",
                i % 7,
                1_730_000_000 + i * 600
            )
        })
        .collect();
    lines.push_str("{\"event_id\": oops\n");
    std::fs::write(project.join("events/day.jsonl"), lines).unwrap();
    assert_ok(&spire(&["--project", p, "ingest"]));
    let count = |table: &str| -> u64 {
        let out = spire(&[
            "--project",
            p,
            "--json",
            "sql",
            &format!("SELECT COUNT(*) AS n FROM {table}"),
        ]);
        assert_ok(&out);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v[0]["n"].as_u64().unwrap()
    };
    assert_eq!(count("dead_letters"), 41);

    let list = |p: &str| -> serde_json::Value {
        let out = spire(&[
            "--project",
            p,
            "--json",
            "dead-letters",
            "list",
            "--limit",
            "3",
        ]);
        assert_ok(&out);
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let listed = list(p);
    assert_eq!(listed["pending"], 41);
    assert_eq!(listed["records"].as_array().unwrap().len(), 3);
    let reasons: Vec<(String, u64)> = listed["by_reason"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let reason = r["reason"].as_str().unwrap();
            (
                reason.split(':').next().unwrap().to_string(),
                r["count"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        reasons,
        vec![
            ("malformed JSON".to_string(), 1),
            ("missing required field `user_id`".to_string(), 40)
        ]
    );

    // Fix the mapping; a dry run writes nothing, the replay appends the 40 once.
    let toml = project.join("spire.toml");
    let text = std::fs::read_to_string(&toml).unwrap().replace(
        "# [sources.fields]\n# user_id = \"/user/id\"",
        "[sources.fields]\nuser_id = \"/who/id\"",
    );
    std::fs::write(&toml, text).unwrap();
    let replay = |extra: &[&str]| -> serde_json::Value {
        let mut args = vec!["--project", p, "--json", "dead-letters", "replay"];
        args.extend(extra);
        let out = spire(&args);
        assert_ok(&out);
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let dry = replay(&["--dry-run"]);
    assert_eq!(dry["sources"][0]["replayed"], 40, "{dry}");
    assert_eq!(count("events_raw"), 0);
    let done = replay(&["--source", "events"]);
    let r = &done["sources"][0];
    assert_eq!(
        (r["pending"].as_u64(), r["replayed"].as_u64()),
        (Some(41), Some(40)),
        "{done}"
    );
    assert_eq!(count("events_raw"), 40);
    assert_eq!(count("events"), 40, "the touched dates were cleaned");
    let out = spire(&[
        "--project", p, "--json", "sql",
        "SELECT COUNT(*) AS n FROM events_raw WHERE source = 'events' AND source_offset BETWEEN 1 AND 40",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v[0]["n"], 40, "under their original positions (file lines)");

    // Again: only the malformed record is pending, and nothing is appended twice.
    let again = replay(&[]);
    assert_eq!(again["sources"][0]["pending"], 1, "{again}");
    assert_eq!(again["sources"][0]["replayed"], 0);
    assert_eq!(count("events_raw"), 40);
    assert_eq!(list(p)["pending"], 1);
    // An unknown source is "not found" (exit 3), naming it.
    let out = spire(&["--project", p, "dead-letters", "replay", "--source", "nope"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nope"));
}
