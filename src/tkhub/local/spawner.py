"""``LocalSpawner``: servers on this machine, from a catalog environment, on a chosen GPU.

Each server runs ``python -m jupyterhub.singleuser`` with the interpreter of the
catalog entry the user picked, rooted at ``thinkube/`` of the user's home under the
data directory (it opens in ``notebooks``; ``datasets`` and ``models`` sit beside
it), and sees only the GPUs the ledger gave it (by UUID).

When the hub runs as root, every user's server runs as the user's own system
account (``tk-<name>``, created on first spawn, as TLJH does), in a home only that
account can read; datasets and models are shared through one group. When the hub
runs as an ordinary user, every server runs as that user: there is then no
isolation between users' files, and the docs say so.
"""

from __future__ import annotations

import asyncio
import functools
import os
import pwd
import subprocess
import sys
from pathlib import Path
from typing import Any

from jupyterhub.spawner import LocalProcessSpawner, set_user_setuid
from traitlets import Bool, Integer, TraitError, Unicode, default, validate

from tkhub.environments import curated_names
from tkhub.errors import SpawnRefused
from tkhub.examples import examples_folder
from tkhub.gpu.model import Inventory
from tkhub.layout import (
    UserLayout,
    clear_scratch,
)
from tkhub.local.accounts import (
    ACCOUNT_PREFIX,
    DEFAULT_PREFIX,
    SHARED_GROUP,
    Account,
    AccountError,
    running_as_root,
    system_account_name,
    unreachable_part,
)
from tkhub.local.gpu_env import gpu_environment
from tkhub.local.homes import prepare_home
from tkhub.local.inventory import local_inventory
from tkhub.local.ledger import GpuLedger, shared_ledger
from tkhub.local.processes import is_same_process, start_time
from tkhub.selection import Selection, SpawnChoices
from tkhub.services import secret_values
from tkhub.settings import LocalService, ServiceBase
from tkhub.spawner import TkSpawnerMixin


class LocalSpawner(TkSpawnerMixin, LocalProcessSpawner):
    """A local process per server: the chosen environment, the chosen GPUs, the user's files."""

    data_dir = Unicode(
        config=True,
        help="""
        tkhub's data directory: users' homes in ``users/``, shared datasets and models
        in ``shared/``, the GPU ledger in ``state/``. Set by ``tkhub.local.hub_config.configure``.
        """,
    )

    max_servers_per_gpu = Integer(
        1,
        config=True,
        help="""
        How many servers may hold one GPU at once. 1 (the default) gives each server
        its GPUs exclusively; more lets servers share a GPU's memory and time.
        """,
    )

    run_as_system_users = Bool(
        config=True,
        help="""
        Run each user's server as the user's own system account (``tk-<name>``),
        created on first spawn. Needs the hub to run as root; on by default then.
        """,
    )

    account_prefix = Unicode(
        DEFAULT_PREFIX,
        config=True,
        help="""
        Start of every system account's name (``tk-alice``). Two installs on one
        machine need different prefixes: an account another install made is
        never taken over.
        """,
    )

    shared_group = Unicode(
        SHARED_GROUP,
        config=True,
        help="System group of all users' accounts; owns shared/datasets and shared/models.",
    )

    curated_hint = Bool(
        True,
        config=True,
        help="""
        Tell admins on the spawn page how to add the curated environments while none
        of them is in the catalog: ``c.LocalSpawner.curated_hint = False`` turns it off.
        """,
    )

    def admin_hint(self, choices: SpawnChoices) -> str:
        if not self.curated_hint or curated_names() & {e.name for e in choices.entries}:
            return ""
        return (
            "Admins: add the curated environments (SciPy, machine learning, fine-tuning, "
            "agents) that fit this machine with one command: tkhub env create --all"
        )

    @default("run_as_system_users")
    def _run_as_system_users_default(self) -> bool:
        return running_as_root()

    @validate("data_dir")
    def _valid_data_dir(self, proposal: dict[str, Any]) -> str:
        value = str(proposal["value"]).strip()
        if not value or not os.path.isabs(value):
            # "" would silently become the hub's working directory
            raise TraitError(
                f"LocalSpawner.data_dir: {value!r} is not an absolute path "
                "(set it to tkhub's data directory)"
            )
        return value

    @validate("account_prefix")
    def _valid_account_prefix(self, proposal: dict[str, Any]) -> str:
        value = str(proposal["value"])
        if not ACCOUNT_PREFIX.fullmatch(value):
            raise TraitError(
                f"LocalSpawner.account_prefix: {value!r} is not a valid start of an account "
                "name (lowercase letters, digits, '_' and '-', at most 16, not a digit first)"
            )
        return value

    @validate("max_servers_per_gpu")
    def _valid_max_servers_per_gpu(self, proposal: dict[str, Any]) -> int:
        if proposal["value"] < 1:
            raise TraitError(
                f"LocalSpawner.max_servers_per_gpu: {proposal['value']} must be at least 1"
            )
        return int(proposal["value"])

    def check_config(self) -> None:
        if not self.data_dir:
            raise TraitError("LocalSpawner.data_dir: not set; give tkhub's data directory")
        super().check_config()

    # Kept across hub restarts through get_state/load_state.
    _gpu_uuids: list[str]
    _environment_name: str = ""
    _examples_folder: str | None = None
    _examples_note: str = ""  # what the examples delivery did, for the spawn's progress
    _selection_env: dict[str, str]
    _pid_started: float | None = None  # with the pid, who the server's process is

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._gpu_uuids = []
        self._selection_env = {}

    # --- paths, accounts, ledger ---------------------------------------------------

    @property
    def layout(self) -> UserLayout:
        data = Path(self.data_dir)
        return UserLayout.for_user(data / "users", data / "shared", self.user.name)

    @property
    def account_name(self) -> str:
        if self.run_as_system_users:
            return system_account_name(self.user.name, self.account_prefix)
        return pwd.getpwuid(os.geteuid()).pw_name

    @property
    def server_key(self) -> str:
        """The ledger's name for this server: ``user/server`` (``user/`` for the default)."""
        return f"{self.user.name}/{self.name}"

    @property
    def ledger(self) -> GpuLedger:
        """The data directory's ledger, one object per hub process (its lock is shared)."""
        return shared_ledger(Path(self.data_dir) / "state", self.max_servers_per_gpu)

    def _prepare_home(self) -> Account | None:
        """The user's account (as root) and home tree; idempotent, run before each start."""
        try:
            return prepare_home(Path(self.data_dir), self.layout, self.account_name,
                                self.shared_group, self.run_as_system_users)  # fmt: skip
        except AccountError as e:
            raise SpawnRefused(
                f"Your system account could not be set up; ask your administrator ({e}).",
                log_message=str(e),
            ) from e

    def _release(self) -> None:
        self.ledger.release(self.server_key)
        self._gpu_uuids = []

    # --- the selection ------------------------------------------------------------

    async def fetch_inventory(self) -> Inventory:
        return await asyncio.to_thread(local_inventory, self.ledger)

    async def inventory_for_start(self) -> Inventory:
        # Every unit as if free: the ledger's allocate() decides, under its lock, and
        # refuses with "GPU 1 was taken by another server; choose again".
        return await asyncio.to_thread(local_inventory)

    async def apply_selection(self, selection: Selection, inventory: Inventory) -> None:
        entry = selection.image
        if entry.kind != "local" or not entry.python:
            raise SpawnRefused(
                f"{entry.title} is a container image, which runs on a Kubernetes "
                "cluster; on this machine choose a Python environment."
            )
        python = Path(entry.python)
        if not os.access(python, os.X_OK):
            raise SpawnRefused(
                f"The Python of {entry.title} ({python}) is missing on this machine; ask "
                f"your administrator to reinstall it or remove it (tkhub env remove {entry.name})."
            )
        account = await asyncio.to_thread(self._prepare_home)
        if account is not None:
            blocked = unreachable_part(python, account.uid, account.groups)
            if blocked is not None:
                raise SpawnRefused(
                    f"{entry.title} cannot be started for you: its Python {python} is not "
                    f"reachable by other accounts ({blocked} is private). Ask your "
                    "administrator to install it where all users can read it."
                )
        devices = await asyncio.to_thread(
            self.ledger.allocate, self.server_key, selection.placement, inventory
        )
        self._gpu_uuids = [d.uuid for d in devices]
        self._environment_name = entry.name
        self._examples_folder = examples_folder(entry.examples)
        # before the server starts, as the user; a failure is a note, never a refusal
        self._examples_note = await asyncio.to_thread(self._deliver_examples)
        self._selection_env = {**gpu_environment(devices), "TKHUB_ENVIRONMENT": entry.name}
        self.cmd = [str(python), "-m", "jupyterhub.singleuser"]
        self.notebook_dir = str(self.layout.root)
        self.log.info(
            "%s: environment %s (%s), GPUs %s",
            self._log_name,
            entry.name,
            python,
            ",".join(self._gpu_uuids) or "none",
        )

    # --- process: who runs it, with what environment -----------------------------------

    def make_preexec_fn(self, name: str) -> Any:
        if self.run_as_system_users:
            return set_user_setuid(self.account_name)
        return functools.partial(os.chdir, str(self.layout.home))

    def user_env(self, env: dict[str, str]) -> dict[str, str]:
        env["USER"] = self.account_name
        env["HOME"] = str(self.layout.home)
        env["SHELL"] = "/bin/bash"
        return env

    service_model = LocalService

    def secret_environment(self, service: ServiceBase) -> dict[str, Any]:
        """Each secret read from its 0600 file now (as root), so a rotated one reaches the
        next server; one that cannot be read is left out, never a failed spawn."""
        return secret_values(service, lambda why: self.log.warning("%s: %s", self._log_name, why))

    def get_env(self) -> dict[str, str]:
        env: dict[str, str] = super().get_env()
        env.update(self.service_environment())
        env.update(self._selection_env)
        # last, so the environment's own commands win: `tkhub jobs` in a terminal
        env["PATH"] = f"{env.get('PATH', '/usr/bin:/bin')}:{Path(sys.executable).parent}"
        return env

    def _deliver_examples(self) -> str:
        """Copy the environment's examples into notebooks/examples, as the user; a
        line for the spawn's progress. Never raises: a spawn never fails for it."""
        folder = self._examples_folder
        if folder is None:
            return ""
        repo = Path(self.data_dir) / "shared" / "examples-repo" / "current"
        cmd = [sys.executable, "-m", "tkhub.examples.delivery", "--repo", str(repo),
               "--folder", folder, "--notebooks", str(self.layout.notebooks)]  # fmt: skip
        preexec = set_user_setuid(self.account_name) if self.run_as_system_users else None
        try:
            done = subprocess.run(
                cmd, preexec_fn=preexec, capture_output=True, text=True, timeout=60,
                cwd="/", check=False,
            )  # fmt: skip
            said = (done.stdout.strip().splitlines() or [done.stderr.strip()[-300:]])[-1]
        except (OSError, subprocess.SubprocessError) as e:
            said = f"error: {e}"
        if said.startswith("error:") or not said:
            self.log.warning("%s: examples not delivered: %s", self._log_name, said)
            reason = said.removeprefix("error: ")
            return f"Examples could not be updated ({reason}); your server starts anyway."
        self.log.info("%s: %s", self._log_name, said)
        return said

    async def progress(self) -> Any:
        if self._examples_note:
            yield {"progress": 40, "message": self._examples_note}

    async def start(self) -> Any:
        try:
            url = await super().start()
        except BaseException:
            await asyncio.to_thread(self._release)
            raise
        pid: int = self.pid
        self._pid_started = start_time(pid)
        if self._gpu_uuids and self._pid_started is not None:  # its GPUs are its process's
            await asyncio.to_thread(self.ledger.bind, self.server_key, pid, self._pid_started)
        return url

    async def poll(self) -> int | None:
        if self.proc is None and self.pid and not is_same_process(self.pid, self._pid_started):
            # Resumed after a hub restart, and the server is gone: its pid is free or
            # another process's now, which must be neither signalled nor kept as it.
            self.log.warning("%s: its process %d is gone", self._log_name, self.pid)
            self.pid = 0
        held = bool(self._gpu_uuids)  # before the parent's poll clears the state
        status: int | None = await super().poll()
        if status is not None and held:  # died on its own: give the GPU back
            await asyncio.to_thread(self._release)
        return status

    async def stop(self, now: bool = False) -> None:
        try:
            await super().stop(now=now)
        finally:
            await asyncio.to_thread(self._release)
            await asyncio.to_thread(clear_scratch, self.layout)

    # --- state kept across hub restarts ---------------------------------------------

    def get_state(self) -> dict[str, Any]:
        state: dict[str, Any] = super().get_state()
        if self._gpu_uuids:
            state["gpus"] = list(self._gpu_uuids)
        if self._environment_name:
            state["environment"] = self._environment_name
        if self.pid and self._pid_started is not None:
            state["pid_started"] = self._pid_started
        return state

    def load_state(self, state: dict[str, Any]) -> None:
        super().load_state(state)
        self._gpu_uuids = list(state.get("gpus") or [])
        self._environment_name = str(state.get("environment") or "")
        started = state.get("pid_started")
        self._pid_started = float(started) if isinstance(started, int | float) else None

    def clear_state(self) -> None:
        super().clear_state()
        self._gpu_uuids = []
        self._environment_name = ""
        self._pid_started = None
