//! Helpers shared by the stream tests (`kafka_follow`, `kinesis_follow`, `failover`): the
//! `spire` binary with a project, its JSON output, and the events the producers write.
#![allow(dead_code)]

use std::process::{Command, Output};

use serde_json::Value;

/// `spire --project PROJECT --json ARGS…`, quiet, with test AWS credentials (the Kinesis
/// server takes any key; the SDK's default chain reads them from the environment).
pub fn spire(project: &str, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_spire"));
    c.args(["--project", project, "--json"])
        .args(args)
        .env("SPIRE_LOG", "warn")
        .env("AWS_ACCESS_KEY_ID", "spire-test")
        .env("AWS_SECRET_ACCESS_KEY", "spire-test")
        .env("AWS_EC2_METADATA_DISABLED", "true");
    c
}

/// The JSON a successful command printed (panics with its stderr otherwise).
pub fn ok(out: Output) -> Value {
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

/// The rows of `spire sql QUERY` (up to 100,000).
pub fn sql(project: &str, query: &str) -> Vec<Value> {
    let v = ok(spire(project, &["sql", "--limit", "100000", query])
        .output()
        .unwrap());
    v.as_array()
        .cloned()
        .or_else(|| v.get("rows").and_then(Value::as_array).cloned())
        .unwrap_or_else(|| panic!("unexpected sql output: {v}"))
}

/// An integer column of a row (DataFusion may print counts as text).
pub fn int(v: &Value, key: &str) -> i64 {
    v.get(key)
        .and_then(|x| {
            x.as_i64()
                .or_else(|| x.as_str().and_then(|s| s.parse().ok()))
        })
        .unwrap_or_else(|| panic!("no integer {key} in {v}"))
}

/// A text column of a row.
pub fn text(v: &Value, key: &str) -> String {
    v.get(key)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no text {key} in {v}"))
        .to_string()
}

/// Event `i` as JSON; every `bad`-th one is cut short (malformed, a dead letter).
pub fn payload(i: usize, bad: usize) -> Vec<u8> {
    if i.is_multiple_of(bad) {
        format!(r#"{{"event_id":"e{i}","ts":"#).into_bytes()
    } else {
        format!(
            r#"{{"event_id":"e{i}","user_id":"u{}","ts":{},"event_type":"pageview","category":"c{}","user_agent":"Mozilla/5.0"}}"#,
            i % 3_000,
            1_793_000_000_000i64 + (i as i64) * 2_000,
            i % 9
        )
        .into_bytes()
    }
}

/// A small deterministic generator for kill times (its seed is printed on failure).
pub struct Lcg(pub u64);

impl Lcg {
    /// A number of milliseconds in `lo..hi`.
    pub fn next_ms(&mut self, lo: u64, hi: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        lo + (self.0 >> 33) % (hi - lo)
    }
}
