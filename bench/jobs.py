"""Jobs: a small notebook through the jobs service versus papermill run directly on it.

Run by hand (not a test), as root or not:

    .venv/bin/python bench/jobs.py [--runs 8]

One real ``tkhub up`` on free ports under /tmp, with this interpreter registered as
its environment "here"; a user "bench" signs in with a password and takes a token.
The notebook has three cells; the first writes the wall-clock time it ran at into a
file. Each run, in alternating order:

  job       ``POST /services/jobs/api/v1/jobs`` through the hub's proxy with the
            user's token, then ``GET .../jobs/<id>`` every 0.05 s until it has
            ended. The service starts ``python -m tkhub.jobs.execute`` as the user's
            account, which runs papermill.
  papermill ``python -m papermill IN OUT -k python3`` on a copy of the notebook, as
            the account running this script, the same interpreter as the kernel.

Measured for both: submit (or process start) to the first cell's recorded time,
and to the end (the job seen as succeeded; the papermill process exited). Goals:
median overhead of the first cell <= 1 s, median total ratio job/papermill <= 1.2.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from rich.console import Console

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "tests" / "integration" / "local"))
sys.path.insert(0, str(REPO / "tests" / "support"))

from hubproc import remove_test_account  # noqa: E402
from jobs_client import jobs_api, notebooks_of, write_notebook  # noqa: E402
from local_hub import LocalHub, running_tkhub_up, signed_in_token  # noqa: E402

POLL = 0.05
OVERHEAD_GOAL_S = 1.0
RATIO_GOAL = 1.2
USER = "bench"
console = Console(soft_wrap=True)
CELLS = (
    "import time\nopen(marker, 'w').write(repr(time.time()))",
    "total = sum(range(100_000))",
    "print('done', total)",
)


def first_cell_at(marker: Path, timeout: float = 120) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            return float(marker.read_text())
        except (OSError, ValueError):
            time.sleep(0.01)
    raise SystemExit(f"{marker} was never written")


def run_job(hub: LocalHub, token: str, run: int) -> tuple[float, float]:
    marker = notebooks_of(hub, USER) / f"job-{run}.txt"
    body = {"notebook": "small.ipynb", "image": "here", "parameters": {"marker": marker.name}}
    started = time.time()
    response = jobs_api(hub, token, "POST", "/jobs", json=body)
    if response.status_code != 201:
        raise SystemExit(f"submit: HTTP {response.status_code} {response.text}")
    job_id = response.json()["id"]
    while True:
        job = jobs_api(hub, token, "GET", f"/jobs/{job_id}").json()
        if job["state"] in ("succeeded", "failed", "cancelled"):
            break
        time.sleep(POLL)
    ended = time.time()
    if job["state"] != "succeeded":
        raise SystemExit(f"job {job_id}: {job['state']} {job['reason']} {job['error']}")
    return first_cell_at(marker) - started, ended - started


def run_papermill(work: Path, notebook: Path, run: int) -> tuple[float, float]:
    marker = work / f"papermill-{run}.txt"
    cmd = [sys.executable, "-m", "papermill", str(notebook), str(work / f"out-{run}.ipynb"),
           "-k", "python3", "--language", "python", "--cwd", str(work), "-p", "marker", marker.name,
           "--no-progress-bar"]  # fmt: skip
    started = time.time()
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"papermill exited {done.returncode}:\n{done.stderr[-3000:]}")
    ended = time.time()
    return first_cell_at(marker) - started, ended - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=8)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-jobs-"))
    root = Path(tempfile.mkdtemp(dir="/tmp", prefix="bench-jobs-hub-"))
    root.chmod(0o755)  # the user's account reaches its home below it
    results: dict[str, list[tuple[float, float]]] = {"job": [], "papermill": []}
    try:
        with running_tkhub_up(root=root, keep=True) as hub:
            entry = {"name": "here", "kind": "local", "python": sys.executable}
            if hub.catalog("POST", "/images", json=entry).status_code != 201:
                raise SystemExit("could not register the environment")
            _, token = signed_in_token(hub, USER)
            hub.spawn(USER, {"image": "here"})  # the account and its home, as a first day
            hub.wait_ready(USER)
            hub.stop(USER)
            notebook = write_notebook(hub, USER, "small.ipynb", *CELLS, parameters="marker = ''")
            local = work / "small.ipynb"
            nbformat.write(nbformat.read(notebook, as_version=4), local)
            for run in range(args.runs):
                order = ("job", "papermill") if run % 2 == 0 else ("papermill", "job")
                for name in order:
                    took = run_job(hub, token, run) if name == "job" else (
                        run_papermill(work, local, run)
                    )  # fmt: skip
                    results[name].append(took)
                    console.print(f"run {run + 1} {name:<9} first cell {took[0]:6.2f} s  "
                                  f"total {took[1]:6.2f} s")  # fmt: skip
    finally:
        remove_test_account(USER, root / "data")
        remove_test_account("admin", root / "data")
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)
    report(results)


def report(results: dict[str, list[tuple[float, float]]]) -> None:
    first = {k: statistics.median(t[0] for t in v) for k, v in results.items()}
    total = {k: statistics.median(t[1] for t in v) for k, v in results.items()}
    for name in results:
        console.print(f"{name:<9} median first cell {first[name]:.2f} s, total {total[name]:.2f} s")
    overhead = first["job"] - first["papermill"]
    ratio = total["job"] / total["papermill"]
    console.print(f"first-cell overhead of a job: {overhead:+.2f} s (goal <= {OVERHEAD_GOAL_S} s)")
    console.print(f"ratio job/papermill (total, median): {ratio:.2f}x (goal <= {RATIO_GOAL}x)")
    console.print(json.dumps({"overhead_s": round(overhead, 3), "ratio": round(ratio, 3)}))


if __name__ == "__main__":
    main()
