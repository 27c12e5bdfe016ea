//! The real `mlflow` Python client against a Spire server.

use std::process::Command;

use spire_registry::{ModelRegistry, TrackingStore, ViewType};

use crate::{mlflow_python, test_file, TestServer, ADMIN_TOKEN};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mlflow_client_logs_registers_and_loads_models() {
    let python = mlflow_python();
    let server = TestServer::start().await;
    let script = test_file("python/e2e.py");
    let base_url = server.base_url.clone();
    let output = tokio::task::spawn_blocking(move || {
        Command::new(&python)
            .arg(&script)
            .arg(&base_url)
            .arg(ADMIN_TOKEN)
            .env("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
            .env_remove("MLFLOW_TRACKING_URI")
            .env_remove("MLFLOW_TRACKING_TOKEN")
            .output()
            .unwrap_or_else(|e| panic!("running {}: {e}", python.display()))
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.contains("E2E OK"),
        "the mlflow client scenario failed\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );

    // What the client did is in Spire's registry, readable without MLflow.
    let reg = &server.registry;
    let experiment = reg.get_experiment_by_name("contract-exp").await.unwrap();
    let runs = reg
        .search_runs(&spire_registry::RunSearch {
            experiment_ids: vec![experiment.experiment_id.clone()],
            filter: "attributes.run_name = 'train-lr'".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .runs;
    assert_eq!(runs.len(), 1);
    let run = &runs[0];
    assert_eq!(run.params["algorithm"], "logistic_regression");
    assert!(run.metrics["nan_metric"].is_nan());
    assert_eq!(
        run.metrics["inf_metric"],
        f64::INFINITY,
        "Spire keeps infinities"
    );
    assert_eq!(run.outputs.len(), 1, "log_model recorded the run output");
    let model = reg
        .get_logged_model(&run.outputs[0].model_id)
        .await
        .unwrap();
    assert_eq!(model.status, spire_registry::LoggedModelStatus::Ready);
    let files = server
        .artifacts
        .join(&experiment.experiment_id)
        .join("models")
        .join(&model.model_id)
        .join("artifacts");
    assert!(files.join("MLmodel").is_file(), "{}", files.display());
    let versions = reg.list_model_versions("contract-model").await.unwrap();
    assert_eq!(versions.len(), 2);
    assert!(versions.iter().all(|v| v.run_id == run.run_id));
    let history = reg.alias_history("contract-model").await.unwrap();
    let champion: Vec<_> = history.iter().filter(|e| e.alias == "champion").collect();
    assert_eq!(champion.len(), 2, "set then deleted with the admin token");
    assert!(champion
        .iter()
        .all(|e| e.actor == "mlflow-api (admin token)"));
    assert_eq!(
        reg.get_alias("contract-model", "champion").await.unwrap(),
        None
    );
    assert!(reg
        .list_experiments(ViewType::All)
        .await
        .unwrap()
        .iter()
        .any(|e| e.name == "contract-other"));
}
