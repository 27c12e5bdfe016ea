#!/usr/bin/env bash
# Creates (once) the virtualenv holding the real MLflow client and server that Spire's
# MLflow-compatibility tests drive: `mlflow==3.17.2` (pinned: the contract fixture in
# crates/spire-mlflow/tests/fixtures/ was recorded with it) and scikit-learn (for
# `mlflow.sklearn.log_model`). Prints the venv's python path on stdout as its last line.
#
#   scripts/mlflow-venv.sh            # venv at $SPIRE_MLFLOW_VENV or /var/cache/spire/mlflow-venv
#
# Fails loudly (non-zero exit) when the venv cannot be created: the tests never skip.
set -euo pipefail
MLFLOW_VERSION="3.17.2"
venv="${SPIRE_MLFLOW_VENV:-/var/cache/spire/mlflow-venv}"
python="$venv/bin/python"
check() {
  "$python" - "$MLFLOW_VERSION" <<'PY' >/dev/null 2>&1
import sys, mlflow, sklearn
assert mlflow.__version__ == sys.argv[1], mlflow.__version__
PY
}
if ! check; then
  echo "setting up $venv with mlflow==$MLFLOW_VERSION and scikit-learn (MLflow compatibility tests)" >&2
  mkdir -p "$(dirname "$venv")"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "mlflow==$MLFLOW_VERSION" scikit-learn >&2
  if ! check; then
    echo "!!! $venv has no working mlflow==$MLFLOW_VERSION + scikit-learn after pip install" >&2
    exit 1
  fi
fi
echo "$python"
