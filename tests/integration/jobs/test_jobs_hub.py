"""Notebooks run as jobs through ``tkhub up``: the hub's managed jobs service, papermill
as the user's account, its REST API through the hub's proxy with users' own tokens."""

from __future__ import annotations

import json
import shutil
import signal
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import nbformat
import psutil
import pytest
from hubproc import remove_test_account
from jobs_client import jobs_api, notebooks_of, submit, wait_file, wait_job, write_notebook
from kernels import run_in_kernel

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "local"))
from local_hub import LocalHub, running_tkhub_up, signed_in_token, tkhub  # noqa: E402

ENVIRONMENT = {"name": "here", "kind": "local", "python": sys.executable}


@dataclass
class Stack:
    hub: LocalHub
    root: Path
    tokens: dict[str, str]


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    root = Path(tempfile.mkdtemp(dir="/tmp", prefix="tkhub-jobs-"))
    root.chmod(0o755)  # users' accounts reach their homes below it
    data = root / "data"
    try:
        with running_tkhub_up(root=root, keep=True) as hub:
            assert hub.catalog("POST", "/images", json=ENVIRONMENT).status_code == 201
            tokens = {}
            for user in ("alice", "bob"):
                _, tokens[user] = signed_in_token(hub, user)
                # a first server makes the account and its home, as a user's first day does
                assert hub.spawn(user, {"image": "here"}).status_code in (201, 202)
                hub.wait_ready(user)
                hub.stop(user)
            yield Stack(hub, root, tokens)
    finally:
        for user in ("alice", "bob", "admin"):
            remove_test_account(user, data)
        shutil.rmtree(root, ignore_errors=True)


def test_a_parameterized_notebook_runs_and_its_output_carries_the_parameters(stack: Stack):
    hub, token = stack.hub, stack.tokens["alice"]
    write_notebook(hub, "alice", "train/tune.ipynb",
                   "import os\nprint(f'lr is {lr}, epochs {epochs}, as', os.environ['USER'])",
                   "open('tune-done.txt', 'w').write(str(lr * epochs))",
                   parameters="lr = 0.1\nepochs = 1")  # fmt: skip

    job = submit(hub, token, "train/tune.ipynb", parameters={"lr": 0.001, "epochs": 3})
    assert job["output"] == f"train/tune.run-{job['id']}.ipynb"
    done = wait_job(hub, token, job["id"])

    assert done["state"] == "succeeded", (done["reason"], done["error"])
    assert done["environment"] == "here" and done["placement"] == "none" and done["gpus"] == []
    assert done["duration"] > 0
    notebooks = notebooks_of(hub, "alice")
    output = nbformat.read(notebooks / done["output"], as_version=4)
    injected = [c for c in output.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert injected and "lr = 0.001" in injected[0].source and "epochs = 3" in injected[0].source
    printed = "".join(o.get("text", "") for c in output.cells for o in c.get("outputs", []))
    assert "lr is 0.001, epochs 3, as " in printed
    assert (notebooks / "train" / "tune-done.txt").read_text() == "0.003"  # cwd: its folder
    owner = (notebooks / done["output"]).stat().st_uid
    assert owner == (notebooks / "train" / "tune.ipynb").stat().st_uid  # written as alice
    log = jobs_api(hub, token, "GET", f"/jobs/{job['id']}/log")
    assert log.status_code == 200 and "lr is 0.001" in log.text, log.text


def test_the_cli_runs_a_job_for_a_user_and_lists_it(stack: Stack):
    hub = stack.hub
    write_notebook(hub, "alice", "quick.ipynb", "print('quick', x)", parameters="x = 1")
    ran = tkhub(hub, "jobs", "run", "quick.ipynb", "--user", "alice", "--env", "here",
                "-p", "x=hello")  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    job_id = int(ran.stdout.split()[1])
    assert f"Output: notebooks/quick.run-{job_id}.ipynb" in ran.stdout

    done = wait_job(hub, stack.tokens["alice"], job_id)
    assert done["state"] == "succeeded", (done["reason"], done["error"])
    listed = tkhub(hub, "jobs", "list", "--all")
    assert "quick.ipynb" in listed.stdout and "alice" in listed.stdout, listed.stdout
    shown = tkhub(hub, "jobs", "show", str(job_id))
    assert "succeeded" in shown.stdout and "duration" in shown.stdout
    assert "quick hello" in tkhub(hub, "jobs", "logs", str(job_id)).stdout

    refused = tkhub(hub, "jobs", "run", "../escape.ipynb", "--user", "alice")
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert "leads outside alice's notebooks folder (HTTP 400)" in refused.stderr + refused.stdout
    listed = tkhub(hub, "jobs", "list")  # the admin token has no jobs: every user's shown
    assert "Jobs of every user" in listed.stdout and "alice" in listed.stdout, listed.stdout
    unnamed = tkhub(hub, "jobs", "run", "quick.ipynb")
    assert unnamed.returncode == 2 and "Traceback" not in unnamed.stderr
    assert "--user NAME" in unnamed.stderr + unnamed.stdout


def test_a_cell_that_raises_fails_the_job_naming_the_cell(stack: Stack):
    hub, token = stack.hub, stack.tokens["alice"]
    write_notebook(hub, "alice", "broken.ipynb", "x = 1", "1 / 0", "print('never')")
    done = wait_job(hub, token, submit(hub, token, "broken.ipynb")["id"])
    assert done["state"] == "failed", done
    assert done["failed_cell"] == 2
    assert done["reason"] == "cell [2] raised ZeroDivisionError"
    assert done["error"] == "ZeroDivisionError: division by zero"


def test_a_killed_kernel_fails_the_job_with_the_reason(stack: Stack):
    hub, token = stack.hub, stack.tokens["alice"]
    write_notebook(
        hub,
        "alice",
        "oom.ipynb",
        "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)",
        "print('never')",
    )
    done = wait_job(hub, token, submit(hub, token, "oom.ipynb")["id"], timeout=120)
    assert done["state"] == "failed", done
    assert "the kernel died" in done["reason"], done


def test_cancel_stops_the_kernel_and_everything_the_job_started(stack: Stack):
    hub, token = stack.hub, stack.tokens["alice"]
    write_notebook(hub, "alice", "long.ipynb",
                   "import os, subprocess, time\n"
                   "child = subprocess.Popen(['sleep', '600'])\n"
                   "open('long-pids.txt', 'w').write(f'{os.getpid()} {child.pid}')",
                   "time.sleep(600)")  # fmt: skip
    job = submit(hub, token, "long.ipynb")
    pids = [int(p) for p in wait_file(notebooks_of(hub, "alice") / "long-pids.txt").split()]
    assert all(psutil.pid_exists(p) for p in pids)
    assert wait_job(hub, token, job["id"], ("running",))["state"] == "running"

    cancelled = jobs_api(hub, token, "POST", f"/jobs/{job['id']}/cancel")
    assert cancelled.status_code == 202, cancelled.text
    done = wait_job(hub, token, job["id"], timeout=60)
    assert done["state"] == "cancelled" and done["reason"] == "cancelled by alice", done
    assert not [p for p in pids if _alive(p)], "the kernel or its child survived the cancel"
    again = jobs_api(hub, token, "POST", f"/jobs/{job['id']}/cancel")
    assert again.status_code == 409 and "already ended" in again.json()["detail"]


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_users_see_and_touch_only_their_own_jobs(stack: Stack):
    hub, alice, bob = stack.hub, stack.tokens["alice"], stack.tokens["bob"]
    write_notebook(hub, "alice", "mine.ipynb", "print('alice only')")
    job = submit(hub, alice, "mine.ipynb")
    wait_job(hub, alice, job["id"])

    for method, path in (("GET", f"/jobs/{job['id']}"), ("GET", f"/jobs/{job['id']}/log"),
                         ("POST", f"/jobs/{job['id']}/cancel")):  # fmt: skip
        response = jobs_api(hub, bob, method, path)
        assert response.status_code == 404, (path, response.text)
        assert response.json()["detail"] == f"job {job['id']} does not exist"
    assert all(j["user"] == "bob" for j in jobs_api(hub, bob, "GET", "/jobs?all=true").json())
    assert jobs_api(hub, "not-a-token", "GET", "/jobs").status_code in (401, 403)


def test_a_job_cannot_name_a_notebook_outside_the_users_notebooks(stack: Stack):
    hub, token = stack.hub, stack.tokens["alice"]
    write_notebook(hub, "bob", "bobs.ipynb", "print('bob')")
    notebooks = notebooks_of(hub, "alice")
    (notebooks / "link.ipynb").unlink(missing_ok=True)
    (notebooks / "link.ipynb").symlink_to(notebooks_of(hub, "bob") / "bobs.ipynb")
    before = len(jobs_api(hub, token, "GET", "/jobs").json())
    for given, said in (
        ("../../bob/thinkube/notebooks/bobs.ipynb", "leads outside your notebooks folder"),
        (str(notebooks_of(hub, "bob") / "bobs.ipynb"), "is not in your notebooks folder"),
        ("link.ipynb", "leads outside your notebooks folder"),
        ("missing.ipynb", "missing.ipynb does not exist in your notebooks folder"),
        ("notes.txt", "is not a notebook"),
    ):
        response = jobs_api(hub, token, "POST", "/jobs", json={"notebook": given})
        assert response.status_code == 400, (given, response.text)
        assert said in response.json()["detail"], (given, response.text)
    bad = jobs_api(hub, token, "POST", "/jobs", json={"notebook": "mine.ipynb", "gpu": "warp"})
    assert bad.status_code == 400 and "gpu" in bad.json()["detail"], bad.text
    assert len(jobs_api(hub, token, "GET", "/jobs").json()) == before  # nothing was recorded


def test_tkhub_jobs_works_from_inside_the_users_server(stack: Stack):
    hub, token = stack.hub, stack.tokens["bob"]
    write_notebook(hub, "bob", "from-lab.ipynb", "print('from lab', n)", parameters="n = 0")
    assert hub.spawn("bob", {"image": "here"}).status_code in (201, 202)
    hub.wait_ready("bob")
    try:
        seen = run_in_kernel(hub, "bob", (
            "import json, os, subprocess\n"
            "os.chdir(os.path.expanduser('~/thinkube/notebooks'))\n"
            "run = subprocess.run(['tkhub', 'jobs', 'run', 'from-lab.ipynb', '--env', 'here',"
            " '-p', 'n=7'], capture_output=True, text=True)\n"
            "listed = subprocess.run(['tkhub', 'jobs', 'list'], capture_output=True, text=True)\n"
            "print(json.dumps({'run': run.stdout + run.stderr, 'rc': run.returncode,"
            " 'list': listed.stdout + listed.stderr}))"
        ), token=token)  # fmt: skip
    finally:
        hub.stop("bob")
    assert seen["rc"] == 0, seen
    job_id = int(seen["run"].split()[1])
    assert "from-lab.ipynb" in seen["list"] and "alice" not in seen["list"], seen["list"]
    done = wait_job(hub, token, job_id)
    assert done["state"] == "succeeded" and done["user"] == "bob", done


def test_the_jobs_page_signs_in_through_the_hub_and_runs_a_notebook(stack: Stack):
    hub = stack.hub
    browser = hub.sign_in("bob", "a-test-password")
    try:
        page = browser.get("/services/jobs/")
        assert page.status_code == 200, page.text[-2000:]
        text = " ".join(page.text.split())
        assert "from-lab.ipynb" in text and "mine.ipynb" not in text
        assert 'name="notebook"' in text and 'name="gpu"' in text  # the spawn page's choices
        form = {"notebook": "from-lab.ipynb", "image": "here", "gpu": "none",
                "parameters": "n=3\n", "time_limit_hours": "1"}  # fmt: skip
        stale = browser.post("/services/jobs/jobs", data={**form, "_xsrf": "forged"})
        assert stale.status_code == 403 and "reload the jobs page" in stale.text
        xsrf = browser.cookies.get("tkhub-jobs-xsrf", path="/services/jobs/")
        sent = browser.post("/services/jobs/jobs", data={**form, "_xsrf": xsrf})
        assert sent.status_code == 200, sent.text[-2000:]
        said = " ".join(sent.text.split())
        job_id = int(said.split("Job ", 1)[1].split(" submitted")[0])
        done = wait_job(hub, stack.tokens["bob"], job_id)
        assert done["state"] == "succeeded" and done["parameters"] == {"n": 3}, done
        bad = browser.post("/services/jobs/jobs", data={**form, "notebook": "../x.ipynb",
                                                        "_xsrf": xsrf})  # fmt: skip
        assert "Not started: notebook: &#39;../x.ipynb&#39; leads outside" in bad.text
    finally:
        browser.close()


def test_a_job_outlives_its_users_server_and_a_hub_restart(stack: Stack):
    hub, token = stack.hub, stack.tokens["alice"]
    write_notebook(hub, "alice", "outlive.ipynb",
                   "import time\nopen('outlive-started.txt', 'w').write('yes')",
                   "time.sleep(12)\nprint('outlived')")  # fmt: skip
    assert hub.spawn("alice", {"image": "here"}).status_code in (201, 202)
    hub.wait_ready("alice")
    job = submit(hub, token, "outlive.ipynb")
    wait_file(notebooks_of(hub, "alice") / "outlive-started.txt")
    hub.stop("alice")
    hub.proc.send_signal(signal.SIGINT)  # Ctrl-C: the hub and its services stop
    hub.proc.wait(timeout=60)
    pid = _job_process(job["id"])
    assert pid is not None, "the job died with the hub"

    with running_tkhub_up(root=stack.root, keep=True) as again:
        done = wait_job(again, token, job["id"], timeout=120)
        assert done["state"] == "succeeded", (done["reason"], done["error"])
        output = nbformat.read(notebooks_of(again, "alice") / done["output"], as_version=4)
        assert "outlived" in json.dumps(output.cells[-1].outputs)
        stack.hub = again


def _job_process(job_id: int) -> int | None:
    wanted = f"TKHUB_JOB_ID={job_id}".encode()
    for proc in psutil.process_iter(["pid", "cmdline"]):
        if "tkhub.jobs.execute" in " ".join(proc.info["cmdline"] or []):
            try:
                if wanted in Path(f"/proc/{proc.pid}/environ").read_bytes().split(b"\0"):
                    return int(proc.pid)
            except OSError:
                continue
    return None
