"""Jobs on the emulated cluster: a real hub with the real catalog and the cluster's
jobs service (``python -m tkhub.kube.jobs_service``) as its service, jobs submitted
with users' hub tokens, each run as a batch/v1 Job whose pod the emulated kubelet runs
(the staged runner, papermill, the kernel) against the users' notebooks volume."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import nbformat
import pytest
from hubproc import free_port
from jobs_client import notebook_of
from kube_support import (
    HUB_IMAGE,
    NAMESPACE,
    VENV_BIN,
    Hub,
    Kube,
    seed_catalog,
    start_hub,
    stop_hub,
)

from tkhub.jobs import SERVER_TOKEN_SCOPES

FINISHED = ("succeeded", "failed", "cancelled")
JOBS_TOKEN = "jobs-service-token-for-tests"
JOBS_CONFIG = """
import json
catalog_url = c.JupyterHub.services[0]["url"]
c.JupyterHub.services.append({{
    "name": "jobs", "url": "http://127.0.0.1:{port}", "api_token": {token!r},
    "command": [{python!r}, "-m", "tkhub.kube.jobs_service"],
    "environment": {{
        "TKHUB_NAMESPACE": {namespace!r}, "TKHUB_CATALOG_URL": catalog_url,
        "TKHUB_JOBS_DATABASE_URL": "sqlite:///{root}/jobs.sqlite",
        "TKHUB_JOBS_NOTEBOOKS": {notebooks!r}, "TKHUB_JOBS_RUNNER_IMAGE": {runner!r},
        "TKHUB_JOBS_PORT": "{port}", "KUBECONFIG": {kubeconfig!r},
    }},
    "oauth_no_confirm": True,
}})
c.JupyterHub.custom_scopes["custom:tkhub-catalog:read-all"] = {{"description": "read all"}}
# servers as the chart's hub makes them: the `tkhub` client staged, the service's URL
# and a token that may use it
c.TkKubeSpawner.examples_image = {runner!r}
c.TkKubeSpawner.jobs_url = "http://127.0.0.1:{port}/services/jobs"
c.Spawner.server_token_scopes = {scopes!r}
c.JupyterHub.load_roles = [
    {{"name": "jobs", "services": ["jobs"],
     "scopes": ["read:users:groups", "read:users:name", "custom:tkhub-catalog:read-all"]}},
    {{"name": "user", "scopes": ["self", "access:services"]}},
]
"""


class Jobs:
    def __init__(self, hub: Hub, kube: Kube, port: int) -> None:
        self.hub, self.kube = hub, kube
        self.url = f"http://127.0.0.1:{port}/services/jobs/api/v1"

    def notebooks(self, user: str) -> Path:
        return self.kube.root / "volumes" / NAMESPACE / "tkhub-notebooks" / user

    def call(self, user: str, method: str, path: str, **kw: Any) -> httpx.Response:
        headers = {"Authorization": f"token {self.hub.tokens[user]}"}
        return httpx.request(method, self.url + path, headers=headers, timeout=60, **kw)

    def submit(self, user: str, notebook: str, **body: Any) -> dict[str, Any]:
        answer = self.call(user, "POST", "/jobs", json={"notebook": notebook, **body})
        assert answer.status_code == 201, answer.text
        return dict(answer.json())

    def wait(self, user: str, job_id: int, states: tuple[str, ...] = FINISHED,
             timeout: float = 120) -> dict[str, Any]:  # fmt: skip
        deadline, job = time.monotonic() + timeout, {}
        while time.monotonic() < deadline:
            job = self.call(user, "GET", f"/jobs/{job_id}").json()
            if job.get("state") in states:
                return dict(job)
            time.sleep(0.3)
        raise AssertionError(f"job {job_id} not {states}: {job}\n{self.hub.log()[-4000:]}")


def write_notebook(folder: Path, name: str, *cells: str, parameters: str = "") -> None:
    (folder / name).parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook_of(*cells, parameters=parameters), folder / name)


@pytest.fixture(scope="module")
def jobs(kube: Kube) -> Iterator[Jobs]:
    port = free_port()
    notebooks = kube.root / "volumes" / NAMESPACE / "tkhub-notebooks"
    notebooks.mkdir(parents=True, exist_ok=True)
    extra = JOBS_CONFIG.format(
        port=port, token=JOBS_TOKEN, python=sys.executable, namespace=NAMESPACE,
        root=kube.root, notebooks=str(notebooks), runner=HUB_IMAGE,
        kubeconfig=str(kube.kubeconfig), scopes=SERVER_TOKEN_SCOPES,
    )  # fmt: skip
    hub, proc = start_hub(kube, extra=extra)
    try:
        seed_catalog(hub)
        service = Jobs(hub, kube, port)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(service.url.removesuffix("api/v1") + "health").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        else:
            raise AssertionError(f"jobs service not up\n{hub.log()[-4000:]}")
        yield service
    finally:
        stop_hub(hub, proc)


def test_a_notebook_runs_as_a_kubernetes_job(jobs: Jobs, kube: Kube):
    write_notebook(jobs.notebooks("alice"), "train.ipynb",
                   "result = lr * 10\nprint('result', result)", parameters="lr = 1.0")  # fmt: skip
    job = jobs.submit("alice", "train.ipynb", image="lab", gpu="none",
                      parameters={"lr": 0.5}, time_limit=600)  # fmt: skip
    done = jobs.wait("alice", job["id"])
    assert done["state"] == "succeeded", done
    output = nbformat.read(jobs.notebooks("alice") / f"train.run-{job['id']}.ipynb", 4)
    sources = "".join(cell.source for cell in output.cells)
    assert "lr = 0.5" in sources  # papermill's injected parameters
    printed = "".join(o.get("text", "") for c in output.cells for o in c.get("outputs", []))
    assert "result 5.0" in printed
    log = jobs.call("alice", "GET", f"/jobs/{job['id']}/log").text
    assert f"tkhub job {job['id']}" in log and "succeeded" in log

    manifest = kube.get("jobs", f"tkhub-job-{job['id']}")
    assert manifest is not None
    assert manifest["spec"]["backoffLimit"] == 0
    assert manifest["spec"]["activeDeadlineSeconds"] == 600
    pod = manifest["spec"]["template"]["spec"]
    assert pod["containers"][0]["image"] == "registry.example.org/thinkube/tk-jupyter:1.0"
    mounts = {m["mountPath"]: m for m in pod["containers"][0]["volumeMounts"]}
    assert mounts["/home/jovyan/thinkube/notebooks"]["subPath"] == "alice"

    # another user neither sees nor cancels it
    assert jobs.call("bob", "GET", f"/jobs/{job['id']}").status_code == 404
    assert jobs.call("bob", "POST", f"/jobs/{job['id']}/cancel").status_code == 404


def test_a_failing_cell_and_an_image_that_cannot_be_pulled(jobs: Jobs, kube: Kube):
    write_notebook(jobs.notebooks("alice"), "broken.ipynb", "x = 1", "raise ValueError('bad')")
    failing = jobs.submit("alice", "broken.ipynb", image="lab", gpu="none")
    done = jobs.wait("alice", failing["id"])
    assert done["state"] == "failed" and done["failed_cell"] == 2, done
    assert "ValueError: bad" in done["error"]

    started = time.monotonic()
    pulled = jobs.submit("alice", "broken.ipynb", image="broken", gpu="none")
    done = jobs.wait("alice", pulled["id"], timeout=60)
    assert done["state"] == "failed" and "could not be pulled" in done["reason"], done
    assert time.monotonic() - started < 30  # seconds, not the time limit
    name = f"tkhub-job-{pulled['id']}"
    deadline = time.monotonic() + 10
    while kube.get("jobs", name) is not None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert kube.get("jobs", name) is None  # deleted with its pod


def test_gpu_jobs_wait_in_the_queue_and_start_as_gpus_free(jobs: Jobs, kube: Kube):
    write_notebook(jobs.notebooks("alice"), "gpu.ipynb",
                   "import subprocess\nprint(subprocess.run(['nvidia-smi'], "
                   "capture_output=True, text=True).stdout)")  # fmt: skip
    squatters = ["training-1", "training-2"]  # another workload holds both GPUs
    for name in squatters:
        kube.emulator.call(kube.cluster.squat("gpu-1", 1, name=name))

    def free(name: str) -> None:
        kube.emulator.call(kube.emulator.store.remove("pods", "default", name))

    try:
        first = jobs.submit("alice", "gpu.ipynb", image="lab", gpu="auto", count=1)
        second = jobs.submit("alice", "gpu.ipynb", image="lab", gpu="auto", count=1)
        time.sleep(2)  # a few rounds of the queue
        for job, position in ((first, 1), (second, 2)):
            queued = jobs.call("alice", "GET", f"/jobs/{job['id']}").json()
            assert queued["state"] == "queued", queued
            assert queued["queue_position"] == position, queued
            assert queued["reason"] == "waiting for 1 free GPU"
            assert kube.get("jobs", f"tkhub-job-{job['id']}") is None  # nothing created yet

        free(squatters[0])  # one GPU frees: the first job takes it, the second waits
        jobs.wait("alice", first["id"], states=("running",))
        waiting = jobs.call("alice", "GET", f"/jobs/{second['id']}").json()
        assert waiting["state"] == "queued" and waiting["queue_position"] == 1, waiting
        done = jobs.wait("alice", first["id"])
        assert done["state"] == "succeeded", done
        assert done["gpus"] == ["nvidia.com/gpu x 1"]
        output = (jobs.notebooks("alice") / f"gpu.run-{first['id']}.ipynb").read_text()
        assert "GPU 0: NVIDIA H100" in output  # the node's (faked) driver, seen from the pod
    finally:
        for name in squatters:
            free(name)
    done = jobs.wait("alice", second["id"])
    assert done["state"] == "succeeded", done  # never started onto GPUs it could not get


def test_cancel_deletes_the_job_and_its_pod(jobs: Jobs, kube: Kube):
    write_notebook(jobs.notebooks("alice"), "long.ipynb", "import time\ntime.sleep(120)")
    job = jobs.submit("alice", "long.ipynb", image="lab", gpu="none")
    jobs.wait("alice", job["id"], states=("running",))
    name = f"tkhub-job-{job['id']}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # until its pod runs the notebook
        pods = [p for p in kube.emulator.store.list("pods", NAMESPACE)
                if p["metadata"]["labels"].get("job-name") == name]  # fmt: skip
        if pods and pods[0]["status"].get("phase") == "Running":
            break
        time.sleep(0.2)
    assert jobs.call("alice", "POST", f"/jobs/{job['id']}/cancel").status_code == 202
    done = jobs.wait("alice", job["id"], timeout=60)
    assert done["state"] == "cancelled", done
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        left = [p for p in kube.emulator.store.list("pods", NAMESPACE)
                if p["metadata"]["labels"].get("job-name") == name]  # fmt: skip
        if kube.get("jobs", name) is None and not left:
            break
        time.sleep(0.2)
    assert kube.get("jobs", name) is None and not left


def server_pod(kube: Kube, user: str, timeout: float = 90) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for pod in kube.emulator.store.list("pods", NAMESPACE):
            labels = pod["metadata"].get("labels", {})
            running = (pod.get("status") or {}).get("phase") == "Running"
            if labels.get("component") == "singleuser-server" and running and \
                    labels.get("hub.jupyter.org/username") == user:  # fmt: skip
                return dict(pod)
        time.sleep(0.2)
    raise AssertionError(f"no running server pod for {user}")


def test_tkhub_jobs_works_in_a_server_terminal(jobs: Jobs, kube: Kube):
    """The user's image has no tkhub: the server's init container stages the client as
    ``tkhub``, which runs a job with the server's own token."""
    admin = {"Authorization": f"token {jobs.hub.tokens['admin']}"}
    spawned = httpx.post(f"{jobs.hub.api_url}/users/alice/server", headers=admin,
                         json={"image": "lab", "gpu": "none"}, timeout=90)  # fmt: skip
    assert spawned.status_code in (201, 202), spawned.text
    try:
        pod = server_pod(kube, "alice")
        name = pod["metadata"]["name"]
        mounts = pod["spec"]["containers"][0]["volumeMounts"]
        assert {"name": "tkhub-tools", "mountPath": "/usr/local/bin/tkhub", "subPath": "tkhub",
                "readOnly": True} in mounts  # fmt: skip
        variables = {e["name"]: e.get("value") for e in pod["spec"]["containers"][0]["env"]}
        pod_dir = kube.root / "pods" / NAMESPACE / name
        client = pod_dir / "volumes" / "tkhub-tools" / "tkhub"  # what /usr/local/bin/tkhub is
        home = pod_dir / "home"
        folder = home / "thinkube" / "notebooks"  # where a terminal opens
        write_notebook(jobs.notebooks("alice"), "term/run.ipynb",
                       "print('from the terminal', lr)", parameters="lr = 1.0")  # fmt: skip
        terminal = {"HOME": str(home), "PATH": f"{VENV_BIN}:/usr/bin:/bin",
                    "TKHUB_JOBS_URL": variables["TKHUB_JOBS_URL"],
                    "JUPYTERHUB_API_TOKEN": variables["JUPYTERHUB_API_TOKEN"]}  # fmt: skip

        def tkhub(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run([str(client), *args], env=terminal, text=True, timeout=60,
                                  capture_output=True, cwd=folder)  # fmt: skip

        ran = tkhub("jobs", "run", "term/run.ipynb", "--env", "lab", "--gpu", "none",
                    "-p", "lr=0.25")  # fmt: skip
        assert ran.returncode == 0, ran.stderr
        first = ran.stdout.splitlines()[0]
        assert first.startswith("Job ") and "term/run.ipynb in lab on CPU only" in first
        job_id = int(first.split()[1])
        assert jobs.wait("alice", job_id)["state"] == "succeeded"
        output = (jobs.notebooks("alice") / f"term/run.run-{job_id}.ipynb").read_text()
        assert "from the terminal 0.25" in output
        listed = tkhub("jobs", "list")
        assert f"Job {job_id} succeeded" in listed.stdout, listed.stdout
        missing = tkhub("jobs", "show", "99999")
        assert missing.returncode == 1 and "job 99999 does not exist (HTTP 404)" in missing.stderr
        assert "Traceback" not in missing.stderr
    finally:
        httpx.delete(f"{jobs.hub.api_url}/users/alice/server", headers=admin, timeout=60)
