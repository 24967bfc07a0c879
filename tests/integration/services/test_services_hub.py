"""Platform services through ``tkhub up``: a real MLflow tracking server, a kernel that
logs to it, secrets that reach the kernel and nowhere else, and a service that stops.

The MLflow server and the client the kernel imports come from one environment
(``mlflow_env``), registered as a local environment of the hub.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import nbformat
import pytest
from conftest import start_mlflow
from hubproc import free_port, remove_test_account, terminate
from jobs_client import (
    jobs_api,
    notebooks_of,
    place_notebook,
    submit,
    wait_job,
    write_notebook,
)
from kernels import run_in_kernel

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "local"))
from local_hub import LocalHub, running_tkhub_up, signed_in_token, tkhub  # noqa: E402

from tkhub.environments import resolve  # noqa: E402
from tkhub.local.env_create import create_environment  # noqa: E402

FINE_TUNING = (
    Path(__file__).resolve().parents[3] / "examples/notebooks/fine-tuning/lora-tiny-model.ipynb"
)
QDRANT_KEY = "qk-" + os.urandom(12).hex()  # a value to search every output for
GATEWAY_KEY = "sk-" + os.urandom(12).hex()


@dataclass
class Stack:
    hub: LocalHub
    mlflow_url: str
    mlflow: subprocess.Popen[bytes]
    root: Path


def secret(path: Path, value: str) -> Path:
    path.write_text(value + "\n")
    path.chmod(0o600)
    return path


@pytest.fixture(scope="module")
def stack(mlflow_env: Path) -> Iterator[Stack]:
    root = Path(tempfile.mkdtemp(dir="/tmp", prefix="tkhub-services-"))
    root.chmod(0o755)  # users' accounts reach their homes below it
    bin_dir = mlflow_env
    port = free_port()
    mlflow = start_mlflow(bin_dir, root / "mlflow", port)
    url = f"http://127.0.0.1:{port}"
    keys = root / "keys"
    keys.mkdir(mode=0o700)
    data = root / "data"
    data.mkdir()
    (data / "tkhub.yaml").write_text(json.dumps({"services": [
        {"name": "MLflow", "url": url, "env": {"MLFLOW_TRACKING_URI": url}},
        {"name": "Vector store", "url": "http://127.0.0.1:9/",
         "env": {"QDRANT_URL": "http://127.0.0.1:9"},
         "secrets": {"QDRANT_API_KEY": str(secret(keys / "qdrant", QDRANT_KEY))}},
        {"name": "LLM gateway", "env": {"OPENAI_BASE_URL": "http://127.0.0.1:9/v1"},
         "secrets": {"OPENAI_API_KEY": str(secret(keys / "gateway", GATEWAY_KEY))},
         "groups": ["llm-users"]},
    ]}))  # fmt: skip
    try:
        with running_tkhub_up(root=root, keep=True) as hub:
            entry = {"name": "tracked", "kind": "local", "python": str(bin_dir / "python")}
            assert hub.catalog("POST", "/images", json=entry).status_code == 201
            yield Stack(hub, url, mlflow, root)
    finally:
        terminate(mlflow, timeout=30, sig=signal.SIGTERM)
        for user in ("alice", "bob", "admin"):
            remove_test_account(user, data)
        shutil.rmtree(root, ignore_errors=True)


KERNEL = """
import json, os, mlflow
with mlflow.start_run(run_name="from-a-kernel") as run:
    mlflow.log_param("lr", "0.001")
    mlflow.log_metric("loss", 0.25)
print(json.dumps({
    "uri": os.environ.get("MLFLOW_TRACKING_URI"),
    "run": run.info.run_id,
    "qdrant_key_matches": os.environ.get("QDRANT_API_KEY") == %r,
    "gateway": sorted(k for k in os.environ if k.startswith("OPENAI_")),
}))
"""


def test_a_kernel_logs_to_mlflow_and_secrets_stay_out_of_logs_and_pages(stack: Stack):
    hub = stack.hub
    page, token = signed_in_token(hub, "alice")
    assert 'id="tk-services"' in page and "MLflow" in page and "Vector store" in page, page
    assert "LLM gateway" not in page  # alice is not in llm-users
    assert hub.spawn("alice", {"image": "tracked"}).status_code in (201, 202)
    hub.wait_ready("alice")

    seen = run_in_kernel(hub, "alice", KERNEL % QDRANT_KEY, token=token)

    assert seen["uri"] == stack.mlflow_url
    assert seen["qdrant_key_matches"] is True  # read from its 0600 file, as root, at start
    assert seen["gateway"] == []  # a service of a group alice is not in
    run = httpx.get(f"{stack.mlflow_url}/api/2.0/mlflow/runs/get",
                    params={"run_id": seen["run"]}, timeout=30).json()["run"]  # fmt: skip
    assert run["info"]["run_name"] == "from-a-kernel"
    assert {"key": "lr", "value": "0.001"} in run["data"]["params"]
    assert run["data"]["metrics"][0]["key"] == "loss" and run["data"]["metrics"][0]["value"] == 0.25

    status = tkhub(hub, "status")
    assert "MLflow" in status.stdout and "answers at " + stack.mlflow_url in status.stdout
    assert "Vector store" in status.stdout and "does not answer" in status.stdout
    for where, text in (("hub log", hub.printed()), ("spawn page", page),
                        ("tkhub status", status.stdout + status.stderr)):  # fmt: skip
        assert QDRANT_KEY not in text and GATEWAY_KEY not in text, where
    assert status.returncode == 0, status.stdout  # a service down is shown, not a failure


JOB_CELL = """
import mlflow
with mlflow.start_run(run_name="from-a-job") as run:
    mlflow.log_param("lr", lr)
open("job-run-id.txt", "w").write(run.info.run_id)
"""


def test_a_job_gets_the_same_services_and_logs_to_mlflow(stack: Stack):
    hub = stack.hub
    _, token = signed_in_token(hub, "alice")
    write_notebook(hub, "alice", "tracked-job.ipynb", JOB_CELL, parameters="lr = 0.1")
    job = submit(hub, token, "tracked-job.ipynb", image="tracked", parameters={"lr": 0.02})
    done = wait_job(hub, token, job["id"])
    assert done["state"] == "succeeded", (done["reason"], done["error"])

    run_id = (notebooks_of(hub, "alice") / "job-run-id.txt").read_text()
    run = httpx.get(f"{stack.mlflow_url}/api/2.0/mlflow/runs/get",
                    params={"run_id": run_id}, timeout=30).json()["run"]  # fmt: skip
    assert run["info"]["run_name"] == "from-a-job"
    assert {"key": "lr", "value": "0.02"} in run["data"]["params"]
    log = jobs_api(hub, token, "GET", f"/jobs/{job['id']}/log").text
    assert QDRANT_KEY not in log and QDRANT_KEY not in hub.printed()


def test_the_fine_tuning_example_runs_as_a_job_and_logs_to_mlflow(stack: Stack):
    """The example as users get it, in its curated environment, run as a job on CPU:
    the adapter lands in the user's models, the loss in the output notebook and MLflow."""
    hub = stack.hub
    definition, known = resolve("fine-tuning")
    python = create_environment(definition, known, stack.root / "envs", lambda _: None).python
    entry = {"name": "fine-tuning", "kind": "local", "python": str(python)}
    assert hub.catalog("POST", "/images", json=entry).status_code == 201
    _, token = signed_in_token(hub, "alice")
    place_notebook(hub, "alice", "fine-tuning/lora-tiny-model.ipynb", FINE_TUNING)

    job = submit(hub, token, "fine-tuning/lora-tiny-model.ipynb", image="fine-tuning",
                 gpu="none", parameters={"adapter_name": "ci-adapter"})  # fmt: skip
    done = wait_job(hub, token, job["id"], timeout=900)
    assert done["state"] == "succeeded", (done["reason"], done["error"])

    output = nbformat.read(notebooks_of(hub, "alice") / done["output"], as_version=4)
    out = json.dumps([c.get("outputs", []) for c in output.cells])
    assert "fine-tuning loss" in out and f"logged to MLflow at {stack.mlflow_url}" in out
    adapter = hub.data_dir / "users" / "alice" / "thinkube" / "models" / "ci-adapter"
    assert (adapter / "adapter_config.json").is_file()
    api = f"{stack.mlflow_url}/api/2.0/mlflow"
    named = {"experiment_name": "tkhub-examples"}
    experiment = httpx.get(f"{api}/experiments/get-by-name", params=named).json()
    search = {"experiment_ids": [experiment["experiment"]["experiment_id"]]}
    (run,) = httpx.post(f"{api}/runs/search", json=search).json()["runs"]
    assert run["info"]["run_name"] == "ci-adapter"
    assert {p["key"] for p in run["data"]["params"]} == {"lora_rank", "finetune_steps"}
    assert [m["key"] for m in run["data"]["metrics"]] == ["loss"]
    where = {"run_id": run["info"]["run_id"], "path": "adapter"}
    listed = httpx.get(f"{api}/artifacts/list", params=where).json()
    names = {Path(f["path"]).name for f in listed["files"]}
    assert {"adapter_config.json", "adapter_model.safetensors"} <= names, listed


def test_mlflow_stopped_status_says_so_and_spawning_still_works(stack: Stack):
    hub = stack.hub
    terminate(stack.mlflow, timeout=30, sig=signal.SIGTERM)
    status = tkhub(hub, "status")
    line = next(x for x in status.stdout.splitlines() if "MLflow" in x)
    assert "down" in line and "does not answer at " + stack.mlflow_url in line, status.stdout
    assert status.returncode == 0

    hub.add_user("bob")
    assert hub.spawn("bob", {"image": "tracked"}).status_code in (201, 202)
    hub.wait_ready("bob")
    hub.stop("bob")
