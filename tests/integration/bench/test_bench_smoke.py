"""Every benchmark in bench/ runs at its smallest size: it completes, prints its ratio
line, and each case ends with the message it is meant to measure (a benchmark that
times a 500 measures nothing). The figures themselves are not judged here: these
machines are shared; docs/benchmarks.md records runs made by hand."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[3] / "bench"
RATIO = re.compile(r"^ratio\b|answers [\d.]+x sooner", re.IGNORECASE | re.MULTILINE)


def run_bench(script: str, *args: str, timeout: float = 600) -> str:
    """Run one benchmark as a user would; its whole output, or a failure showing it."""
    proc = subprocess.run(
        [sys.executable, str(BENCH / script), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "COLUMNS": "200"},  # rich: one line per result line
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"{script} exited {proc.returncode}:\n{output[-6000:]}"
    assert "Internal Server Error" not in output, output[-6000:]
    return output


def ratio_lines(output: str) -> list[str]:
    lines = [line for line in output.splitlines() if RATIO.search(line)]
    assert lines, f"no ratio line in:\n{output[-4000:]}"
    return lines


def test_inventory():
    output = run_bench("inventory.py")
    assert "100 nodes, 5000 pods" in output
    assert re.search(r"ratio inventory/json.loads \(median\): [\d.]+x", output)


def test_catalog_api():
    output = run_bench(
        "catalog_api.py", "--generator", "python", "--requests", "60", "--clients", "4"
    )
    (line,) = ratio_lines(output)
    assert re.search(r"cached/uncached \(req/s\): [\d.]+x", line)
    for variant in ("uncached", "cached", "cached-gzip", "cached-304"):
        assert re.search(rf"^{variant}\s+[\d.]+ req/s .* errors 0$", output, re.M), output


def test_spawn_page():
    output = run_bench("spawn_page.py", "--runs", "3")
    assert ratio_lines(output)


def test_spawn():
    """tkhub up and a bare hub, one user each: both spawns end ready, both hubs stop."""
    output = run_bench("spawn.py", "--runs", "1", "--settle", "0", timeout=900)
    assert re.search(r"ratio tkhub/bare.*[\d.]+x", output, re.IGNORECASE), output[-4000:]
    assert re.search(r"stop with no server running.*tkhub [\d.]+ s, bare [\d.]+ s", output)


def test_signin():
    """Both hubs sign every user in; the probe's latencies are printed for both."""
    output = run_bench("signin.py", "--users", "3", "--rounds", "1")
    (line,) = ratio_lines(output)
    assert re.search(r"p50 [\d.]+x, p95 [\d.]+x", line), output
    for variant in ("on-loop", "in-thread"):
        assert re.search(rf"^{variant}\s+signing .* sign-ins 3/3$", output, re.M), output


def test_kube_failfast():
    """Each case ends with its own reason, for both spawners (the bad-image case once
    measured an "Internal Server Error" after another benchmark had run). Stock's
    start_timeout stays above the hub's 10 s slow_spawn_timeout, as JupyterHub's
    default does, so its timeout reaches the progress stream as in a real hub."""
    output = run_bench("kube_failfast.py", "--rounds", "1", "--stock-start-timeout", "12")
    rows = {
        (m["case"], m["spawner"]): m["message"]
        for m in re.finditer(
            r"^(?P<case>bad image|no GPU free|CPU shortage)\s+"
            r"(?P<spawner>TkKubeSpawner|KubeSpawner)"
            r"\s+[\d.]+\s+(?P<message>.*)$",
            output,
            re.M,
        )
    }
    assert len(rows) == 6, output
    assert "could not be pulled" in rows[("bad image", "TkKubeSpawner")]
    assert "gpu-l4" in rows[("no GPU free", "TkKubeSpawner")]
    assert "FailedScheduling" in rows[("CPU shortage", "TkKubeSpawner")]
    for case in ("bad image", "no GPU free", "CPU shortage"):
        # stock waits out start_timeout; JupyterHub words its TimeoutError so
        assert rows[(case, "KubeSpawner")].startswith("Spawn failed"), rows
    assert len(ratio_lines(output)) == 3


def test_kube_inventory():
    output = run_bench("kube_inventory.py", "--nodes", "5", "--runs", "3")
    assert "11 nodes in the API (9 with GPUs), 5 GPU pods" in output, output
    assert re.search(r"ratio read_inventory/LIST alone \(median\): [\d.]+x", output), output


@pytest.mark.registry
def test_registry_sync(tmp_path):
    output = run_bench(
        "registry_sync.py", "--repos", "2", "--tags", "2", "--repeat", "1",
        "--cache", str(tmp_path / "cache"), timeout=900,
    )  # fmt: skip
    assert re.search(r"ratio, skopeo loop / first sync \(per image\):\s+[\d.]+x", output), output


def test_gpu_spawn():
    """Where NVML finds no GPU the benchmark says so and stops; on a GPU, one round."""
    output = run_bench("gpu_spawn.py", "1", timeout=900)
    if output.startswith("skipped:"):
        assert "needs an NVIDIA GPU" in output or "NVML lists no GPU" in output
    else:
        assert re.search(r"ratio GPU/CPU: [\d.]+x", output), output


def test_env_create():
    """The small test definition, cold and warm caches: both tools build it."""
    tiny = BENCH.parent / "tests" / "integration" / "environments" / "definitions" / "tiny"
    output = run_bench("env_create.py", "--definition", str(tiny), timeout=900)
    assert len(ratio_lines(output)) == 2
    assert re.search(r"warm cache: [\d.]+x; goal >= 5x", output), output


def test_examples():
    output = run_bench("examples.py", "--files", "5", "--notebooks", "5", "--runs", "3")
    assert re.search(r"delivery of 6 files: first \d+ ms", output), output
    assert re.search(r"sync of 5 notebooks: .* no change median \d+ ms", output), output
    assert len(ratio_lines(output)) == 2


def test_jobs():
    output = run_bench("jobs.py", "--runs", "1", timeout=600)
    assert re.search(r"run 1 job +first cell +[\d.]+ s", output), output
    assert re.search(r"run 1 papermill +first cell +[\d.]+ s", output), output
    assert len(ratio_lines(output)) == 1
