"""A real MLflow tracking server for the services tests, from PyPI, made once.

``mlflow_env``: a uv environment with mlflow (server and client) and the hub's
JupyterHub, so a hub can also serve it as a local environment. ``start_mlflow``: its
server on 127.0.0.1 with a SQLite backend, stopped by the caller.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import jupyterhub
import pytest
from hubproc import wait_for

UV = str(Path(sys.executable).parent / "uv")


@pytest.fixture(scope="session")
def mlflow_env() -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(dir="/tmp", prefix="tkhub-mlflow-"))
    root.chmod(0o755)  # users' accounts run its python
    env = root / "env"
    subprocess.run([UV, "venv", "-q", "--python", "/usr/bin/python3", str(env)], check=True)
    subprocess.run(
        [UV, "pip", "install", "-q", "--python", str(env / "bin" / "python"),
         "mlflow>=3,<4", f"jupyterhub=={jupyterhub.__version__}", "jupyterlab", "ipykernel"],
        check=True,
    )  # fmt: skip
    yield env / "bin"
    shutil.rmtree(root, ignore_errors=True)


def start_mlflow(bin_dir: Path, data: Path, port: int) -> subprocess.Popen[bytes]:
    data.mkdir()
    log = open(data / "mlflow.log", "wb")  # noqa: SIM115 (open for the process's life)
    proc = subprocess.Popen(
        [str(bin_dir / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port),
         "--backend-store-uri", f"sqlite:///{data / 'mlflow.db'}",
         "--artifacts-destination", str(data / "artifacts")],
        stdout=log, stderr=subprocess.STDOUT, cwd=data, start_new_session=True,
    )  # fmt: skip
    wait_for(f"http://127.0.0.1:{port}/health", proc, data / "mlflow.log", timeout=180)
    return proc
