"""Local mode: spawn-to-ready of ``tkhub up`` versus a bare JupyterHub, and tkhub's idle memory.

Run by hand (not a test), as root or not:

    .venv/bin/python bench/spawn.py [--runs 8]

Two hubs run side by side on this machine, started by this script on free ports
under /tmp:

  tkhub  the real ``tkhub up`` (tests/integration/local/local_hub.py): JupyterHub,
         configurable-http-proxy, the catalog service, the idle culler and
         LocalSpawner with the "python" environment (this interpreter); as root,
         each new hub user gets a system account on its first spawn.
  bare   stock JupyterHub with ``SimpleLocalProcessSpawner`` and the dummy
         authenticator, the same interpreter (``python -m jupyterhub.singleuser``),
         the same configurable-http-proxy, the same ``start_timeout``/``http_timeout``.

Spawn-to-ready is measured the same way for both: from ``POST
/hub/api/users/U/server`` to ``ready: true`` in ``GET /hub/api/users/U`` (polled every
0.1 s, through the proxy); then ``DELETE`` and wait until the server is gone (not
timed). Each run uses a fresh user and spawns it twice: the first spawn (which, for
tkhub as root, creates the user's account) and a warm spawn of the now existing
user. Runs alternate which hub goes first. The ratio tkhub/bare is on the warm
spawns (goal <= 1.10).

Idle memory: RSS summed over tkhub's process tree (``tkhub up``, the hub, the proxy,
the catalog service, the idle culler) with no server running, before the first
spawn and after the last (goal <= 400 MB). PSS (shared pages split between the
processes that map them) is shown beside it; the bare hub's tree for reference.

Stop: SIGINT (Ctrl-C) to each hub with no server running, until its process has
exited (goal: tkhub <= 5 s).
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil
from rich.console import Console
from rich.table import Table

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "tests" / "integration" / "local"))
sys.path.insert(0, str(REPO / "tests" / "support"))

from hubproc import free_port, remove_test_account, terminate  # noqa: E402
from local_hub import running_tkhub_up  # noqa: E402

PROXY = REPO / "node_modules" / ".bin" / "configurable-http-proxy"
POLL = 0.1
MEMORY_GOAL_MB = 400
RATIO_GOAL = 1.10
STOP_GOAL_S = 5.0
console = Console(soft_wrap=True)


@dataclass
class Target:
    """One hub as the bench drives it: its API through the proxy, an admin token."""

    name: str
    api_url: str
    token: str
    pid: int  # root of its process tree

    def client(self) -> httpx.Client:
        headers = {"Authorization": f"token {self.token}"}
        return httpx.Client(base_url=self.api_url, headers=headers, timeout=60)


# --- the bare hub ---------------------------------------------------------------------

BARE_CONFIG = """\
import sys
c.JupyterHub.ip = "127.0.0.1"
c.JupyterHub.port = {port}
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = {hub_port}
c.JupyterHub.db_url = "sqlite:///{root}/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = "{root}/jupyterhub_cookie_secret"
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{proxy_api_port}"
c.ConfigurableHTTPProxy.auth_token = {proxy_token!r}
c.ConfigurableHTTPProxy.command = [{proxy!r}]
c.ConfigurableHTTPProxy.pid_file = "{root}/proxy.pid"
c.JupyterHub.authenticator_class = "dummy"
c.Authenticator.admin_users = {{"bench-admin"}}
c.JupyterHub.api_tokens = {{{token!r}: "bench-admin"}}
c.JupyterHub.spawner_class = "simple"
c.SimpleLocalProcessSpawner.home_dir_template = "{root}/home/{{username}}"
c.Spawner.cmd = [{python!r}, "-m", "jupyterhub.singleuser"]
c.Spawner.args = {args!r}
c.Spawner.ip = "127.0.0.1"
c.Spawner.http_timeout = 60
c.Spawner.start_timeout = 120
"""


def wait_for_api(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the bare hub exited ({proc.returncode}):\n{log.read_text()[-4000:]}")
        try:
            if httpx.get(f"{url}/hub/api/", timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"the bare hub did not answer in {timeout} s:\n{log.read_text()[-4000:]}")


@contextmanager
def running_bare_hub() -> Iterator[Target]:
    root = Path(tempfile.mkdtemp(dir="/tmp", prefix="bare-hub-"))
    port, token = free_port(), secrets.token_hex(32)
    config = root / "jupyterhub_config.py"
    config.write_text(
        BARE_CONFIG.format(
            root=root,
            port=port,
            hub_port=free_port(),
            proxy_api_port=free_port(),
            proxy_token=secrets.token_hex(32),
            proxy=str(PROXY),
            token=token,
            python=sys.executable,
            args=["--allow-root"] if os.geteuid() == 0 else [],
        )
    )
    log = root / "hub.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "jupyterhub", "-f", str(config)],
            cwd=root,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_api(url, proc, log)
        yield Target("bare", f"{url}/hub/api", token, proc.pid)
    finally:
        terminate(proc, timeout=60, sig=signal.SIGINT)  # Ctrl-C: servers stop too
        shutil.rmtree(root, ignore_errors=True)


# --- measuring ------------------------------------------------------------------------


def server(http: httpx.Client, user: str) -> dict[str, Any] | None:
    response = http.get(f"/users/{user}")
    response.raise_for_status()
    found: dict[str, Any] | None = response.json()["servers"].get("")
    return found


def spawn_to_ready(target: Target, http: httpx.Client, user: str, options: dict[str, Any]) -> float:
    """Seconds from the spawn request to ``ready``; the server is stopped afterwards."""
    start = time.perf_counter()
    response = http.post(f"/users/{user}/server", json=options)
    if response.status_code not in (201, 202):
        raise SystemExit(
            f"{target.name}: spawn of {user} refused ({response.status_code}): {response.text}"
        )
    while True:
        found = server(http, user)
        if found is None:
            raise SystemExit(f"{target.name}: {user}'s server went away while starting")
        if found.get("ready"):
            break
        if time.perf_counter() - start > 300:
            raise SystemExit(f"{target.name}: {user}'s server not ready in 300 s")
        time.sleep(POLL)
    elapsed = time.perf_counter() - start
    http.delete(f"/users/{user}/server")
    deadline = time.monotonic() + 120
    while server(http, user) is not None:
        if time.monotonic() > deadline:
            raise SystemExit(f"{target.name}: {user}'s server did not stop")
        time.sleep(POLL)
    return elapsed


def tree(pid: int) -> list[psutil.Process]:
    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


def label(proc: psutil.Process) -> str:
    try:
        cmd = proc.cmdline()
    except psutil.Error:
        return "?"
    text = " ".join(cmd)
    for needle, name in (
        ("tkhub up", "tkhub up"),
        ("-m tkhub.local.supervisor", "tkhub up"),  # what `tkhub up` becomes once the hub starts
        ("-m jupyterhub -f", "hub (jupyterhub)"),
        ("configurable-http-proxy", "configurable-http-proxy"),
        ("catalog_service", "catalog service"),
        ("jupyterhub_idle_culler", "idle culler"),
        ("jupyterhub.singleuser", "single-user server"),
    ):
        if needle in text:
            return name
    return Path(cmd[0]).name if cmd else proc.name()


@dataclass
class Memory:
    rss: int
    pss: int
    parts: list[tuple[str, int, int]]  # (what, rss, pss)


def memory(pid: int) -> Memory:
    parts = []
    for proc in tree(pid):
        try:
            info = proc.memory_full_info()
            parts.append((label(proc), info.rss, getattr(info, "pss", 0)))
        except psutil.Error:
            continue
    return Memory(sum(p[1] for p in parts), sum(p[2] for p in parts), parts)


def mb(n: float) -> str:
    return f"{n / 1e6:.0f}"


def p90(values: list[float]) -> float:
    return (
        statistics.quantiles(values, n=10, method="inclusive")[8] if len(values) > 1 else values[0]
    )


def load() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


# --- the run --------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=8, help="fresh users per hub (default 8)")
    parser.add_argument(
        "--settle", type=float, default=10, help="seconds idle before measuring memory"
    )
    args = parser.parse_args()

    tag = secrets.token_hex(2)
    tk_users: list[str] = []
    times: dict[str, dict[str, list[float]]] = {
        name: {"first": [], "warm": []} for name in ("tkhub", "bare")
    }
    load_before = load()
    tk_root = Path(tempfile.mkdtemp(dir="/tmp", prefix="tkhub-bench-"))
    tk_root.chmod(0o755)  # users' accounts must reach their homes below it
    try:
        with running_tkhub_up(root=tk_root, keep=True) as tk, running_bare_hub() as bare:
            targets = {
                "tkhub": (
                    Target("tkhub", f"{tk.url}/hub/api", tk.cli_token, tk.proc.pid),
                    {"image": "python"},
                ),
                "bare": (bare, {}),
            }
            time.sleep(args.settle)
            idle_before, bare_before = memory(tk.proc.pid), memory(bare.pid)
            clients = {name: target.client() for name, (target, _) in targets.items()}
            for run in range(args.runs):
                order = ["tkhub", "bare"] if run % 2 == 0 else ["bare", "tkhub"]
                for name in order:
                    target, options = targets[name]
                    http = clients[name]
                    user = f"bench-{tag}-{run}"
                    if name == "tkhub":
                        tk_users.append(user)
                    created = http.post(f"/users/{user}")
                    if created.status_code not in (201, 409):
                        raise SystemExit(f"{name}: cannot add {user}: {created.text}")
                    first = spawn_to_ready(target, http, user, options)
                    warm = spawn_to_ready(target, http, user, options)
                    times[name]["first"].append(first)
                    times[name]["warm"].append(warm)
                    step = f"run {run + 1}/{args.runs} {name:5}"
                    console.print(f"{step}  first {first:6.2f} s  warm {warm:6.2f} s")
            for http in clients.values():
                http.close()
            time.sleep(args.settle)
            if any(label(p) == "single-user server" for p in tree(tk.proc.pid)):
                raise SystemExit("a single-user server is still running under tkhub")
            idle_after, bare_after = memory(tk.proc.pid), memory(bare.pid)
            stops = {"tkhub": stop_time(tk.proc.pid), "bare": stop_time(bare.pid)}
    finally:
        for user in tk_users:
            remove_test_account(user, tk_root / "data")
        shutil.rmtree(tk_root, ignore_errors=True)
    load_after = load()

    bare_idle = (bare_before, bare_after)
    report(args.runs, times, idle_before, idle_after, bare_idle, load_before, load_after)
    ratio = stops["tkhub"] / stops["bare"]
    met = "met" if stops["tkhub"] <= STOP_GOAL_S else "NOT met"
    console.print(
        f"stop with no server running (Ctrl-C to exit): tkhub {stops['tkhub']:.1f} s, "
        f"bare {stops['bare']:.1f} s, ratio tkhub/bare {ratio:.2f}x; "
        f"goal tkhub <= {STOP_GOAL_S:.0f} s: {met}"
    )


def stop_time(pid: int) -> float:
    """Seconds from SIGINT to the exit of the process ``pid``."""
    proc = psutil.Process(pid)
    started = time.monotonic()
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=120)
    return time.monotonic() - started


def report(
    runs: int,
    times: dict[str, dict[str, list[float]]],
    idle_before: Memory,
    idle_after: Memory,
    bare_idle: tuple[Memory, Memory],
    load_before: str,
    load_after: str,
) -> None:
    cores = os.cpu_count()
    console.print(
        f"\n{runs} runs per hub, interleaved; {cores} CPU cores; "
        f"load average (1/5/15 min) {load_before} before, {load_after} after"
    )
    table = Table(title="Spawn to ready (seconds)")
    for column in ("hub", "spawn", "median", "p90", "min", "max"):
        table.add_column(column, justify="left" if column in ("hub", "spawn") else "right")
    for name in ("bare", "tkhub"):
        for kind, what in (("first", "first (new user)"), ("warm", "warm (existing user)")):
            values = times[name][kind]
            table.add_row(
                name,
                what,
                f"{statistics.median(values):.2f}",
                f"{p90(values):.2f}",
                f"{min(values):.2f}",
                f"{max(values):.2f}",
            )
    console.print(table)

    warm_ratio = statistics.median(times["tkhub"]["warm"]) / statistics.median(
        times["bare"]["warm"]
    )
    warm_p90 = p90(times["tkhub"]["warm"]) / p90(times["bare"]["warm"])
    first_ratio = statistics.median(times["tkhub"]["first"]) / statistics.median(
        times["bare"]["first"]
    )
    met = "met" if warm_ratio <= RATIO_GOAL else "NOT met"
    console.print(
        f"ratio tkhub/bare, warm spawns of an existing user (median): {warm_ratio:.2f}x "
        f"(p90 {warm_p90:.2f}x); goal <= {RATIO_GOAL:.2f}: {met}"
    )
    console.print(
        f"ratio tkhub/bare, first spawn of a new user (median): {first_ratio:.2f}x (not the goal)"
    )

    mem = Table(title="Idle memory, no server running (MB)")
    mem.add_column("process")
    for column in ("RSS before", "RSS after", "PSS after"):
        mem.add_column(column, justify="right")
    before = {what: rss for what, rss, _ in idle_before.parts}
    for what, rss, pss in idle_after.parts:
        mem.add_row(f"tkhub: {what}", mb(before.get(what, 0)), mb(rss), mb(pss))
    served = [service_rss(idle_before), service_rss(idle_after), service_rss(idle_after, pss=True)]
    mem.add_row("tkhub: hub + proxy + catalog + culler", *map(mb, served), style="bold")
    mem.add_row("tkhub: whole tree (with tkhub up)", *map(mb, (
        idle_before.rss, idle_after.rss, idle_after.pss)))  # fmt: skip
    bare_before, bare_after = bare_idle
    mem.add_row("bare: hub + proxy", *map(mb, (bare_before.rss, bare_after.rss, bare_after.pss)))
    console.print(mem)
    worst = max(served[:2])
    met = "met" if worst <= MEMORY_GOAL_MB * 1e6 else "NOT met"
    console.print(
        f"tkhub idle RSS, hub + proxy + catalog + culler (larger of before/after): {mb(worst)} MB;"
        f" goal <= {MEMORY_GOAL_MB} MB: {met}"
    )
    whole = max(idle_before.rss, idle_after.rss)
    met = "met" if whole <= MEMORY_GOAL_MB * 1e6 else "NOT met"
    console.print(f"with the waiting `tkhub up` process: {mb(whole)} MB ({met})")


def service_rss(memory: Memory, pss: bool = False) -> int:
    """The tree without the ``tkhub up`` launcher that waits on the hub."""
    return sum(p[2] if pss else p[1] for p in memory.parts if p[0] != "tkhub up")


if __name__ == "__main__":
    main()
