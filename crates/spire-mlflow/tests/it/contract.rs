//! Contract test: replays the MLflow client's HTTP exchanges with MLflow's own server
//! (recorded by `tests/python/record_contract.py` into `tests/fixtures/contract.json`)
//! against Spire, comparing status codes, `error_code`s and response shapes (keys and JSON
//! types; not ids, names or timestamps). Ids Spire assigns differently (experiments, runs,
//! logged models, page tokens) are learned from each response and substituted into the
//! later requests.

use std::collections::HashMap;

use base64::Engine as _;
use serde_json::Value;

use crate::{test_file, TestServer};

/// Keys whose values are ids the two servers assign differently.
const ID_KEYS: [&str; 6] = [
    "experiment_id",
    "run_id",
    "run_uuid",
    "model_id",
    "source_run_id",
    "next_page_token",
];

/// Recorded id → Spire's id.
#[derive(Default)]
struct Ids(HashMap<String, String>);

impl Ids {
    /// Learns the ids of a recorded response from Spire's answer to the same request.
    fn learn(&mut self, recorded: &Value, actual: &Value) {
        match (recorded, actual) {
            (Value::Object(r), Value::Object(a)) => {
                for (key, rv) in r {
                    let Some(av) = a.get(key) else { continue };
                    match (rv, av) {
                        (Value::String(rs), Value::String(as_))
                            if ID_KEYS.contains(&key.as_str()) =>
                        {
                            if rs != as_ {
                                self.0.insert(rs.clone(), as_.clone());
                            }
                        }
                        _ => self.learn(rv, av),
                    }
                }
            }
            (Value::Array(r), Value::Array(a)) => {
                for (rv, av) in r.iter().zip(a) {
                    self.learn(rv, av);
                }
            }
            _ => {}
        }
    }

    /// Rewrites recorded ids in the value of `key`: short ids (MLflow's experiment ids `1`,
    /// `2`…) as whole values of id keys or whole `/`-separated segments of paths and URIs,
    /// long ids (runs, models) anywhere, e.g. inside filters.
    fn value(&self, key: &str, s: &str) -> String {
        if ID_KEYS.contains(&key) || matches!(key, "page_token" | "experiment_ids") {
            if let Some(v) = self.0.get(s) {
                return v.clone();
            }
        }
        if s.contains('/') {
            return self.text(s);
        }
        self.long(s.to_string())
    }

    fn long(&self, mut out: String) -> String {
        for (from, to) in &self.0 {
            if from.len() >= 16 {
                out = out.replace(from.as_str(), to);
            }
        }
        out
    }

    /// Rewrites recorded ids in a path or URI: whole segments, and long ids anywhere.
    fn text(&self, s: &str) -> String {
        let out = s
            .split('/')
            .map(|seg| self.0.get(seg).cloned().unwrap_or_else(|| seg.to_string()))
            .collect::<Vec<_>>()
            .join("/");
        self.long(out)
    }

    fn json(&self, key: &str, v: &Value) -> Value {
        match v {
            Value::String(s) => Value::String(self.value(key, s)),
            Value::Array(items) => Value::Array(items.iter().map(|i| self.json(key, i)).collect()),
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| (k.clone(), self.json(k, v)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }
}

fn is_double_text(v: &Value) -> bool {
    matches!(v.as_str(), Some("NaN" | "Infinity" | "-Infinity"))
}

/// Checks that `actual` has every key of `recorded` with the same JSON type, and arrays of
/// the same length; protobuf doubles may be numbers or `"NaN"`/`"Infinity"` strings.
fn same_shape(recorded: &Value, actual: &Value, at: &str, problems: &mut Vec<String>) {
    match (recorded, actual) {
        (Value::Object(r), Value::Object(a)) => {
            for (key, rv) in r {
                match a.get(key) {
                    Some(av) => same_shape(rv, av, &format!("{at}.{key}"), problems),
                    None => problems.push(format!("{at}: missing key {key:?}")),
                }
            }
        }
        (Value::Array(r), Value::Array(a)) => {
            // Known difference: MLflow lists the points logged with the model's id as a
            // logged model's metrics; Spire lists its source run's latest metrics.
            let model_metrics = at.ends_with(".data.metrics") && at.contains("model");
            if r.len() != a.len() && !model_metrics {
                problems.push(format!("{at}: {} items, MLflow has {}", a.len(), r.len()));
            }
            for (i, (rv, av)) in r.iter().zip(a).enumerate() {
                same_shape(rv, av, &format!("{at}[{i}]"), problems);
            }
        }
        (Value::Number(_), v) | (v, Value::Number(_)) if is_double_text(v) => {}
        (r, a) if std::mem::discriminant(r) == std::mem::discriminant(a) => {}
        (r, a) => problems.push(format!("{at}: {a} where MLflow has {r}")),
    }
}

fn body_bytes(body: &Value) -> Option<Vec<u8>> {
    if let Some(text) = body.get("text").and_then(Value::as_str) {
        return Some(text.as_bytes().to_vec());
    }
    body.get("base64")
        .and_then(Value::as_str)
        .map(|b| base64::engine::general_purpose::STANDARD.decode(b).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spire_answers_like_mlflow_server() {
    let fixture: Value = serde_json::from_str(
        &std::fs::read_to_string(test_file("fixtures/contract.json")).unwrap(),
    )
    .unwrap();
    let exchanges = fixture["exchanges"].as_array().unwrap();
    assert!(
        exchanges.len() > 100,
        "the fixture covers the whole scenario"
    );
    let server = TestServer::start().await;
    let http = reqwest::Client::new();
    let mut ids = Ids::default();
    let mut failures = Vec::new();
    for (i, ex) in exchanges.iter().enumerate() {
        let method = ex["method"].as_str().unwrap();
        let path = ids.text(ex["path"].as_str().unwrap());
        let query: Vec<(String, String)> = ex["query"]
            .as_array()
            .unwrap()
            .iter()
            .map(|kv| {
                let key = kv[0].as_str().unwrap();
                (key.to_string(), ids.value(key, kv[1].as_str().unwrap()))
            })
            .collect();
        let mut req = http
            .request(
                method.parse().unwrap(),
                format!("{}{path}", server.base_url),
            )
            .query(&query);
        if let Some(ct) = ex["request_content_type"].as_str() {
            req = req.header("Content-Type", ct);
        }
        let request = &ex["request"];
        if let Some(json) = request.get("json") {
            req = req.body(serde_json::to_vec(&ids.json("", json)).unwrap());
        } else if let Some(bytes) = body_bytes(request) {
            req = req.body(bytes);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.unwrap();
        let what = format!("#{i} {method} {}", ex["path"].as_str().unwrap());
        let want_status = ex["status"].as_u64().unwrap() as u16;
        if status != want_status {
            failures.push(format!(
                "{what}: status {status}, MLflow {want_status}: {}",
                String::from_utf8_lossy(&bytes)
            ));
            continue;
        }
        let recorded = &ex["response"];
        if let Some(want) = recorded.get("json") {
            let Ok(got) = serde_json::from_slice::<Value>(&bytes) else {
                failures.push(format!(
                    "{what}: not JSON: {}",
                    String::from_utf8_lossy(&bytes)
                ));
                continue;
            };
            if want_status >= 400 {
                if got["error_code"] != want["error_code"] {
                    failures.push(format!(
                        "{what}: error_code {} where MLflow has {}",
                        got["error_code"], want["error_code"]
                    ));
                }
                if !got["message"].is_string() {
                    failures.push(format!("{what}: error without a message: {got}"));
                }
                continue;
            }
            let mut problems = Vec::new();
            same_shape(want, &got, "$", &mut problems);
            for p in problems {
                failures.push(format!("{what}: {p}"));
            }
            ids.learn(want, &got);
        } else if let Some(want) = body_bytes(recorded) {
            if bytes.as_ref() != want.as_slice() {
                failures.push(format!("{what}: downloaded bytes differ"));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} exchanges differ from MLflow's server:\n{}",
        failures.len(),
        exchanges.len(),
        failures.join("\n")
    );
}
