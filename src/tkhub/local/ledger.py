"""Which server holds which local GPU: one JSON file under a file lock.

The hub (allocating at spawn) and the catalog process (showing holders) both read
it, so every read-modify-write holds ``fcntl.flock`` on a side lock file, and a
write goes to a temp file renamed over the ledger: a reader never sees half a file.
Each call opens its own lock descriptor, so flock also excludes threads of one
process; the thread lock only keeps a shared GpuLedger from queueing on the kernel.

Each holder is bound, once its process runs, to that process (pid and start time),
so ``tkhub up`` frees what dead servers and jobs held from the ledger alone, without
reading the hub's or the jobs' databases.
"""

from __future__ import annotations

import fcntl
import functools
import json
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tkhub.errors import SpawnRefused
from tkhub.files import write_atomic
from tkhub.gpu.model import GpuDevice, Inventory, Placement
from tkhub.local.processes import is_same_process

Holders = dict[str, list[str]]  # device UUID -> server keys holding it


@dataclass
class _Book:
    devices: Holders = field(default_factory=dict)
    processes: dict[str, tuple[int, float]] = field(default_factory=dict)  # key -> pid, start

    def drop(self, server_key: str) -> None:
        for keys in self.devices.values():
            while server_key in keys:
                keys.remove(server_key)
        self.processes.pop(server_key, None)

    def dump(self) -> str:
        return json.dumps({
            "devices": {k: v for k, v in self.devices.items() if v},
            "processes": {k: list(v) for k, v in self.processes.items()},
        }, indent=1, sort_keys=True)  # fmt: skip


class GpuLedger:
    """Allocations of local GPU units to servers, exclusive unless sharing is allowed."""

    def __init__(self, path: str | os.PathLike[str], max_servers_per_gpu: int = 1) -> None:
        if max_servers_per_gpu < 1:
            raise ValueError("max_servers_per_gpu must be at least 1")
        self.path = Path(path)
        self.lock_path = self.path.with_name(self.path.name + ".lock")
        self.max_servers_per_gpu = max_servers_per_gpu
        self._thread_lock = threading.Lock()

    @contextmanager
    def _locked(self) -> Iterator[_Book]:
        """The ledger's content, written back when the block ends without error."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._thread_lock, open(self.lock_path, "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                book = self._read()
                before = book.dump()
                yield book
                after = book.dump()
                if after != before:  # the catalog process reads it too
                    write_atomic(self.path, after, mode=0o644)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _read(self) -> _Book:
        try:
            raw = json.loads(self.path.read_text())
        except FileNotFoundError:
            return _Book()
        except json.JSONDecodeError:
            return _Book()  # never written whole (rename is atomic), so only by hand
        devices = {str(k): [str(s) for s in v] for k, v in raw.get("devices", {}).items() if v}
        processes = {str(k): (int(v[0]), float(v[1]))
                     for k, v in (raw.get("processes") or {}).items()}  # fmt: skip
        return _Book(devices, processes)

    def holders(self) -> dict[str, tuple[str, ...]]:
        """Device UUID -> the servers holding it."""
        with self._locked() as book:
            return {k: tuple(v) for k, v in book.devices.items()}

    def held_by(self, server_key: str) -> list[str]:
        """UUIDs the server holds now."""
        with self._locked() as book:
            return [uuid for uuid, keys in book.devices.items() if server_key in keys]

    def allocate(
        self, server_key: str, placement: Placement, inventory: Inventory
    ) -> tuple[GpuDevice, ...]:
        """Assign units for ``placement``; raises ``SpawnRefused`` if they are not free."""
        if not placement.uses_gpu:
            self.release(server_key)
            return ()
        with self._locked() as book:
            book.drop(server_key)  # a restart of the same server re-chooses
            chosen = _choose(placement, inventory, book.devices, self.max_servers_per_gpu)
            for device in chosen:
                book.devices.setdefault(device.uuid, []).append(server_key)
            return chosen

    def bind(self, server_key: str, pid: int, started: float) -> None:
        """Tie what ``server_key`` holds to its process, now that it runs."""
        with self._locked() as book:
            if any(server_key in keys for keys in book.devices.values()):
                book.processes[server_key] = (pid, started)

    def release(self, server_key: str) -> None:
        with self._locked() as book:
            book.drop(server_key)

    def reconcile(self, is_alive: Callable[[int, float], bool] = is_same_process) -> list[str]:
        """Free what holders whose process is gone held (or that never got one: the start
        did not finish); returns those holders. Run while nothing allocates (``tkhub up``,
        before the hub starts)."""
        with self._locked() as book:
            holding = {k for keys in book.devices.values() for k in keys}
            dead = sorted(
                k for k in holding if k not in book.processes or not is_alive(*book.processes[k])
            )
            for key in dead:
                book.drop(key)
            for key in set(book.processes) - holding:
                del book.processes[key]
        return dead


def _devices(inventory: Inventory) -> list[GpuDevice]:
    return [d for n in inventory.nodes if n.schedulable for p in n.pools for d in p.devices]


def _choose(
    placement: Placement, inventory: Inventory, data: Holders, limit: int
) -> tuple[GpuDevice, ...]:
    """Least-loaded matching units (then least memory used), as many as asked."""
    candidates = [d for d in _devices(inventory) if placement.matches(d)]
    if not candidates:
        if not _devices(inventory):
            raise SpawnRefused("There is no GPU on this machine; choose CPU only.")
        what = Placement(placement.kind, placement.value, 1).describe()
        raise SpawnRefused(f"There is no {what} on this machine; choose again.")
    free = [d for d in candidates if len(data.get(d.uuid, [])) < limit]
    count = max(placement.count, 1)
    if len(free) < count:
        if placement.kind == "device":
            raise SpawnRefused(f"GPU {placement.value} was taken by another server; choose again.")
        raise SpawnRefused(
            f"Only {len(free)} of the {len(candidates)} matching GPUs are free now and "
            f"{count} were asked for; choose again or try later."
        )
    free.sort(key=lambda d: (len(data.get(d.uuid, [])), d.memory_used_mib, d.index))
    return tuple(free[:count])


LEDGER_FILE = "gpu-ledger.json"


@functools.cache
def shared_ledger(state_dir: Path, max_servers_per_gpu: int = 1) -> GpuLedger:
    """The one ledger of a data directory in this process, shared by all its callers."""
    return GpuLedger(state_dir / LEDGER_FILE, max_servers_per_gpu)


def ledger_for(settings: Any) -> GpuLedger:
    """The ledger of the settings' data directory (hub, catalog and CLI share the file)."""
    return shared_ledger(Path(settings.state_dir), settings.max_servers_per_gpu)
