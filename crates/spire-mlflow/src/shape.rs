//! Spire's registry entities in MLflow's JSON shapes (protobuf JSON as MLflow's server
//! writes it: int64 timestamps as numbers, non-finite doubles as `"NaN"`/`"Infinity"`
//! strings, empty lists and unset fields left out).

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};
use spire_registry::{
    Experiment, Lifecycle, LoggedModel, LoggedModelStatus, Metric, ModelVersion, RegisteredModel,
    Run, RunStatus,
};

/// The tag MLflow keeps a run's name in.
pub const RUN_NAME_TAG: &str = "mlflow.runName";
/// The tag MLflow keeps a run's user in.
pub const USER_TAG: &str = "mlflow.user";

/// A double in protobuf JSON.
pub fn double(v: f64) -> Value {
    if v.is_nan() {
        json!("NaN")
    } else if v == f64::INFINITY {
        json!("Infinity")
    } else if v == f64::NEG_INFINITY {
        json!("-Infinity")
    } else {
        json!(v)
    }
}

/// `[{"key", "value"}]`, or `None` for an empty map (so the field is left out).
fn key_values(map: &BTreeMap<String, String>) -> Option<Value> {
    (!map.is_empty()).then(|| {
        Value::Array(
            map.iter()
                .map(|(k, v)| json!({"key": k, "value": v}))
                .collect(),
        )
    })
}

fn insert_opt(obj: &mut Map<String, Value>, key: &str, value: Option<Value>) {
    if let Some(v) = value {
        obj.insert(key.to_string(), v);
    }
}

fn lifecycle(l: Lifecycle) -> &'static str {
    match l {
        Lifecycle::Active => "active",
        Lifecycle::Deleted => "deleted",
    }
}

/// The artifact root URI of an experiment.
pub fn experiment_artifacts(experiment_id: &str) -> String {
    format!("mlflow-artifacts:/{experiment_id}")
}

/// The artifact URI of a run.
pub fn run_artifacts(experiment_id: &str, run_id: &str) -> String {
    format!("mlflow-artifacts:/{experiment_id}/{run_id}/artifacts")
}

/// The artifact URI of a logged model.
pub fn model_artifacts(experiment_id: &str, model_id: &str) -> String {
    format!("mlflow-artifacts:/{experiment_id}/models/{model_id}/artifacts")
}

/// An `Experiment`.
pub fn experiment(e: &Experiment) -> Value {
    let mut obj = Map::new();
    obj.insert("experiment_id".into(), json!(e.experiment_id));
    obj.insert("name".into(), json!(e.name));
    obj.insert(
        "artifact_location".into(),
        json!(experiment_artifacts(&e.experiment_id)),
    );
    obj.insert("lifecycle_stage".into(), json!(lifecycle(e.lifecycle)));
    obj.insert(
        "last_update_time".into(),
        json!(e.updated_at.timestamp_millis()),
    );
    obj.insert(
        "creation_time".into(),
        json!(e.created_at.timestamp_millis()),
    );
    insert_opt(&mut obj, "tags", key_values(&e.tags));
    obj.insert("workspace".into(), json!("default"));
    Value::Object(obj)
}

/// MLflow's name of a run status.
pub fn run_status(s: RunStatus) -> &'static str {
    match s {
        RunStatus::Running => "RUNNING",
        RunStatus::Finished => "FINISHED",
        RunStatus::Failed => "FAILED",
    }
}

/// A `RunInfo`.
pub fn run_info(run: &Run) -> Value {
    let mut obj = Map::new();
    obj.insert("run_uuid".into(), json!(run.run_id));
    obj.insert("experiment_id".into(), json!(run.experiment_id));
    let name = run.tags.get(RUN_NAME_TAG).cloned().unwrap_or_default();
    obj.insert("run_name".into(), json!(name));
    let user = run.tags.get(USER_TAG).cloned().unwrap_or_default();
    obj.insert("user_id".into(), json!(user));
    obj.insert("status".into(), json!(run_status(run.status)));
    obj.insert(
        "start_time".into(),
        json!(run.started_at.timestamp_millis()),
    );
    if let Some(end) = run.ended_at {
        obj.insert("end_time".into(), json!(end.timestamp_millis()));
    }
    obj.insert(
        "artifact_uri".into(),
        json!(run_artifacts(&run.experiment_id, &run.run_id)),
    );
    obj.insert("lifecycle_stage".into(), json!(lifecycle(run.lifecycle)));
    obj.insert("run_id".into(), json!(run.run_id));
    Value::Object(obj)
}

/// A `Metric`.
pub fn metric(m: &Metric) -> Value {
    json!({
        "key": m.key,
        "value": double(m.value),
        "timestamp": m.timestamp.timestamp_millis(),
        "step": m.step,
    })
}

/// A `Run`: info, data (latest metrics, params, tags), inputs and outputs.
pub fn run(run: &Run) -> Value {
    let mut data = Map::new();
    if !run.latest_metrics.is_empty() {
        let metrics = run.latest_metrics.values().map(metric).collect();
        data.insert("metrics".into(), Value::Array(metrics));
    }
    insert_opt(&mut data, "params", key_values(&run.params));
    insert_opt(&mut data, "tags", key_values(&run.tags));
    let mut outputs = Map::new();
    if !run.outputs.is_empty() {
        let models = run
            .outputs
            .iter()
            .map(|o| json!({"model_id": o.model_id, "step": o.step}))
            .collect();
        outputs.insert("model_outputs".into(), Value::Array(models));
    }
    json!({
        "info": run_info(run),
        "data": data,
        "inputs": {},
        "outputs": outputs,
    })
}

/// MLflow's name of a logged model status.
pub fn logged_model_status(s: LoggedModelStatus) -> &'static str {
    match s {
        LoggedModelStatus::Pending => "LOGGED_MODEL_PENDING",
        LoggedModelStatus::Ready => "LOGGED_MODEL_READY",
        LoggedModelStatus::Failed => "LOGGED_MODEL_UPLOAD_FAILED",
    }
}

/// A `LoggedModel`; `metrics` are its source run's latest metrics.
pub fn logged_model(m: &LoggedModel, metrics: &[Metric]) -> Value {
    let mut info = Map::new();
    info.insert("model_id".into(), json!(m.model_id));
    info.insert("experiment_id".into(), json!(m.experiment_id));
    info.insert("name".into(), json!(m.name));
    info.insert(
        "creation_timestamp_ms".into(),
        json!(m.created_at.timestamp_millis()),
    );
    info.insert(
        "last_updated_timestamp_ms".into(),
        json!(m.updated_at.timestamp_millis()),
    );
    info.insert(
        "artifact_uri".into(),
        json!(model_artifacts(&m.experiment_id, &m.model_id)),
    );
    info.insert("status".into(), json!(logged_model_status(m.status)));
    info.insert("model_type".into(), json!(m.model_type));
    if let Some(run_id) = &m.source_run_id {
        info.insert("source_run_id".into(), json!(run_id));
    }
    insert_opt(&mut info, "tags", key_values(&m.tags));
    let mut data = Map::new();
    insert_opt(&mut data, "params", key_values(&m.params));
    if !metrics.is_empty() {
        let run_id = m.source_run_id.clone().unwrap_or_default();
        let points = metrics
            .iter()
            .map(|point| {
                let mut v = metric(point);
                if let Value::Object(obj) = &mut v {
                    obj.insert("model_id".into(), json!(m.model_id));
                    obj.insert("run_id".into(), json!(run_id));
                }
                v
            })
            .collect();
        data.insert("metrics".into(), Value::Array(points));
    }
    json!({"info": info, "data": data})
}

/// A `ModelVersion`.
pub fn model_version(v: &ModelVersion) -> Value {
    let mut obj = Map::new();
    obj.insert("name".into(), json!(v.model));
    obj.insert("version".into(), json!(v.version.to_string()));
    let at = v.created_at.timestamp_millis();
    obj.insert("creation_timestamp".into(), json!(at));
    obj.insert("last_updated_timestamp".into(), json!(at));
    obj.insert("current_stage".into(), json!("None"));
    obj.insert("description".into(), json!(""));
    obj.insert("source".into(), json!(v.artifact_uri));
    obj.insert("run_id".into(), json!(v.run_id));
    obj.insert("status".into(), json!("READY"));
    obj.insert("run_link".into(), json!(""));
    if !v.aliases.is_empty() {
        obj.insert("aliases".into(), json!(v.aliases));
    }
    Value::Object(obj)
}

/// A `RegisteredModel`, with its latest version if it has one.
pub fn registered_model(m: &RegisteredModel, latest: Option<&ModelVersion>) -> Value {
    let mut obj = Map::new();
    obj.insert("name".into(), json!(m.name));
    obj.insert(
        "creation_timestamp".into(),
        json!(m.created_at.timestamp_millis()),
    );
    obj.insert(
        "last_updated_timestamp".into(),
        json!(m.updated_at.timestamp_millis()),
    );
    if let Some(v) = latest {
        obj.insert("latest_versions".into(), json!([model_version(v)]));
    }
    if !m.aliases.is_empty() {
        let aliases = m
            .aliases
            .iter()
            .map(|(alias, version)| json!({"alias": alias, "version": version.to_string()}))
            .collect();
        obj.insert("aliases".into(), Value::Array(aliases));
    }
    Value::Object(obj)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_finite_doubles_use_protobuf_spellings() {
        assert_eq!(double(f64::NAN), json!("NaN"));
        assert_eq!(double(f64::INFINITY), json!("Infinity"));
        assert_eq!(double(f64::NEG_INFINITY), json!("-Infinity"));
        assert_eq!(double(0.5), json!(0.5));
    }
}
