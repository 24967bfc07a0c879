"""``tkhub env create``: a definition's lock built into a Python environment on this
machine, checked, then moved into place.

Each build lives in its own directory, ``<envs>/<name>/<content hash>/``, built under
a temporary name beside it and renamed only once the check passes, so an interrupted
or failed create leaves nothing behind and nothing registered. A server already
running keeps the tree it started from: older builds are removed only when no
process runs from them. ``<envs>`` is ``/opt/tkhub/envs`` as root (every server
account can reach it), ``<data dir>/envs`` otherwise.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tkhub.environments.checks import PROBE, CheckFailed, Facts, judge, probe_request
from tkhub.environments.definition import Definition, content_hash
from tkhub.environments.locks import uv_binary
from tkhub.environments.steps import StepFailed, run_step
from tkhub.settings import Settings

SYSTEM_ENVS = Path("/opt/tkhub/envs")
PROBE_TIMEOUT = 180.0

Progress = Callable[[str], None]


class EnvCreateError(RuntimeError):
    """The environment was not created; ``str()`` says at which step and why."""


@dataclass(frozen=True)
class Created:
    python: Path
    facts: Facts
    unchanged: bool


def envs_root(settings: Settings) -> Path:
    if settings.envs_dir is not None:
        return settings.envs_dir
    return SYSTEM_ENVS if os.geteuid() == 0 else settings.data_dir / "envs"


def system_python() -> str:
    """The interpreter environments are made from: one every account can execute
    (Debian's /usr/bin/python3), never a build under a private home."""
    for candidate in (os.environ.get("TKHUB_PYTHON"), "/usr/bin/python3"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise EnvCreateError("no system Python: install python3 (/usr/bin/python3)")


def _run(step: str, cmd: list[str], progress: Progress, timeout: float) -> str:
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never", "UV_NO_PROGRESS": "1"}
    try:
        return run_step(step, cmd, progress, env=env, timeout=timeout)
    except StepFailed as e:
        raise EnvCreateError(str(e)) from e


def check(python: Path, definition: Definition) -> Facts:
    """The probe run with ``python``; CheckFailed says why it may not be offered."""
    try:
        done = subprocess.run(
            [str(python), str(PROBE), probe_request(definition)],
            capture_output=True, text=True, timeout=PROBE_TIMEOUT, cwd="/", check=False,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        raise CheckFailed(f"the check did not finish within {PROBE_TIMEOUT:g} s") from None
    return judge(done.stdout, definition, errors=done.stderr)


def in_use(tree: Path) -> bool:
    """Whether a process runs from ``tree`` (its command line names a file in it)."""
    marker = str(tree).encode() + b"/"
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if marker in (proc / "cmdline").read_bytes():
                    return True
            except OSError:
                continue
    return False


def prune(env_dir: Path, keep: Path | None, progress: Progress) -> None:
    """Remove the builds of ``env_dir`` other than ``keep`` that no process runs from."""
    if not env_dir.is_dir():
        return
    for build in env_dir.iterdir():
        if build == keep or build.name.startswith("."):
            continue
        if in_use(build):
            progress(f"kept {build}: a server still runs from it")
        else:
            shutil.rmtree(build, ignore_errors=True)


def create_environment(
    definition: Definition,
    known: dict[str, Definition],
    root: Path,
    progress: Progress,
    *,
    timeout: float = 3600,
) -> Created:
    """Build, check and place the environment; the interpreter to register."""
    env_dir = root / definition.name
    final = env_dir / content_hash(definition, known)
    if (final / "bin" / "python").exists():
        progress(f"{final} is up to date; checking it")
        return Created(final / "bin" / "python", check(final / "bin" / "python", definition), True)
    root.mkdir(parents=True, exist_ok=True, mode=0o755)
    env_dir.mkdir(exist_ok=True, mode=0o755)
    building = env_dir / f".new-{secrets.token_hex(4)}"
    uv = uv_binary()
    try:
        _run("venv", [uv, "venv", "--relocatable", "--python", system_python(), "--seed",
                      str(building)], progress, 120)  # fmt: skip
        # install, not sync: pip stays (``%pip install`` in a notebook works)
        _run("install", [uv, "pip", "install", "--python", str(building / "bin" / "python"),
                         "-r", str(definition.lock)], progress, timeout)  # fmt: skip
        progress("check: jupyterhub-singleuser, the key packages, a Jupyter server")
        facts = check(building / "bin" / "python", definition)
        building.chmod(0o755)  # every server account reads and runs it
        building.rename(final)
    finally:
        shutil.rmtree(building, ignore_errors=True)
    return Created(final / "bin" / "python", facts, False)
