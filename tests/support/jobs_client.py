"""The jobs service as a test reaches it: through the hub's proxy, with a user's token,
and notebooks written into a user's notebooks folder as that user's files."""

from __future__ import annotations

import os
import pwd
import time
from pathlib import Path
from typing import Any

import httpx
import nbformat
from hubproc import account_of

FINISHED = ("succeeded", "failed", "cancelled")


def jobs_api(hub: Any, token: str, method: str, path: str, **kw: Any) -> httpx.Response:
    url = f"{hub.url}/services/jobs/api/v1{path}"
    return httpx.request(method, url, headers={"Authorization": f"token {token}"},
                         timeout=60, **kw)  # fmt: skip


def notebooks_of(hub: Any, user: str) -> Path:
    return hub.data_dir / "users" / user / "thinkube" / "notebooks"


def place_notebook(hub: Any, user: str, name: str, source: Path) -> Path:
    """A copy of ``source`` in the user's notebooks, theirs, as an example delivery makes."""
    path = notebooks_of(hub, user) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(source.read_bytes())
    _give(path, user)
    return path


def _give(path: Path, user: str) -> None:
    account = pwd.getpwnam(account_of(user))
    os.chown(path, account.pw_uid, account.pw_gid)
    os.chown(path.parent, account.pw_uid, account.pw_gid)


def write_notebook(hub: Any, user: str, name: str, *cells: str, parameters: str = "") -> Path:
    """A notebook of ``cells`` (the first tagged ``parameters`` when given), owned by the
    user's account, as if they had saved it in JupyterLab."""
    path = notebooks_of(hub, user) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook_of(*cells, parameters=parameters), path)
    _give(path, user)
    return path


def notebook_of(*cells: str, parameters: str = "") -> Any:
    """A notebook of code ``cells``, after one tagged ``parameters`` when given."""
    notebook = nbformat.v4.new_notebook()
    if parameters:
        cell = nbformat.v4.new_code_cell(parameters)
        cell.metadata["tags"] = ["parameters"]
        notebook.cells.append(cell)
    notebook.cells += [nbformat.v4.new_code_cell(code) for code in cells]
    return notebook


def submit(hub: Any, token: str, notebook: str, **body: Any) -> dict[str, Any]:
    body = {"notebook": notebook, "image": "here", **body}
    response = jobs_api(hub, token, "POST", "/jobs", json=body)
    assert response.status_code == 201, response.text
    job: dict[str, Any] = response.json()
    return job


def wait_job(
    hub: Any, token: str, job_id: int, states: tuple[str, ...] = FINISHED, timeout: float = 180
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    job: dict[str, Any] = {}
    while time.monotonic() < deadline:
        response = jobs_api(hub, token, "GET", f"/jobs/{job_id}")
        if response.status_code == 200:
            job = response.json()
            if job["state"] in states:
                return job
        time.sleep(0.3)
    said = hub.printed()[-3000:]
    raise AssertionError(f"job {job_id} not {states} in {timeout} s: {job}\n{said}")


def wait_file(path: Path, timeout: float = 120) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().strip():
            return path.read_text().strip()
        time.sleep(0.2)
    raise AssertionError(f"{path} was not written in {timeout} s")
