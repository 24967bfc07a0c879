"""Checks on a Python environment before it is offered as a ``kind: local`` entry.

A server runs ``jupyterhub-singleuser`` from the entry's interpreter, so the
interpreter must exist, run, and carry jupyterhub of the same major version as
the hub (the single-user server and the hub speak one API version).
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import jupyterhub

_PROBE = (
    "import json, shutil, sys, os\n"
    "import jupyterhub\n"
    "from jupyterhub import singleuser\n"
    "exe = os.path.join(os.path.dirname(sys.executable), 'jupyterhub-singleuser')\n"
    "print(json.dumps({'python': sys.version.split()[0], 'jupyterhub': jupyterhub.__version__,"
    " 'singleuser': exe if os.path.exists(exe) else shutil.which('jupyterhub-singleuser')}))\n"
)


class EnvironmentCheckError(EnvironmentError):
    """The interpreter cannot serve as a local environment; ``str()`` says why."""


@dataclass(frozen=True)
class EnvironmentInfo:
    python: str
    python_version: str
    jupyterhub_version: str
    singleuser: str | None


def _major(version: str) -> str:
    return version.split(".", 1)[0]


def check_local_environment(python: str, *, timeout: float = 20.0) -> EnvironmentInfo:
    """Run ``python`` once and check its jupyterhub; raise EnvironmentCheckError."""
    path = Path(python)
    if not path.is_absolute():
        raise EnvironmentCheckError(f"python: {python!r} is not an absolute path")
    if not path.is_file() or not os.access(path, os.X_OK):
        raise EnvironmentCheckError(f"python: {python} does not exist or is not executable")
    try:
        done = subprocess.run(
            [str(path), "-c", _PROBE], capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as e:
        raise EnvironmentCheckError(f"python: {python} did not answer within {timeout:g} s") from e
    except OSError as e:
        raise EnvironmentCheckError(f"python: {python} cannot be run ({e.strerror})") from e
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise EnvironmentCheckError(
            f"python: {python} has no usable jupyterhub-singleuser ({last}); "
            f"install jupyterhub=={_major(jupyterhub.__version__)}.* in it"
        )

    info = json.loads(done.stdout.strip().splitlines()[-1])
    if _major(info["jupyterhub"]) != _major(jupyterhub.__version__):
        raise EnvironmentCheckError(
            f"python: {python} has jupyterhub {info['jupyterhub']}, the hub runs "
            f"{jupyterhub.__version__}; the major versions must match"
        )
    return EnvironmentInfo(str(path), info["python"], info["jupyterhub"], info["singleuser"])
