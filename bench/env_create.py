"""Creating a local environment from a definition's lock: ``tkhub env create``'s build
(uv) versus ``python -m venv`` + ``pip install -r`` of the same lock, same run.

    .venv/bin/python bench/env_create.py [--definition scipy] [--runs 1]

Both use the system Python (/usr/bin/python3), as servers need. "cold" starts each
tool with an empty package cache of its own (a new directory), "warm" reuses the
cache the cold run filled. tkhub's time is shown to the end of the install and with
its check (jupyterhub-singleuser, the key imports, a Jupyter server answering);
the baseline does no check. Goal: >= 5x faster warm (install to install).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tkhub.environments import resolve
from tkhub.local.env_create import create_environment, system_python


def tkhub_create(definition: str, root: Path, cache: Path) -> tuple[float, float]:
    """(seconds to the end of the install, seconds with the check)."""
    os.environ["UV_CACHE_DIR"] = str(cache)
    chosen, known = resolve(definition)
    marks: dict[str, float] = {}

    def progress(line: str) -> None:
        if line.startswith("check:"):
            marks.setdefault("installed", time.perf_counter())

    started = time.perf_counter()
    create_environment(chosen, known, root, progress)
    done = time.perf_counter()
    return marks.get("installed", done) - started, done - started


def pip_create(definition: str, root: Path, cache: Path) -> float:
    chosen, _ = resolve(definition)
    started = time.perf_counter()
    subprocess.run([system_python(), "-m", "venv", str(root)], check=True)
    subprocess.run(
        [str(root / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check",
         "--cache-dir", str(cache), "-r", str(chosen.lock)],
        check=True,
    )  # fmt: skip
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--definition", default="scipy", help="curated name or directory")
    parser.add_argument("--runs", type=int, default=1, help="warm runs per tool")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(dir="/tmp", prefix="tkhub-bench-env-"))
    try:
        uv_cache, pip_cache = work / "uv-cache", work / "pip-cache"
        times: dict[str, list[float]] = {}
        for phase in ["cold"] + ["warm"] * args.runs:
            n = len(times.get(f"pip {phase}", []))
            install, checked = tkhub_create(args.definition, work / f"tk-{phase}-{n}", uv_cache)
            times.setdefault(f"tkhub {phase}", []).append(install)
            times.setdefault(f"tkhub {phase} + check", []).append(checked)
            pip = pip_create(args.definition, work / f"pip-{phase}-{n}", pip_cache)
            times.setdefault(f"pip {phase}", []).append(pip)
            print(f"{phase}: tkhub {install:6.1f} s ({checked:.1f} s with its check), "
                  f"venv + pip {pip:6.1f} s", flush=True)  # fmt: skip
        load = " ".join(f"{x:.2f}" for x in os.getloadavg())
        print(f"{args.definition}, {os.cpu_count()} CPUs, load average {load}")
        for name, values in times.items():
            print(f"  {name:24} median {statistics.median(values):7.1f} s")
        for phase in ("cold", "warm"):
            ratio = statistics.median(times[f"pip {phase}"]) / statistics.median(
                times[f"tkhub {phase}"]
            )
            print(f"ratio venv+pip / tkhub env create, {phase} cache: {ratio:.1f}x"
                  + ("; goal >= 5x" if phase == "warm" else ""))  # fmt: skip
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
