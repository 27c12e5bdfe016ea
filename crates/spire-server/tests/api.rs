//! The HTTP API over a real segments table.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use spire_lake::arrow::array::{Date32Array, Float64Array, Int64Array, RecordBatch, StringArray};
use spire_lake::Lake;
use tower::ServiceExt;

async fn get(app: &axum::Router, uri: &str) -> (StatusCode, serde_json::Value) {
    let res = app
        .clone()
        .oneshot(Request::get(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = res.status();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&body).unwrap())
}

#[tokio::test]
async fn serves_memberships_sizes_and_health() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
    let day =
        |d: &str| spire_core::time::days_since_epoch(spire_core::time::parse_date(d).unwrap());
    let batch = RecordBatch::try_new(
        spire_pipeline::stages::score::segments_schema(),
        vec![
            Arc::new(StringArray::from(vec!["u1", "u1", "u2", "u1"])),
            Arc::new(StringArray::from(vec!["a", "b", "a", "a"])),
            Arc::new(Float64Array::from(vec![0.9, 1.0, 0.8, 0.1])),
            Arc::new(Int64Array::from(vec![Some(3), None, Some(3), Some(2)])),
            Arc::new(Date32Array::from(vec![
                day("2026-11-02"),
                day("2026-11-02"),
                day("2026-11-02"),
                day("2026-11-01"),
            ])),
        ],
    )
    .unwrap();
    lake.append("segments", vec![batch], &["as_of"])
        .await
        .unwrap();
    let app = spire_server::router(
        spire_server::AppState::load(lake).await.unwrap(),
        spire_server::Access::open(),
    );

    let (s, body) = get(&app, "/v1/users/u1/segments").await;
    assert_eq!(s, StatusCode::OK);
    let segs = body["segments"].as_array().unwrap();
    assert_eq!(
        segs.len(),
        2,
        "only the latest as_of of each segment: {body}"
    );
    assert_eq!(segs[0]["segment"], "a");
    assert_eq!(segs[0]["score"], 0.9);
    assert_eq!(segs[0]["model_version"], 3);
    assert_eq!(segs[1]["model_version"], serde_json::Value::Null);

    let (s, body) = get(&app, "/v1/users/nobody/segments").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(body["segments"].as_array().unwrap().len(), 0);

    let (_, body) = get(&app, "/v1/segments").await;
    let sizes = body["segments"].as_array().unwrap();
    assert_eq!(
        sizes.iter().find(|s| s["segment"] == "a").unwrap()["members"],
        2
    );

    let (s, body) = get(&app, "/healthz").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(body["status"], "ok");
    assert_eq!(body["users"], 2);
}

#[tokio::test]
async fn serves_the_mlflow_api_next_to_segments() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path().join("lake").to_str().unwrap()).unwrap();
    let day =
        spire_core::time::days_since_epoch(spire_core::time::parse_date("2026-11-02").unwrap());
    let batch = RecordBatch::try_new(
        spire_pipeline::stages::score::segments_schema(),
        vec![
            Arc::new(StringArray::from(vec!["u1"])),
            Arc::new(StringArray::from(vec!["a"])),
            Arc::new(Float64Array::from(vec![0.9])),
            Arc::new(Int64Array::from(vec![Some(3)])),
            Arc::new(Date32Array::from(vec![day])),
        ],
    )
    .unwrap();
    lake.append("segments", vec![batch], &["as_of"])
        .await
        .unwrap();
    let url = format!("sqlite://{}", dir.path().join("spire.db").display());
    let registry = spire_registry::Registry::open(&url).await.unwrap();
    let store = spire_registry::ArtifactStore::open(
        &dir.path().join("artifacts").display().to_string(),
        &Default::default(),
    )
    .unwrap();
    let mlflow = spire_server::MlflowState::new(registry, store);
    let app = spire_server::app(
        spire_server::AppState::load(lake).await.unwrap(),
        spire_server::Access::open(),
        Some(mlflow),
    );

    let (s, body) = get(&app, "/v1/users/u1/segments").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(body["segments"][0]["segment"], "a");
    let res = app
        .clone()
        .oneshot(
            Request::post("/api/2.0/mlflow/experiments/create")
                .header("Content-Type", "application/json")
                .body(Body::from(r#"{"name": "sports"}"#))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let (s, body) = get(
        &app,
        "/api/2.0/mlflow/experiments/get-by-name?experiment_name=sports",
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(body["experiment"]["name"], "sports");
    let (s, body) = get(&app, "/nowhere").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(body["error_code"], "ENDPOINT_NOT_FOUND");
}
