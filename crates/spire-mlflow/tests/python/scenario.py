"""The MLflow client scenario shared by the contract recorder and the end-to-end test.

`run(base_url)` drives the real `mlflow` client (fluent API and MlflowClient) plus a few raw
HTTP requests for edge cases the client refuses to send, against the tracking server at
`base_url`. It asserts what the client reads back, so it fails the same way against MLflow's
own server and against Spire. Each edge case records the server's error code.
"""

import json
import math
import os
import sys
import tempfile

import numpy as np
import requests

import mlflow
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException, RestException

API = "/api/2.0/mlflow"


def expect_error(code, fn, *args, **kwargs):
    """Calls fn and checks that the server answered with MLflow error `code`."""
    try:
        fn(*args, **kwargs)
    except (MlflowException, RestException) as e:
        assert e.error_code == code, f"expected {code}, got {e.error_code}: {e}"
        return e
    raise AssertionError(f"expected {code} from {fn}, got success")


def raw(base_url, method, path, **kwargs):
    """A raw request (for inputs the client validates away); returns the response."""
    return requests.request(method, base_url + path, timeout=30, **kwargs)


def run(base_url, admin_token=None):
    mlflow.set_tracking_uri(base_url)
    client = MlflowClient()

    # --- experiments -------------------------------------------------------------------
    exp_id = mlflow.create_experiment("contract-exp", tags={"team": "spire"})
    exp = client.get_experiment(exp_id)
    assert exp.name == "contract-exp" and exp.tags["team"] == "spire", exp
    assert client.get_experiment_by_name("contract-exp").experiment_id == exp_id
    assert client.get_experiment_by_name("no-such-experiment") is None
    expect_error("RESOURCE_ALREADY_EXISTS", mlflow.create_experiment, "contract-exp")
    expect_error("RESOURCE_DOES_NOT_EXIST", client.get_experiment, "987654321")
    other_id = client.create_experiment("contract-other")
    found = client.search_experiments(filter_string="name = 'contract-other'")
    assert [e.experiment_id for e in found] == [other_id], found
    found = client.search_experiments(filter_string="name LIKE 'contract-%'", order_by=["name ASC"])
    assert [e.name for e in found] == ["contract-exp", "contract-other"], found
    page = client.search_experiments(filter_string="name LIKE 'contract-%'", max_results=1)
    assert len(page) == 1 and page.token, page
    page2 = client.search_experiments(
        filter_string="name LIKE 'contract-%'", max_results=1, page_token=page.token
    )
    assert len(page2) == 1 and page2[0].experiment_id != page[0].experiment_id

    # --- a run with params, metrics (steps), tags, artifacts ---------------------------
    mlflow.set_experiment("contract-exp")
    with mlflow.start_run(run_name="train-lr") as active:
        run_id = active.info.run_id
        mlflow.log_param("algorithm", "logistic_regression")
        mlflow.log_params({"C": 0.5, "max_iter": 200})
        for step in range(3):
            mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
        mlflow.log_metric("auc", 0.87)
        mlflow.log_metric("nan_metric", float("nan"))
        mlflow.log_metric("inf_metric", float("inf"))
        mlflow.log_metric("neg_inf_metric", float("-inf"))
        mlflow.set_tag("segment", "reads-sports")
        mlflow.set_tags({"owner": "ci", "scratch": "x"})
        client.delete_tag(run_id, "scratch")
        expect_error("RESOURCE_DOES_NOT_EXIST", client.delete_tag, run_id, "scratch")
        mlflow.log_param("algorithm", "logistic_regression")  # same value: fine
        expect_error("INVALID_PARAMETER_VALUE", mlflow.log_param, "algorithm", "gbdt")
        mlflow.log_text("hello spire", "notes/hello.txt")
        mlflow.log_dict({"k": [1, 2]}, "config.json")

        from sklearn.linear_model import LogisticRegression

        X = np.array([[0.0, 1.0], [1.0, 0.0], [0.2, 0.9], [0.9, 0.1]])
        y = np.array([0, 1, 0, 1])
        model = LogisticRegression().fit(X, y)
        info = mlflow.sklearn.log_model(model, name="model", input_example=X[:2])
        model_id = info.model_id

    got = client.get_run(run_id)
    assert got.info.status == "FINISHED", got.info
    assert got.info.run_name == "train-lr", got.info
    assert got.data.params == {"algorithm": "logistic_regression", "C": "0.5", "max_iter": "200"}
    assert got.data.metrics["loss"] == 1.0 / 3 and got.data.metrics["auc"] == 0.87
    assert math.isnan(got.data.metrics["nan_metric"]), got.data.metrics
    # MLflow's SQL store clamps ±inf to ±sys.float_info.max; Spire keeps them.
    assert got.data.metrics["inf_metric"] >= sys.float_info.max, got.data.metrics
    assert got.data.metrics["neg_inf_metric"] <= -sys.float_info.max, got.data.metrics
    assert got.data.tags["segment"] == "reads-sports" and "scratch" not in got.data.tags
    history = client.get_metric_history(run_id, "loss")
    assert [(m.step, m.value) for m in history] == [(0, 1.0), (1, 0.5), (2, 1.0 / 3)], history
    files = sorted(f.path for f in client.list_artifacts(run_id))
    assert "config.json" in files and "notes" in files, files
    assert [f.path for f in client.list_artifacts(run_id, "notes")] == ["notes/hello.txt"]
    with tempfile.TemporaryDirectory() as d:
        local = client.download_artifacts(run_id, "notes/hello.txt", d)
        assert open(local).read() == "hello spire"
    logged = mlflow.get_logged_model(model_id)
    assert logged.source_run_id == run_id and logged.status.to_proto() == 2, logged
    assert logged.name == "model", logged

    # --- edge cases: NaN/Inf went above; errors and limits ----------------------------
    expect_error("RESOURCE_DOES_NOT_EXIST", client.get_run, "0" * 32)
    r = raw(base_url, "POST", f"{API}/runs/log-metric", data="{not json",
            headers={"Content-Type": "application/json"})
    assert r.status_code == 400, (r.status_code, r.text)
    r = raw(base_url, "POST", f"{API}/runs/log-metric", json={"run_id": run_id, "key": "m"})
    assert r.status_code == 400, (r.status_code, r.text)
    ts = 1700000000000
    too_many = [{"key": f"m{i}", "value": 1.0, "timestamp": ts, "step": 0} for i in range(1001)]
    r = raw(base_url, "POST", f"{API}/runs/log-batch", json={"run_id": run_id, "metrics": too_many})
    assert r.status_code == 400, (r.status_code, r.text)
    r = raw(base_url, "POST", f"{API}/runs/log-batch",
            json={"run_id": run_id, "metrics": too_many[:1000]})
    assert r.status_code == 200, (r.status_code, r.text)
    params = [{"key": f"p{i}", "value": "v"} for i in range(101)]
    r = raw(base_url, "POST", f"{API}/runs/log-batch", json={"run_id": run_id, "params": params})
    assert r.status_code == 400, (r.status_code, r.text)
    tags = [{"key": f"t{i}", "value": "v"} for i in range(101)]
    r = raw(base_url, "POST", f"{API}/runs/log-batch", json={"run_id": run_id, "tags": tags})
    assert r.status_code == 400, (r.status_code, r.text)
    r = raw(base_url, "POST", f"{API}/runs/log-batch",
            json={"run_id": run_id, "params": [{"key": "algorithm", "value": "other"}]})
    assert r.status_code == 400, (r.status_code, r.text)

    # --- more runs, then search with the filter grammar and page tokens ----------------
    for i, (algo, auc, segment) in enumerate(
        [("gbdt", 0.91, "reads-news"), ("logistic_regression", 0.62, "clicks-sports")]
    ):
        with mlflow.start_run(run_name=f"run-{i}"):
            mlflow.log_param("algorithm", algo)
            mlflow.log_metric("auc", auc)
            mlflow.set_tag("segment", segment)
    with mlflow.start_run(run_name="to-delete") as doomed:
        mlflow.log_metric("auc", 0.99)
    doomed_id = doomed.info.run_id

    def search(filter_string, **kw):
        return mlflow.search_runs(
            experiment_ids=[exp_id], filter_string=filter_string, output_format="list", **kw
        )

    def aucs(runs):
        return sorted(r.data.metrics["auc"] for r in runs)

    assert aucs(search("metrics.auc > 0.8")) == [0.87, 0.91, 0.99]
    assert aucs(search("metrics.`auc` > 0.8 and params.algorithm = 'logistic_regression'")) == [0.87]
    assert aucs(search("tags.segment ILIKE 'READS-%'")) == [0.87, 0.91]
    assert aucs(search("tags.segment LIKE 'reads-%'")) == [0.87, 0.91]
    assert aucs(search("attributes.status = 'FINISHED' and metrics.auc < 0.9")) == [0.62, 0.87]
    assert aucs(search("attributes.run_name = 'run-0'")) == [0.91]
    expect_error("INVALID_PARAMETER_VALUE", search, "metrics.auc >> 0.8")
    picked = search("metrics.auc > 0.9")
    ids = ", ".join(f"'{r.info.run_id}'" for r in picked)
    assert aucs(search(f"attributes.run_id IN ({ids})")) == [0.91, 0.99]
    ordered = search("", order_by=["metrics.auc DESC"])
    assert [r.data.metrics["auc"] for r in ordered] == [0.99, 0.91, 0.87, 0.62]
    first = client.search_runs([exp_id], "", max_results=2, order_by=["metrics.auc DESC"])
    assert len(first) == 2 and first.token, first
    second = client.search_runs(
        [exp_id], "", max_results=2, order_by=["metrics.auc DESC"], page_token=first.token
    )
    assert [r.data.metrics["auc"] for r in second] == [0.87, 0.62] and not second.token

    client.delete_run(doomed_id)
    assert client.get_run(doomed_id).info.lifecycle_stage == "deleted"
    assert aucs(search("metrics.auc > 0.95")) == []
    deleted = search("", run_view_type=mlflow.entities.ViewType.DELETED_ONLY)
    assert [r.info.run_id for r in deleted] == [doomed_id], deleted
    client.restore_run(doomed_id)
    assert aucs(search("metrics.auc > 0.95")) == [0.99]

    # --- registry: models, versions, aliases --------------------------------------------
    client.create_registered_model("contract-model")
    expect_error("RESOURCE_ALREADY_EXISTS", client.create_registered_model, "contract-model")
    mv = mlflow.register_model(f"models:/{model_id}", "contract-model")
    assert mv.version == "1", mv
    mv2 = mlflow.register_model(f"runs:/{run_id}/model", "contract-model")
    assert mv2.version == "2", mv2
    assert client.get_model_version("contract-model", "1").run_id == run_id
    expect_error("RESOURCE_DOES_NOT_EXIST", client.get_model_version, "contract-model", "9")
    expect_error("RESOURCE_DOES_NOT_EXIST", client.get_registered_model, "no-such-model")
    client.set_registered_model_alias("contract-model", "challenger", "1")
    by_alias = client.get_model_version_by_alias("contract-model", "challenger")
    assert by_alias.version == "1" and "challenger" in by_alias.aliases, by_alias
    client.set_registered_model_alias("contract-model", "challenger", "2")
    assert client.get_model_version_by_alias("contract-model", "challenger").version == "2"
    client.set_registered_model_alias("contract-model", "staging", "1")
    client.delete_registered_model_alias("contract-model", "staging")
    expect_error(
        "INVALID_PARAMETER_VALUE", client.get_model_version_by_alias, "contract-model", "staging"
    )
    rm = client.get_registered_model("contract-model")
    assert rm.aliases == {"challenger": "2"}, rm.aliases
    versions = client.search_model_versions("name = 'contract-model'")
    assert sorted(v.version for v in versions) == ["1", "2"], versions
    models = client.search_registered_models(filter_string="name LIKE 'contract-%'")
    assert [m.name for m in models] == ["contract-model"], models
    loaded = mlflow.sklearn.load_model("models:/contract-model@challenger")
    assert list(loaded.predict(np.array([[0.0, 1.0], [1.0, 0.0]]))) == [0, 1]

    # --- the champion alias: protected on Spire, open on MLflow's server -------------------
    if admin_token is not None:
        expect_error(
            "PERMISSION_DENIED", client.set_registered_model_alias, "contract-model", "champion", "1"
        )
    return {"experiment_id": exp_id, "run_id": run_id, "model_id": model_id}
