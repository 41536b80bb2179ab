"""watchkeeper retraining, trained in Airflow (docs/retraining-airflow.md).

watchkeeper decides *when* a model is retrained (a `retrain` alert, its schedule, a manual
call) and *whether* the candidate is better (its significance gate, on rows the candidate never
saw). This DAG does the training in between. The model's configuration hands its runs to this
DAG through watchkeeper's webhook executor, which triggers a DAG run with Airflow's REST API
and the job as the run's ``conf``:

.. code-block:: yaml

    retrain:
      trainer: mypkg.training:fit
      label_delay: 1d
      executor:
        kind: webhook
        format: airflow
        url: https://airflow.example.com/api/v1/dags/watchkeeper_retrain/dagRuns
        authorization_env: AIRFLOW_AUTHORIZATION   # e.g. "Basic <base64 user:password>"
        deadline: 6h

The tasks:

1. ``receive_or_start``: a run triggered by watchkeeper carries the job; one triggered any
   other way (Airflow's UI, its own schedule) *starts* a run with
   ``POST /v1/models/{model}/retrain`` and stops there: watchkeeper hands that run's job back
   to this DAG, as a new DAG run, through the webhook executor.
2. ``train``: the job's training function (``trainer``, ``package.module:function``) on the
   rows predicted in ``[start, train_before)``, read by :func:`load_training_rows` (replace it
   with your warehouse query; the default reads ``WATCHKEEPER_TRAINING_DATA``, a Parquet or CSV
   file with a ``timestamp`` column in epoch seconds). Rows from ``train_before`` on are the
   gate's holdout: never train on them.
3. ``post_artifact``: the pickled model to the job's ``callback_url``
   (``POST /v1/retrain/runs/{id}/artifact``).
4. ``wait_for_gate``: polls ``GET /v1/retrain/runs/{id}`` until the gate decided; a rejected
   candidate is a normal outcome, a failed run fails the task.

Settings (environment variables of the Airflow workers): ``WATCHKEEPER_URL`` (the service),
``WATCHKEEPER_TOKEN`` (a token with the ``admin`` scope: starting runs and posting artifacts
change state), ``WATCHKEEPER_MODEL`` (the model a DAG run without a job starts),
``WATCHKEEPER_TRAINING_DATA`` and ``WATCHKEEPER_ARTIFACT_DIR`` (where ``train`` leaves the
artifact for ``post_artifact``; shared storage when tasks run on different machines).

Only Airflow's public API (the TaskFlow decorators) and plain HTTP (the standard library) are
used: no watchkeeper package is needed on the workers unless the trainer imports it.
"""

from __future__ import annotations

import importlib
import json
import os
import pickle
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

try:  # Airflow 3
    from airflow.sdk import PokeReturnValue, dag, get_current_context, task
except ImportError:  # Airflow 2.5+
    from airflow.decorators import dag, task
    from airflow.operators.python import get_current_context
    from airflow.sensors.base import PokeReturnValue

#: watchkeeper's API as this DAG uses it (tests/retrain/test_airflow_dag.py checks each path,
#: query parameter and field against the service's OpenAPI document).
START_RUN = "/v1/models/{model}/retrain"
RUN = "/v1/retrain/runs/{run_id}"
ARTIFACT = "/v1/retrain/runs/{run_id}/artifact"
ARTIFACT_QUERY = {"flavor": "pickle", "trust": "true"}
#: Statuses after which the gate has decided (or the run ended without one).
DECIDED = {"registered", "rolling_out", "awaiting_approval", "rejected", "failed", "interrupted"}


def _call(method: str, path_or_url: str, *, body: bytes | None = None, media: str = "") -> Any:
    """One request to watchkeeper with the admin token; the JSON answer."""
    base = os.environ.get("WATCHKEEPER_URL", "http://127.0.0.1:8000").rstrip("/")
    url = path_or_url if path_or_url.startswith("http") else base + path_or_url
    headers = {"Authorization": f"Bearer {os.environ['WATCHKEEPER_TOKEN']}"}
    if media:
        headers["Content-Type"] = media
    request = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        detail = error.read().decode(errors="replace")[:500]
        raise RuntimeError(f"watchkeeper {method} {url} answered {error.code}: {detail}") from None


def load_training_rows(job: dict[str, Any]) -> Any:
    """The rows to train on: predicted in ``[start, train_before)``, with the job's features and
    its label column. Replace this with the query of your own data."""
    import pandas as pd

    path = os.environ["WATCHKEEPER_TRAINING_DATA"]
    frame = pd.read_parquet(path) if path.endswith((".parquet", ".pq")) else pd.read_csv(path)
    times = frame["timestamp"]
    rows = frame[(times >= job["start"]) & (times < job["train_before"])]
    return rows[[*job["features"], job["label"]]].reset_index(drop=True)


@dag(
    dag_id="watchkeeper_retrain",
    schedule=None,  # runs come from watchkeeper's webhook executor (or a manual trigger)
    start_date=datetime(2024, 1, 1),
    catchup=False,
    max_active_runs=4,
    default_args={"retries": 2, "retry_delay": timedelta(minutes=1)},
    tags=["watchkeeper", "retraining"],
)
def watchkeeper_retrain() -> None:
    """Train the candidate of a watchkeeper retraining run and hand it back for the gate."""

    @task.short_circuit
    def receive_or_start() -> bool:
        """True with a job in the run's conf; otherwise start a run in watchkeeper (whose job
        comes back as a new DAG run) and skip the rest of this one."""
        job = get_current_context()["dag_run"].conf or {}
        if "run_id" in job:
            return True
        model = os.environ["WATCHKEEPER_MODEL"]
        body = json.dumps({"reason": "started from Airflow"}).encode()
        run = _call("POST", START_RUN.format(model=model), body=body, media="application/json")
        print(f"started watchkeeper run {run['id']} of {run['model']} ({run['status']})")
        return False

    @task
    def train() -> str:
        """Fit the job's trainer on the rows before the holdout; the artifact's path."""
        job = get_current_context()["dag_run"].conf
        rows = load_training_rows(job)
        module, function = job["trainer"].split(":")
        trainer = getattr(importlib.import_module(module), function)
        context = SimpleNamespace(
            model=job["model"],
            champion_version=None,
            start=job["start"],
            end=job["train_before"],
            features=tuple(job["features"]),
            label=job["label"],
            params=job["params"],
        )
        model = trainer(rows, context)
        folder = Path(os.environ.get("WATCHKEEPER_ARTIFACT_DIR", tempfile.gettempdir()))
        path = folder / f"watchkeeper-run-{job['run_id']}-attempt-{job['attempt']}.pkl"
        path.write_bytes(pickle.dumps(model))
        print(f"trained on {len(rows)} rows: {path}")
        return str(path)

    @task
    def post_artifact(path: str) -> int:
        """The artifact to the run's callback URL; the run id."""
        job = get_current_context()["dag_run"].conf
        query = urllib.parse.urlencode(ARTIFACT_QUERY)
        run = _call(
            "POST",
            f"{job['callback_url']}?{query}",
            body=Path(path).read_bytes(),
            media="application/octet-stream",
        )
        print(f"artifact posted: run {run['id']} is {run['status']}")
        return int(run["id"])

    @task.sensor(poke_interval=30, timeout=6 * 3600, mode="reschedule")
    def wait_for_gate(run_id: int) -> Any:
        """Done when the gate decided: the run's status, reason and version."""
        run = _call("GET", RUN.format(run_id=run_id))
        if run["status"] not in DECIDED:
            return PokeReturnValue(is_done=False)
        print(f"run {run_id}: {run['status']}: {run['reason']}")
        if run["status"] == "failed":
            raise RuntimeError(f"watchkeeper run {run_id} failed: {run['error']}")
        summary = {"status": run["status"], "reason": run["reason"], "version": run["version"]}
        return PokeReturnValue(is_done=True, xcom_value=summary)

    artifact = train()
    receive_or_start() >> artifact
    wait_for_gate(post_artifact(artifact))


watchkeeper_retrain()
