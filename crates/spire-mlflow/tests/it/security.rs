//! Bearer tokens: with tokens configured, reads need a `read` token, writes a `write`
//! token, and `champion` an `admin` token; revocation is immediate.

use std::sync::{Arc, Mutex};

use serde_json::{json, Value};
use spire_registry::{ModelRegistry, Role, TokenStore};

use crate::TestServer;

const API: &str = "/api/2.0/mlflow";

async fn call(
    server: &TestServer,
    method: &str,
    path: &str,
    body: Value,
    token: Option<&str>,
) -> (u16, Value) {
    crate::api::call(server, method, path, Some(body), token).await
}

fn assert_code(got: &(u16, Value), status: u16, code: &str) {
    assert_eq!(got.0, status, "{got:?}");
    assert_eq!(got.1["error_code"], code, "{got:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_gate_reads_writes_and_the_champion_alias() {
    let secrets = Arc::new(Mutex::new(Vec::new()));
    let made = Arc::clone(&secrets);
    let server = TestServer::start_with(None, |reg| async move {
        for (name, role) in [
            ("dashboard", Role::Read),
            ("ci", Role::Write),
            ("ops", Role::Admin),
        ] {
            let t = reg.create_token(name, role).await.unwrap();
            made.lock().unwrap().push(t.secret);
        }
    })
    .await;
    let secrets = secrets.lock().unwrap().clone();
    let (read, write, admin) = (
        Some(secrets[0].as_str()),
        Some(secrets[1].as_str()),
        Some(secrets[2].as_str()),
    );

    // No token: nothing, not even reads.
    let search = format!("{API}/runs/search");
    assert_code(
        &call(&server, "POST", &search, json!({}), None).await,
        401,
        "UNAUTHENTICATED",
    );
    let got = call(
        &server,
        "GET",
        &format!("{API}/experiments/get-by-name?experiment_name=x"),
        json!({}),
        None,
    )
    .await;
    assert_code(&got, 401, "UNAUTHENTICATED");
    assert_code(
        &call(&server, "POST", &search, json!({}), Some("spire_forged")).await,
        401,
        "UNAUTHENTICATED",
    );

    // A read token reads (searches are POSTs, and still reads) but cannot write.
    assert_eq!(call(&server, "POST", &search, json!({}), read).await.0, 200);
    let create = format!("{API}/experiments/create");
    let got = call(&server, "POST", &create, json!({"name": "e"}), read).await;
    assert_code(&got, 403, "PERMISSION_DENIED");
    assert!(
        got.1["message"].as_str().unwrap().contains("dashboard"),
        "{got:?}"
    );
    let artifact = "/api/2.0/mlflow-artifacts/artifacts/1/r/artifacts/x.txt";
    assert_code(
        &call(&server, "PUT", artifact, json!("x"), read).await,
        403,
        "PERMISSION_DENIED",
    );

    // A write token writes, but cannot move champion; an admin token can.
    let (s, created) = call(&server, "POST", &create, json!({"name": "e"}), write).await;
    assert_eq!(s, 200, "{created:?}");
    let exp = created["experiment_id"].as_str().unwrap().to_string();
    let (s, run) = call(
        &server,
        "POST",
        &format!("{API}/runs/create"),
        json!({"experiment_id": exp}),
        write,
    )
    .await;
    assert_eq!(s, 200, "{run:?}");
    let run_id = run["run"]["info"]["run_id"].as_str().unwrap().to_string();
    let got = call(
        &server,
        "POST",
        &format!("{API}/runs/log-metric"),
        json!({"run_id": run_id, "key": "auc", "value": 0.8, "timestamp": 1, "step": 0}),
        write,
    )
    .await;
    assert_eq!(got.0, 200, "{got:?}");
    assert_eq!(
        call(&server, "PUT", artifact, json!("x"), write).await.0,
        200
    );
    for (path, body) in [
        ("registered-models/create", json!({"name": "m"})),
        (
            "model-versions/create",
            json!({"name": "m", "source": "mlflow-artifacts:/1/r/artifacts", "run_id": run_id}),
        ),
    ] {
        let got = call(&server, "POST", &format!("{API}/{path}"), body, write).await;
        assert_eq!(got.0, 200, "{path}: {got:?}");
    }
    let alias = format!("{API}/registered-models/alias");
    let champion = json!({"name": "m", "alias": "champion", "version": "1"});
    assert_code(
        &call(&server, "POST", &alias, champion.clone(), write).await,
        403,
        "PERMISSION_DENIED",
    );
    assert_eq!(
        call(
            &server,
            "POST",
            &alias,
            json!({"name": "m", "alias": "challenger", "version": "1"}),
            write
        )
        .await
        .0,
        200
    );
    assert_eq!(call(&server, "POST", &alias, champion, admin).await.0, 200);
    let history = server.registry.alias_history("m").await.unwrap();
    let actors: Vec<(&str, &str)> = history
        .iter()
        .map(|e| (e.alias.as_str(), e.actor.as_str()))
        .collect();
    assert_eq!(
        actors,
        vec![
            ("challenger", "mlflow-api (ci)"),
            ("champion", "mlflow-api (ops)")
        ]
    );

    // Revocation takes effect on the next request.
    server.registry.revoke_token("ci").await.unwrap();
    assert_code(
        &call(&server, "POST", &create, json!({"name": "e2"}), write).await,
        401,
        "UNAUTHENTICATED",
    );
    assert_eq!(call(&server, "POST", &search, json!({}), read).await.0, 200);
}
