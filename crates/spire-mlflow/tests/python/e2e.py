"""End-to-end: the real MLflow client against a Spire server.

Usage: python e2e.py BASE_URL ADMIN_TOKEN

Runs the shared scenario (experiments, runs, params, metrics with steps, NaN/Inf,
artifacts, `mlflow.sklearn.log_model`, searches with the filter grammar, registry, aliases,
loading the model back), then checks the protected `champion` alias: denied without the
admin token, allowed with it (sent the MLflow way, through MLFLOW_TRACKING_TOKEN).
"""

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import scenario  # noqa: E402

import mlflow  # noqa: E402
from mlflow import MlflowClient  # noqa: E402


def main():
    base_url, token = sys.argv[1], sys.argv[2]
    os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "0"
    ids = scenario.run(base_url, admin_token=token)
    client = MlflowClient()
    scenario.expect_error(
        "PERMISSION_DENIED", client.delete_registered_model_alias, "contract-model", "champion"
    )

    os.environ["MLFLOW_TRACKING_TOKEN"] = token
    admin = MlflowClient()
    admin.set_registered_model_alias("contract-model", "champion", "1")
    champion = admin.get_model_version_by_alias("contract-model", "champion")
    assert champion.version == "1" and champion.run_id == ids["run_id"], champion
    model = mlflow.sklearn.load_model("models:/contract-model@champion")
    assert list(model.predict(np.array([[0.0, 1.0], [1.0, 0.0]]))) == [0, 1]
    admin.delete_registered_model_alias("contract-model", "champion")
    del os.environ["MLFLOW_TRACKING_TOKEN"]
    print("E2E OK", ids)


if __name__ == "__main__":
    main()
