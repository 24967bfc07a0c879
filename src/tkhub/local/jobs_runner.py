"""Jobs on this machine: a process per job, as the user, with the server's layout.

GPUs come from the ledger servers use (key ``job:<id>``), so a job and a server never
share an exclusive GPU; a job whose GPU is busy waits. The run is started in a session
of its own and is found again by pid and start time after the service restarts; its
result file (written by ``tkhub.jobs.execute`` as the user) says how it ended.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import pwd
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import psutil
from jupyterhub.spawner import set_user_setuid

from tkhub.errors import SpawnRefused
from tkhub.gpu.model import Inventory
from tkhub.jobs.models import Job
from tkhub.jobs.paths import read_tail
from tkhub.jobs.runner import Outcome, Runner, Started, Waiting, outcome_from_result, waiting_for
from tkhub.layout import UserLayout
from tkhub.local.accounts import (
    SHARED_GROUP,
    AccountError,
    running_as_root,
    system_account_name,
)
from tkhub.local.gpu_env import gpu_environment
from tkhub.local.homes import prepare_home
from tkhub.local.inventory import local_inventory
from tkhub.local.ledger import ledger_for
from tkhub.local.processes import is_same_process, start_time
from tkhub.selection import Selection
from tkhub.services import secret_values, services_for
from tkhub.settings import Settings

log = logging.getLogger(__name__)
MAX_RESULT_BYTES = 256 * 1024
STOP_GRACE_SECONDS = 5.0


def job_key(job_id: int) -> str:
    """The ledger's name for a job's GPUs (servers are ``user/server``)."""
    return f"job:{job_id}"


class LocalRunner(Runner):
    def __init__(self, settings: Settings, shared_group: str = SHARED_GROUP) -> None:
        self.settings = settings
        self.shared_group = shared_group
        self.ledger = ledger_for(settings)
        self.as_system_users = running_as_root()
        self._children: dict[int, subprocess.Popen[bytes]] = {}

    async def inventory(self) -> Inventory:
        return await asyncio.to_thread(local_inventory)

    def layout(self, user: str) -> UserLayout:
        return UserLayout.for_user(self.settings.users_dir, self.settings.shared_dir, user)

    def notebooks_dir(self, user: str) -> Path:
        return self.layout(user).notebooks

    def job_dir(self, job_id: int) -> Path:
        return self.settings.data_dir / "jobs" / str(job_id)

    def unusable(self, selection: Selection) -> str | None:
        entry = selection.image
        if entry.kind != "local" or not entry.python:
            return (f"image: {entry.title} is a container image, which runs on a Kubernetes "
                    "cluster; on this machine choose a Python environment")  # fmt: skip
        if not Path(entry.python).exists():
            return f"image: {entry.title}'s Python {entry.python} is missing on this machine"
        return None

    async def start(self, job: Job, selection: Selection, groups: list[str]) -> Started | Waiting:
        try:
            devices = self.ledger.allocate(
                job_key(job.id), selection.placement, await self.inventory()
            )
        except SpawnRefused:
            return Waiting(waiting_for(selection.placement))
        try:
            pid, created = await asyncio.to_thread(self._launch, job, selection, devices, groups)
        except Exception:
            self.ledger.release(job_key(job.id))
            raise
        if created is not None:
            self.ledger.bind(job_key(job.id), pid, created)
        return Started([d.uuid for d in devices], {"pid": pid, "created": created})

    def _account(self, user: str) -> tuple[str, int | None, int | None]:
        layout = self.layout(user)
        name = system_account_name(user, self.settings.account_prefix)
        try:
            account = prepare_home(self.settings.data_dir, layout, name, self.shared_group,
                                   self.as_system_users)  # fmt: skip
        except AccountError as e:
            raise RuntimeError(f"the account of {user} could not be set up: {e}") from e
        if account is None:
            return os.environ.get("USER", "root"), None, None
        return name, account.uid, account.gid

    def _environment(
        self, job: Job, python: Path, devices: Any, groups: list[str], account: str
    ) -> dict[str, str]:
        layout = self.layout(job.user)
        env = {
            "HOME": str(layout.home), "USER": account, "SHELL": "/bin/bash", "LANG": "C.UTF-8",
            "PATH": f"{python.parent}:/usr/local/bin:/usr/bin:/bin",
            "TKHUB_ENVIRONMENT": job.environment, "TKHUB_JOB_ID": str(job.id),
        }  # fmt: skip
        for service in services_for(self.settings.services, groups):
            env.update(service.env)
            env.update(secret_values(service, lambda why: log.warning("job %s: %s", job.id, why)))
        env.update(gpu_environment(devices))
        return env

    def _launch(
        self, job: Job, selection: Selection, devices: Any, groups: list[str]
    ) -> tuple[int, float | None]:
        account, uid, gid = self._account(job.user)
        notebooks = self.notebooks_dir(job.user)
        work = self.job_dir(job.id)
        work.mkdir(parents=True, exist_ok=True)
        work.parent.chmod(0o711)
        python = Path(str(selection.image.python))
        cwd = str((notebooks / job.notebook).parent)
        spec: dict[str, Any] = {
            "job": job.id, "python": str(python), "parameters": job.parameters,
            "input": str(notebooks / job.notebook), "output": str(notebooks / job.output),
            "log": str(notebooks / job.log), "cwd": cwd,
            "result": str(work / "result.json"),
        }  # fmt: skip
        (work / "spec.json").write_text(json.dumps(spec))
        work.chmod(0o700)
        if uid is not None and gid is not None:
            for path in (work, work / "spec.json"):
                os.chown(path, uid, gid)
        proc = subprocess.Popen(
            [sys.executable, "-m", "tkhub.jobs.execute", str(work / "spec.json")],
            cwd=cwd, env=self._environment(job, python, devices, groups, account),
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True,  # a cancel stops its whole tree; the service may restart
            preexec_fn=set_user_setuid(account) if uid is not None else None,
        )  # fmt: skip
        self._children[proc.pid] = proc
        return proc.pid, start_time(proc.pid)

    def _running(self, job: Job) -> psutil.Process | None:
        """The job's process if it still runs (the same process: pid and start time)."""
        pid, created = int(job.runner_ref.get("pid") or 0), job.runner_ref.get("created")
        child = self._children.get(pid)
        if child is not None:
            if child.poll() is None:
                return psutil.Process(pid)
            del self._children[pid]
            return None
        if created is None or not is_same_process(pid, created):
            return None
        try:
            return psutil.Process(pid)
        except psutil.Error:
            return None

    async def poll(self, job: Job) -> Outcome | None:
        if self._running(job) is not None:
            return None
        outcome = self._read_result(job)
        self._clean_up(job)
        return outcome

    def _read_result(self, job: Job) -> Outcome:
        path = self.job_dir(job.id) / "result.json"
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)  # the user owns the folder
            with os.fdopen(fd, "rb") as f:
                return outcome_from_result(json.loads(f.read(MAX_RESULT_BYTES)))
        except (OSError, ValueError):
            return outcome_from_result(None)

    async def stop(self, job: Job) -> None:
        proc = self._running(job)
        if proc is not None:
            await asyncio.to_thread(_terminate_tree, proc)
            child = self._children.pop(proc.pid, None)
            if child is not None:
                child.poll()
        self._clean_up(job)

    def read_log(self, job: Job, limit: int) -> str:
        owner = None
        if self.as_system_users:  # a user-owned log, or nothing (-1 matches no file)
            uid = _uid(system_account_name(job.user, self.settings.account_prefix))
            owner = -1 if uid is None else uid
        return read_tail(self.notebooks_dir(job.user), job.log, limit, owner)

    def _clean_up(self, job: Job) -> None:
        self.ledger.release(job_key(job.id))
        shutil.rmtree(self.job_dir(job.id), ignore_errors=True)


def _uid(account: str) -> int | None:
    try:
        return pwd.getpwnam(account).pw_uid
    except KeyError:
        return None


def _terminate_tree(proc: psutil.Process) -> None:
    """SIGTERM to the run and everything under it (the kernel runs in a session of its
    own), then SIGKILL to whatever is left after the grace period."""
    try:
        tree = [proc, *proc.children(recursive=True)]
    except psutil.NoSuchProcess:
        return
    for each in tree:
        try:
            each.terminate()
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(tree, timeout=STOP_GRACE_SECONDS)
    for each in alive:
        try:
            each.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(alive, timeout=STOP_GRACE_SECONDS)
