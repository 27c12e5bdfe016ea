"""Checks the DAG files `spire export airflow` wrote with Airflow's own DAG parser.

Usage: python airflow_check.py DAG_FOLDER

Loads every file in DAG_FOLDER with Airflow's DagBag and compares each DAG with the
folder's manifest.json: no import errors, the same DAG ids, task ids, dependencies,
schedules, retries and pools. Prints "AIRFLOW OK" and a summary, or fails with the first
difference.
"""

import json
import os
import sys
import tempfile


def main():
    folder = os.path.abspath(sys.argv[1])
    os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="spire-airflow-"))
    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:  # Airflow 2
        from airflow.models.dagbag import DagBag

    manifest = json.load(open(os.path.join(folder, "manifest.json")))
    bag = DagBag(dag_folder=folder)
    assert not bag.import_errors, f"import errors: {bag.import_errors}"
    expected = {d["dag_id"]: d for d in manifest["dags"]}
    assert set(bag.dags) == set(expected), (sorted(bag.dags), sorted(expected))
    tasks = 0
    for dag_id, want in expected.items():
        dag = bag.dags[dag_id]
        got_tasks = {t.task_id: t for t in dag.tasks}
        want_tasks = {t["task_id"]: t for t in want["tasks"]}
        assert set(got_tasks) == set(want_tasks), (dag_id, sorted(got_tasks), sorted(want_tasks))
        edges = sorted(
            [up, down] for up, t in got_tasks.items() for down in t.downstream_task_ids
        )
        assert edges == sorted(want["edges"]), (dag_id, edges, want["edges"])
        for task_id, t in got_tasks.items():
            w = want_tasks[task_id]
            assert t.retries == w["retries"], (dag_id, task_id, t.retries, w["retries"])
            assert t.pool == w["pool"], (dag_id, task_id, t.pool, w["pool"])
            assert "task run --dag" in t.bash_command and w["label"] in t.bash_command, t.bash_command
        schedule = getattr(dag, "schedule", None)
        if want["schedule"] is not None:
            summary = str(getattr(dag.timetable, "summary", "")) + " " + str(schedule)
            assert want["schedule"] in summary, (dag_id, summary, want["schedule"])
            assert str(dag.timezone.name) == want["timezone"], (dag_id, dag.timezone, want["timezone"])
        tasks += len(got_tasks)
    print(f"AIRFLOW OK: {len(expected)} DAGs, {tasks} tasks")


if __name__ == "__main__":
    main()
