//! The MLflow API over plain HTTP: error bodies for bad requests, the protected champion
//! alias, artifact paths, both URL prefixes.

use serde_json::{json, Value};
use spire_registry::ModelRegistry;

use crate::{TestServer, ADMIN_TOKEN};

pub(crate) async fn call(
    server: &TestServer,
    method: &str,
    path: &str,
    body: Option<Value>,
    token: Option<&str>,
) -> (u16, Value) {
    let mut req = reqwest::Client::new().request(
        method.parse().unwrap(),
        format!("{}{path}", server.base_url),
    );
    if let Some(body) = body {
        req = req.json(&body);
    }
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn raw(server: &TestServer, method: &str, path: &str, body: Vec<u8>) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .request(
            method.parse().unwrap(),
            format!("{}{path}", server.base_url),
        )
        .header("Content-Type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn assert_error(got: &(u16, Value), status: u16, code: &str) {
    assert_eq!(got.0, status, "{got:?}");
    assert_eq!(got.1["error_code"], code, "{got:?}");
    assert!(
        got.1["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{got:?}"
    );
}

const API: &str = "/api/2.0/mlflow";

/// A run with a registered model version 1 of `m`.
async fn model_with_version(server: &TestServer) -> String {
    let (_, created) = call(
        server,
        "POST",
        &format!("{API}/experiments/create"),
        Some(json!({"name": "e"})),
        None,
    )
    .await;
    let exp = created["experiment_id"].as_str().unwrap().to_string();
    let (_, run) = call(
        server,
        "POST",
        &format!("{API}/runs/create"),
        Some(json!({"experiment_id": exp})),
        None,
    )
    .await;
    let run_id = run["run"]["info"]["run_id"].as_str().unwrap().to_string();
    let (s, _) = call(
        server,
        "POST",
        &format!("{API}/registered-models/create"),
        Some(json!({"name": "m"})),
        None,
    )
    .await;
    assert_eq!(s, 200);
    let (s, v) = call(
        server,
        "POST",
        &format!("{API}/model-versions/create"),
        Some(json!({"name": "m", "source": format!("runs:/{run_id}/model"), "run_id": run_id})),
        None,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["model_version"]["version"], "1");
    run_id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_oversized_requests_get_mlflow_errors_not_500s() {
    let server = TestServer::start().await;
    let path = format!("{API}/runs/log-batch");
    for body in [
        b"{not json".to_vec(),
        b"[1, 2]".to_vec(),
        b"{\"run_id\": 5, \"metrics\": \"x\"}".to_vec(),
        b"{\"run_id\": \"r\", \"metrics\": [{\"key\": \"k\", \"value\": {}}]}".to_vec(),
        vec![0xff, 0xfe, 0x00],
    ] {
        let got = raw(&server, "POST", &path, body).await;
        assert_error(&got, 400, "INVALID_PARAMETER_VALUE");
    }
    let huge = vec![b' '; spire_mlflow::MAX_JSON_BODY + 1];
    let got = raw(&server, "POST", &path, huge).await;
    assert_error(&got, 413, "REQUEST_LIMIT_EXCEEDED");
    let got = call(
        &server,
        "GET",
        &format!("{API}/runs/get?run_id=nope"),
        None,
        None,
    )
    .await;
    assert_error(&got, 404, "RESOURCE_DOES_NOT_EXIST");
    let got = call(
        &server,
        "GET",
        &format!("{API}/metrics/get-history?run_id=x&metric_key=k&max_results=-1"),
        None,
        None,
    )
    .await;
    assert_error(&got, 400, "INVALID_PARAMETER_VALUE");
    let got = call(
        &server,
        "POST",
        &format!("{API}/runs/search"),
        Some(json!({"filter": "metrics.auc >> 1"})),
        None,
    )
    .await;
    assert_error(&got, 400, "INVALID_PARAMETER_VALUE");
    let got = call(
        &server,
        "POST",
        &format!("{API}/experiments/search"),
        Some(json!({"filter": "name = 'x"})),
        None,
    )
    .await;
    assert_error(&got, 400, "INVALID_PARAMETER_VALUE");
    let got = call(
        &server,
        "GET",
        "/api/2.0/mlflow/no-such-endpoint",
        None,
        None,
    )
    .await;
    assert_error(&got, 404, "ENDPOINT_NOT_FOUND");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn champion_moves_only_with_the_admin_token() {
    let server = TestServer::start().await;
    model_with_version(&server).await;
    let alias = format!("{API}/registered-models/alias");
    let set = json!({"name": "m", "alias": "champion", "version": "1"});
    let got = call(&server, "POST", &alias, Some(set.clone()), None).await;
    assert_error(&got, 403, "PERMISSION_DENIED");
    // A token that matches nothing is refused outright, whatever it asks.
    let got = call(
        &server,
        "POST",
        &alias,
        Some(set.clone()),
        Some("wrong-token"),
    )
    .await;
    assert_error(&got, 401, "UNAUTHENTICATED");
    let got = call(
        &server,
        "POST",
        &alias,
        Some(json!({"name": "m", "alias": "CHAMPION", "version": "1"})),
        None,
    )
    .await;
    assert_error(&got, 403, "PERMISSION_DENIED");
    assert_eq!(
        server.registry.get_alias("m", "champion").await.unwrap(),
        None
    );

    let (s, _) = call(
        &server,
        "POST",
        &alias,
        Some(set.clone()),
        Some(ADMIN_TOKEN),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(
        server
            .registry
            .get_alias("m", "champion")
            .await
            .unwrap()
            .unwrap()
            .version,
        1
    );
    let got = call(
        &server,
        "DELETE",
        &alias,
        Some(json!({"name": "m", "alias": "champion"})),
        None,
    )
    .await;
    assert_error(&got, 403, "PERMISSION_DENIED");
    assert!(server
        .registry
        .get_alias("m", "champion")
        .await
        .unwrap()
        .is_some());

    // Other aliases are open to every client.
    let (s, _) = call(
        &server,
        "POST",
        &alias,
        Some(json!({"name": "m", "alias": "challenger", "version": "1"})),
        None,
    )
    .await;
    assert_eq!(s, 200);
    let (s, got) = call(
        &server,
        "GET",
        &format!("{alias}?name=m&alias=challenger"),
        None,
        None,
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(
        got["model_version"]["aliases"],
        json!(["challenger", "champion"])
    );
    let history = server.registry.alias_history("m").await.unwrap();
    assert_eq!(history[0].actor, "mlflow-api (admin token)");
    assert_eq!(history[1].actor, "mlflow-api (local)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn artifacts_round_trip_and_never_escape_the_root() {
    artifacts_round_trip(&TestServer::start().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn artifacts_round_trip_on_s3_compatible_storage() {
    let server = TestServer::start_s3().await;
    assert!(server.store.root_url().starts_with("s3://"));
    artifacts_round_trip(&server).await;
    // The files are S3 objects: readable through the store itself, not only the API.
    assert_eq!(
        server
            .store
            .get("1/run/artifacts/dir/a.bin")
            .await
            .unwrap()
            .as_ref(),
        &[0u8, 1, 2, 255]
    );
    // A file above the single-put size goes up in parts and comes back whole.
    let big: Vec<u8> = (0..9 * 1024 * 1024).map(|i| (i % 251) as u8).collect();
    let base = format!("{}/api/2.0/mlflow-artifacts/artifacts", server.base_url);
    let client = reqwest::Client::new();
    let put = client
        .put(format!("{base}/1/run/artifacts/big.bin"))
        .body(big.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200);
    let got = client
        .get(format!("{base}/1/run/artifacts/big.bin"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        got.headers()["content-length"].to_str().unwrap(),
        big.len().to_string()
    );
    assert!(got.bytes().await.unwrap().as_ref() == big.as_slice());
    let deleted = client.delete(format!("{base}/1/run")).send().await.unwrap();
    assert_eq!(deleted.status(), 200);
    assert!(server.store.list_dir("1/run", "").await.unwrap().is_empty());
}

async fn artifacts_round_trip(server: &TestServer) {
    let client = reqwest::Client::new();
    let base = format!("{}/api/2.0/mlflow-artifacts/artifacts", server.base_url);
    let put = client
        .put(format!("{base}/1/run/artifacts/dir/a.bin"))
        .body(vec![0u8, 1, 2, 255])
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200);
    let got = client
        .get(format!("{base}/1/run/artifacts/dir/a.bin"))
        .send()
        .await
        .unwrap();
    assert_eq!(got.bytes().await.unwrap().as_ref(), &[0u8, 1, 2, 255]);
    let listed: Value = client
        .get(format!("{base}?path=1/run/artifacts"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed, json!({"files": [{"path": "dir", "is_dir": true}]}));
    let missing = call(
        server,
        "GET",
        "/api/2.0/mlflow-artifacts/artifacts/1/none.txt",
        None,
        None,
    )
    .await;
    assert_error(&missing, 404, "RESOURCE_DOES_NOT_EXIST");
    for bad in ["..%2F..%2Fetc%2Fpasswd", "a%2F..%2F..%2Fx"] {
        let got = call(
            server,
            "GET",
            &format!("/api/2.0/mlflow-artifacts/artifacts/{bad}"),
            None,
            None,
        )
        .await;
        assert_error(&got, 400, "INVALID_PARAMETER_VALUE");
    }
    let got = call(
        server,
        "GET",
        "/api/2.0/mlflow-artifacts/artifacts?path=../x",
        None,
        None,
    )
    .await;
    assert_error(&got, 400, "INVALID_PARAMETER_VALUE");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ajax_prefix_and_default_experiment_work() {
    let server = TestServer::start().await;
    // MLflow clients that never set an experiment use id 0: Spire's `Default`.
    let (s, run) = call(
        &server,
        "POST",
        "/ajax-api/2.0/mlflow/runs/create",
        Some(json!({})),
        None,
    )
    .await;
    assert_eq!(s, 200, "{run}");
    assert!(!run["run"]["info"]["run_name"].as_str().unwrap().is_empty());
    let (s, exp) = call(
        &server,
        "GET",
        "/ajax-api/2.0/mlflow/experiments/get?experiment_id=0",
        None,
        None,
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(exp["experiment"]["name"], "Default");
    assert_eq!(
        exp["experiment"]["experiment_id"],
        run["run"]["info"]["experiment_id"]
    );
    let (s, info) = call(&server, "GET", "/api/3.0/mlflow/server-info", None, None).await;
    assert_eq!(s, 200);
    assert_eq!(info["store_type"], "SqlStore");
}
