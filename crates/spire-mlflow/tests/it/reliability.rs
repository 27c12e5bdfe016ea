//! 8 concurrent writers × 10,000 `log-metric` calls each, through the HTTP API with no
//! client retries, against SQLite and a real PostgreSQL: every metric point is stored
//! exactly once.

use std::collections::BTreeSet;

use serde_json::{json, Value};
use spire_registry::TrackingStore;

use crate::TestServer;

const WRITERS: usize = 8;
const POINTS: i64 = 10_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_writers_lose_and_duplicate_nothing_on_sqlite() {
    writers_store_every_point_once(TestServer::start().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_writers_lose_and_duplicate_nothing_on_postgres() {
    let db = spire_testkit::PgTestDb::create().await;
    let server = TestServer::start_with(Some(db.url.clone()), |_| async {}).await;
    let registry = server.registry.clone();
    writers_store_every_point_once(server).await;
    registry.close().await;
    db.drop().await;
}

async fn writers_store_every_point_once(server: TestServer) {
    let client = reqwest::Client::new();
    let api = format!("{}/api/2.0/mlflow", server.base_url);
    let created: Value = client
        .post(format!("{api}/runs/create"))
        .json(&json!({"experiment_id": "0"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let run_id = created["run"]["info"]["run_id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let (client, api, run_id) = (client.clone(), api.clone(), run_id.clone());
        tasks.push(tokio::spawn(async move {
            let mut failures = Vec::new();
            for step in 0..POINTS {
                let body = json!({
                    "run_id": run_id, "key": format!("w{w}"), "value": step as f64 * 0.5,
                    "timestamp": 1_700_000_000_000_i64 + step, "step": step,
                });
                let resp = client
                    .post(format!("{api}/runs/log-metric"))
                    .json(&body)
                    .send()
                    .await;
                match resp {
                    Ok(r) if r.status().is_success() => {}
                    Ok(r) => failures.push(format!(
                        "step {step}: {} {}",
                        r.status(),
                        r.text().await.unwrap_or_default()
                    )),
                    Err(e) => failures.push(format!("step {step}: {e}")),
                }
            }
            failures
        }));
    }
    for (w, task) in tasks.into_iter().enumerate() {
        let failures = task.await.unwrap();
        assert!(
            failures.is_empty(),
            "writer {w}: {} failed calls, first: {:?}",
            failures.len(),
            failures.first()
        );
    }
    for w in 0..WRITERS {
        let history = server
            .registry
            .metric_history(&run_id, &format!("w{w}"))
            .await
            .unwrap();
        assert_eq!(history.len(), POINTS as usize, "writer {w}");
        let steps: BTreeSet<i64> = history.iter().map(|m| m.step).collect();
        assert_eq!(
            steps.len(),
            POINTS as usize,
            "writer {w}: a step is duplicated"
        );
        assert_eq!(steps.first(), Some(&0));
        assert_eq!(steps.last(), Some(&(POINTS - 1)));
        assert!(
            history.iter().all(|m| m.value == m.step as f64 * 0.5),
            "writer {w}"
        );
    }
}
