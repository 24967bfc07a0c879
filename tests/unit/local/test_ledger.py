"""GpuLedger: exclusive allocation, sharing, auto least-loaded, reconcile, concurrency."""

from __future__ import annotations

import multiprocessing
import tempfile
import threading
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from tkhub.errors import SpawnRefused
from tkhub.gpu.model import GpuDevice, Inventory, Placement
from tkhub.local.inventory import local_node
from tkhub.local.ledger import GpuLedger

AUTO = Placement("auto", count=1)


def machine(n: int = 2) -> Inventory:
    devices = [GpuDevice(str(i), f"GPU-{i}", "NVIDIA H100", 81559, i * 10) for i in range(n)]
    return Inventory(mode="local", nodes=(local_node(devices),))


def test_exclusive_device_then_refused(tmp_path):
    ledger = GpuLedger(tmp_path / "l.json")
    inv = machine()
    assert [d.uuid for d in ledger.allocate("a/", Placement("device", "1", 1), inv)] == ["GPU-1"]
    with pytest.raises(SpawnRefused, match="GPU 1 was taken by another server; choose again"):
        ledger.allocate("b/", Placement("device", "1", 1), inv)
    ledger.release("a/")
    assert ledger.allocate("b/", Placement("device", "GPU-1", 1), inv)[0].uuid == "GPU-1"


def test_auto_least_loaded_and_sharing(tmp_path):
    ledger = GpuLedger(tmp_path / "l.json", max_servers_per_gpu=2)
    inv = machine()
    first = ledger.allocate("a/", AUTO, inv)[0].uuid
    second = ledger.allocate("b/", AUTO, inv)[0].uuid
    assert {first, second} == {"GPU-0", "GPU-1"}  # spread before sharing
    ledger.allocate("c/", AUTO, inv)
    ledger.allocate("d/", AUTO, inv)
    with pytest.raises(SpawnRefused, match="Only 0 of the 2"):
        ledger.allocate("e/", AUTO, inv)
    assert sorted(len(v) for v in ledger.holders().values()) == [2, 2]


def test_count_and_no_gpu(tmp_path):
    ledger = GpuLedger(tmp_path / "l.json")
    assert len(ledger.allocate("a/", Placement("auto", count=2), machine())) == 2
    with pytest.raises(SpawnRefused, match="no GPU on this machine"):
        ledger.allocate("b/", AUTO, Inventory(mode="local"))
    assert ledger.allocate("c/", Placement("cpu"), machine()) == ()


def test_reallocating_same_server_replaces_its_hold(tmp_path):
    ledger = GpuLedger(tmp_path / "l.json")
    ledger.allocate("a/", Placement("device", "0", 1), machine())
    ledger.allocate("a/", Placement("device", "1", 1), machine())
    assert ledger.holders() == {"GPU-1": ("a/",)}


def test_reconcile_after_restart(tmp_path):
    path = tmp_path / "l.json"
    for key, pid in (("alive/", 10), ("dead/", 20), ("never-started/", None)):
        GpuLedger(path).allocate(key, AUTO, machine(3))
        if pid is not None:
            GpuLedger(path).bind(key, pid, 1000.0)
    restarted = GpuLedger(path)  # a new hub process reads the same file
    assert restarted.reconcile(lambda pid, started: (pid, started) == (10, 1000.0)) == [
        "dead/", "never-started/"]  # fmt: skip
    assert list(restarted.holders().values()) == [("alive/",)]
    assert path.stat().st_mode & 0o777 == 0o644


def test_a_release_forgets_the_process_and_a_bind_needs_a_hold(tmp_path):
    ledger = GpuLedger(tmp_path / "l.json")
    ledger.bind("nothing/", 10, 1.0)  # holds no GPU: nothing to tie
    ledger.allocate("a/", AUTO, machine())
    ledger.bind("a/", 10, 1.0)
    ledger.release("a/")
    ledger.allocate("a/", AUTO, machine())  # a new start, not yet bound
    assert ledger.reconcile(lambda pid, started: True) == ["a/"]


def _spawn_many(path: str, prefix: str, rounds: int, out) -> None:
    ledger, inv = GpuLedger(path), machine(3)
    got = 0
    for i in range(rounds):
        key = f"{prefix}-{i}/"
        try:
            ledger.allocate(key, AUTO, inv)
            got += 1
        except SpawnRefused:
            continue
        holders = ledger.holders()
        assert all(len(v) == 1 for v in holders.values()), holders
        ledger.release(key)
    out.put(got)


def test_concurrent_processes_and_threads_never_share(tmp_path):
    path = str(tmp_path / "l.json")
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    procs = [ctx.Process(target=_spawn_many, args=(path, f"p{i}", 40, out)) for i in range(4)]
    threads = [
        threading.Thread(target=_spawn_many, args=(path, f"t{i}", 40, out)) for i in range(3)
    ]
    for worker in (*procs, *threads):
        worker.start()
    for worker in (*procs, *threads):
        worker.join(120)
    assert all(p.exitcode == 0 for p in procs)
    assert sum(out.get(timeout=5) for _ in range(7)) > 0
    assert GpuLedger(path).holders() == {}  # nothing leaked


class LedgerMachine(RuleBasedStateMachine):
    """Two ledger objects on one file (two processes' view) against a simple model."""

    def __init__(self) -> None:
        super().__init__()
        path = Path(tempfile.mkdtemp(dir="/tmp")) / "l.json"
        self.ledgers = [GpuLedger(path), GpuLedger(path)]
        self.inv = machine(3)
        self.model: dict[str, tuple[str, ...]] = {}

    @rule(server=st.sampled_from("abcdef"), which=st.integers(0, 1), count=st.integers(1, 2))
    def allocate(self, server: str, which: int, count: int) -> None:
        key = f"{server}/"
        # the server's own units count as free: a re-allocation replaces its hold
        free = 3 - sum(len(v) for k, v in self.model.items() if k != key)
        try:
            got = self.ledgers[which].allocate(key, Placement("auto", count=count), self.inv)
        except SpawnRefused:
            assert free < count  # and a refusal changes nothing
            return
        assert len(got) == count <= free
        self.model[key] = tuple(d.uuid for d in got)
        self.ledgers[1 - which].bind(key, ord(server), 0.0)  # its process: the letter

    @rule(server=st.sampled_from("abcdef"), which=st.integers(0, 1))
    def release(self, server: str, which: int) -> None:
        self.ledgers[which].release(f"{server}/")
        self.model.pop(f"{server}/", None)

    @rule(live=st.sets(st.sampled_from("abcdef")))
    def reconcile(self, live: set[str]) -> None:
        self.ledgers[0].reconcile(lambda pid, _started: chr(pid) in live)
        self.model = {k: v for k, v in self.model.items() if k[0] in live}

    @invariant()
    def matches_model(self) -> None:
        holders = self.ledgers[1].holders()
        assert all(len(v) == 1 for v in holders.values())  # never two exclusive holders
        held = Counter(k for v in holders.values() for k in v)
        assert held == Counter({k: len(v) for k, v in self.model.items()})  # nothing leaked


LedgerMachine.TestCase.settings = settings(max_examples=40, stateful_step_count=25, deadline=None)
TestLedgerStateful = LedgerMachine.TestCase
