"""Sign-in bursts: the hub's API latency while many password sign-ins arrive at once.

A real JupyterHub (with its proxy) signs users in with tkhub's PasswordAuthenticator
(scrypt, tens of milliseconds a check). A probe asks ``GET /hub/api/users/NAME`` with
a service token, one request after another, while ``--users`` sign-ins (each: the
login page for its XSRF cookie, then the form POST) arrive together, ``--rounds``
times. Printed: the probe's p50/p95/max during the bursts and with no sign-in at all.

Baseline, measured in the same run on a hub of its own: the same authenticator with
the password checked on the hub's event loop (tkhub before it moved the check to a
thread), so each check stalls every other request.

    .venv/bin/python bench/signin.py [--users 20] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "support"))

from hubproc import free_port, hub_base_config, terminate, wait_for  # noqa: E402

from tkhub.local.password_auth import UserStore  # noqa: E402

ON_LOOP_MODULE = '''\
from tkhub.local.password_auth import PasswordAuthenticator, normalize


class OnLoopPasswordAuthenticator(PasswordAuthenticator):
    """The check as it was: scrypt on the event loop."""

    async def authenticate(self, handler, data):
        name, password = data.get("username", ""), data.get("password", "")
        account = self._store().verify(name, password) if name and password else None
        if account is None:
            return None
        return {"name": normalize(name), "admin": bool(account.get("admin"))}
'''
VARIANTS = {
    "on-loop": "bench_signin_auth.OnLoopPasswordAuthenticator",
    "in-thread": "tkhub.local.password_auth.PasswordAuthenticator",
}
PASSWORD = "a long enough bench password"


class Hub:
    """One JupyterHub in its own directory, signing in the accounts of ``users``."""

    def __init__(self, root: Path, authenticator: str, users: int) -> None:
        root.mkdir()
        self.root, self.token = root, secrets.token_hex(16)
        store = UserStore(root / "users.json")
        for i in range(users):
            store.add(f"user{i}", PASSWORD)
        (root / "bench_signin_auth.py").write_text(ON_LOOP_MODULE)
        port, self.hub_port, proxy_api = free_port(), free_port(), free_port()
        (root / "jupyterhub_config.py").write_text(
            hub_base_config(port, self.hub_port, proxy_api)
            + f"c.JupyterHub.authenticator_class = {authenticator!r}\n"
            + f"c.PasswordAuthenticator.users_file = {str(root / 'users.json')!r}\n"
            + f"c.JupyterHub.services = [{{'name': 'probe', 'api_token': {self.token!r}}}]\n"
            + "c.JupyterHub.load_roles = [{'name': 'probe', 'scopes': ['read:users'],"
            " 'services': ['probe']}]\n"
        )
        self.log = root / "hub.log"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "jupyterhub", "-f", "jupyterhub_config.py"],
            cwd=root,
            stdout=self.log.open("wb"),
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONPATH": f"{root}:{os.environ.get('PYTHONPATH', '')}"},
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.hub_port}/hub"

    def wait_ready(self) -> None:
        wait_for(f"{self.url}/api/", self.proc, self.log)

    def stop(self) -> None:
        terminate(self.proc)


async def sign_in(url: str, name: str) -> bool:
    async with httpx.AsyncClient(timeout=60) as client:
        await client.get(f"{url}/login")
        xsrf = client.cookies.get("_xsrf", "")
        form = {"username": name, "password": PASSWORD, "_xsrf": xsrf}
        response = await client.post(f"{url}/login", data=form)
        return response.status_code == 302 and "jupyterhub-session-id" in response.cookies


async def probe(hub: Hub, stop: asyncio.Event) -> list[float]:
    """Latencies (ms) of API requests made back to back until ``stop``."""
    headers = {"Authorization": f"token {hub.token}"}
    latencies = []
    async with httpx.AsyncClient(timeout=60, headers=headers) as client:
        while not stop.is_set():
            start = time.perf_counter()
            response = await client.get(f"{hub.url}/api/users/user0")
            latencies.append((time.perf_counter() - start) * 1000)
            if response.status_code not in (200, 404):  # 404 until user0 signed in once
                raise SystemExit(f"the probe got {response.status_code}: {response.text}")
    return latencies


async def measure(hub: Hub, users: int, rounds: int) -> tuple[list[float], list[float], int]:
    """Probe latencies without and during sign-in bursts, and the sign-ins that worked."""
    stop = asyncio.Event()
    idle_probe = asyncio.create_task(probe(hub, stop))
    await asyncio.sleep(2)
    stop.set()
    idle = await idle_probe
    stop = asyncio.Event()
    busy_probe = asyncio.create_task(probe(hub, stop))
    worked = 0
    for _ in range(rounds):
        results = await asyncio.gather(*(sign_in(hub.url, f"user{i}") for i in range(users)))
        worked += sum(results)
    stop.set()
    return idle, await busy_probe, worked


def summary(latencies: list[float]) -> str:
    return (
        f"p50 {statistics.median(latencies):7.1f} ms  p95 {p95(latencies):7.1f} ms  "
        f"max {max(latencies):7.1f} ms  ({len(latencies)} requests)"
    )


def p95(latencies: list[float]) -> float:
    ordered = sorted(latencies)
    return ordered[max(0, int(len(ordered) * 0.95) - 1)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=20, help="sign-ins arriving at once")
    parser.add_argument("--rounds", type=int, default=5, help="bursts per variant")
    args = parser.parse_args()
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"{args.users} sign-ins at once, {args.rounds} rounds, load average {load} "
          f"({os.cpu_count()} CPUs)")  # fmt: skip
    during: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="tkhub-bench-signin-") as tmp:
        for variant, authenticator in VARIANTS.items():
            hub = Hub(Path(tmp) / variant, authenticator, args.users)
            try:
                hub.wait_ready()
                idle, busy, worked = asyncio.run(measure(hub, args.users, args.rounds))
            finally:
                hub.stop()
            expected = args.users * args.rounds
            if worked != expected:
                raise SystemExit(f"{variant}: only {worked} of {expected} sign-ins worked")
            print(f"{variant:9}  idle    {summary(idle)}")
            print(f"{variant:9}  signing {summary(busy)}  sign-ins {worked}/{expected}")
            during[variant] = busy
    p50s = {v: statistics.median(lat) for v, lat in during.items()}
    p95s = {v: p95(lat) for v, lat in during.items()}
    print(f"ratio on-loop/in-thread (API latency during sign-ins): "
          f"p50 {p50s['on-loop'] / p50s['in-thread']:.1f}x, "
          f"p95 {p95s['on-loop'] / p95s['in-thread']:.1f}x")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
