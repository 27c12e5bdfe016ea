#!/usr/bin/env bash
# Creates (once) the virtualenv holding Apache Airflow, whose own DAG parser checks the files
# `spire export airflow` writes: apache-airflow==3.3.2 with the standard provider (pinned:
# the export targets Airflow 3's `airflow.sdk`, and falls back to Airflow 2's imports).
# Prints the venv's python path on stdout as its last line.
#
#   scripts/airflow-venv.sh          # venv at $SPIRE_AIRFLOW_VENV or /var/cache/spire/airflow-venv
#
# Fails loudly (non-zero exit) when the venv cannot be created: the test never skips.
set -euo pipefail
AIRFLOW_VERSION="3.3.2"
venv="${SPIRE_AIRFLOW_VENV:-/var/cache/spire/airflow-venv}"
python="$venv/bin/python"
check() {
  "$python" - "$AIRFLOW_VERSION" <<'PY' >/dev/null 2>&1
import sys, airflow
from airflow.providers.standard.operators.bash import BashOperator
assert airflow.__version__ == sys.argv[1], airflow.__version__
PY
}
if ! check; then
  echo "setting up $venv with apache-airflow==$AIRFLOW_VERSION (Airflow export test; a few minutes)" >&2
  mkdir -p "$(dirname "$venv")"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check \
    "apache-airflow==$AIRFLOW_VERSION" apache-airflow-providers-standard >&2
  if ! check; then
    echo "!!! $venv has no working apache-airflow==$AIRFLOW_VERSION after pip install" >&2
    exit 1
  fi
fi
echo "$python"
