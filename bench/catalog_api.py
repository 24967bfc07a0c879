"""Catalog API throughput: ``GET /api/v1/images/jupyter`` from the in-memory cache
versus the same endpoint reading the database on every request (the baseline).

500 entries in SQLite, 50 concurrent connections; each server runs in its own
process on 127.0.0.1. Token checks go to a minimal stand-in of the hub's
``/hub/api/user`` (HubAuth caches the answer, so the hub is out of the measured
path either way).

The load generator is ``wrk`` (C, one thread by default, so it leaves the CPU to
the server; latency percentiles from ``--latency``) or, with ``--generator
python``, 50 asyncio httpx clients in this process (which compete with the server
for the CPU). Both variants of one run use the same generator.

    .venv/bin/python bench/catalog_api.py [--generator wrk|python] [--duration 10]
        [--clients 50] [--threads 1] [--requests 3000] [--variants uncached,cached]

Variants: ``uncached`` (cache disabled: database read and serialization on every
request), ``cached`` (full 200 body), ``cached-304`` (the client sends the ETag
it already has: ``If-None-Match``), ``cached-gzip`` (``Accept-Encoding: gzip``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import re
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from typing import Any

import httpx
import uvicorn

ENTRIES = 500
PATH = "/api/v1/images/jupyter"
TOKEN = "bench-user-token"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_hub_stand_in(port: int) -> None:
    from fastapi import FastAPI

    app = FastAPI()

    @app.get("/hub/api/user")
    async def user() -> dict[str, Any]:
        return {"kind": "user", "name": "bench", "admin": False, "groups": [], "scopes": []}

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="error")


def run_catalog(
    port: int, hub_port: int, data_dir: str, cached: bool, http: str, loop: str
) -> None:
    from tkhub.catalog.app import create_app
    from tkhub.catalog.hub_tokens import make_hub_auth
    from tkhub.settings import Settings

    auth = make_hub_auth(f"http://127.0.0.1:{hub_port}/hub/api", "bench-service-token")
    app = create_app(Settings(data_dir=data_dir), hub_auth=auth, cache_enabled=cached)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="error", http=http, loop=loop)


def populate(data_dir: str) -> None:
    from tkhub.catalog import db, store
    from tkhub.catalog.schemas import ImageCreate
    from tkhub.settings import Settings

    engine = db.make_engine(Settings(data_dir=data_dir).database_url)
    db.upgrade(engine)
    with db.session_factory(engine)() as session:
        for i in range(ENTRIES):
            entry = ImageCreate(
                name=f"image-{i:03d}",
                image=f"registry.example.org/thinkube/image-{i:03d}:1.0",
                display_name=f"Image {i}",
                description="A Jupyter environment " * 4,
                packages=["numpy", "pandas", "torch"],
                resources={"cpu_limit": "4", "mem_limit": "16Gi"},
            )
            store.create_image(session, entry=entry)
        session.commit()
    engine.dispose()


def variant_headers(variant: str, etag: str | None) -> dict[str, str]:
    headers = {"Authorization": f"token {TOKEN}"}
    if variant.endswith("-304"):
        if not etag:
            raise SystemExit("cached-304: the server sends no ETag")
        headers["If-None-Match"] = etag
    headers["Accept-Encoding"] = "gzip" if variant.endswith("-gzip") else "identity"
    return headers


def warm_up(url: str) -> str | None:
    """One checked request (it also fills the token cache); returns the ETag."""
    first = httpx.get(url + PATH, headers={"Authorization": f"token {TOKEN}"}, timeout=60)
    assert first.status_code == 200 and len(first.json()) == ENTRIES, first.text[:200]
    return first.headers.get("etag")


# ---- python generator: asyncio httpx clients in this process ----------------------


async def python_load(
    url: str, headers: dict[str, str], requests: int, clients: int
) -> tuple[float, list[float], int]:
    latencies: list[float] = []
    remaining = iter(range(requests))
    limits = httpx.Limits(max_connections=clients)
    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits, timeout=60) as http:

        async def worker() -> None:
            for _ in remaining:
                start = time.perf_counter()
                response = await http.get(PATH)
                latencies.append(time.perf_counter() - start)
                if response.status_code not in (200, 304):
                    response.raise_for_status()

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        return time.perf_counter() - began, latencies, 0


def run_python(url: str, headers: dict[str, str], args: Any) -> dict[str, float]:
    elapsed, lat, _ = asyncio.run(python_load(url, headers, args.requests, args.clients))
    return {
        "rate": args.requests / elapsed,
        "p50": statistics.median(lat) * 1000,
        "p99": statistics.quantiles(lat, n=100)[98] * 1000,
        "errors": 0,
    }


# ---- wrk generator ----------------------------------------------------------------

_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)([a-z]+)", text).groups()  # type: ignore[union-attr]
    return float(number) * _UNITS[unit]


def run_wrk(url: str, headers: dict[str, str], args: Any) -> dict[str, float]:
    lua = "".join(f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}\n" for k, v in headers.items())
    with tempfile.NamedTemporaryFile("w", suffix=".lua", dir="/tmp") as script:
        script.write(lua)
        script.flush()
        command = [
            "wrk",
            f"-t{args.threads}",
            f"-c{args.clients}",
            f"-d{args.duration}s",
            "--timeout",
            "60s",
            "--latency",
            "-s",
            script.name,
            url + PATH,
        ]
        out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    if args.verbose:
        print(out)
    dist = dict(re.findall(r"^\s+(50|99)%\s+(\S+)\s*$", out, re.MULTILINE))
    errors = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses: (\d+)", out))
    errors += sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    return {
        "rate": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        "p50": _ms(dist["50"]),
        "p99": _ms(dist["99"]),
        "errors": errors,
    }


def wait_for(url: str) -> None:
    for _ in range(300):
        try:
            httpx.get(url + "/health", timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise SystemExit(f"{url} did not start")


def measure(variant: str, hub_port: int, data_dir: str, args: Any) -> dict[str, float]:
    port = free_port()
    cached = not variant.startswith("uncached")
    proc = multiprocessing.Process(
        target=run_catalog, args=(port, hub_port, data_dir, cached, args.http, args.loop)
    )
    proc.start()
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for(url)
        headers = variant_headers(variant, warm_up(url))
        check = httpx.get(url + PATH, headers=headers, timeout=60)
        expected = 304 if variant.endswith("-304") else 200
        assert check.status_code == expected, (variant, check.status_code, check.text[:200])
        result = (run_wrk if args.generator == "wrk" else run_python)(url, headers, args)
    finally:
        proc.terminate()
        proc.join()
    print(
        f"{variant:12s} {result['rate']:8.1f} req/s  p50 {result['p50']:7.1f} ms  "
        f"p99 {result['p99']:7.1f} ms  errors {result['errors']:.0f}",
        flush=True,
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--generator", choices=("wrk", "python"), default="wrk")
    parser.add_argument("--duration", type=int, default=10, help="wrk: seconds per variant")
    parser.add_argument("--threads", type=int, default=1, help="wrk: threads")
    parser.add_argument("--requests", type=int, default=3000, help="python: requests per variant")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--variants", default="uncached,cached,cached-gzip,cached-304")
    parser.add_argument("--http", default="auto", help="uvicorn --http (auto, h11, httptools)")
    parser.add_argument("--loop", default="auto", help="uvicorn --loop (auto, asyncio, uvloop)")
    parser.add_argument("--verbose", action="store_true", help="print wrk's own report")
    args = parser.parse_args()
    if args.generator == "wrk" and not shutil.which("wrk"):
        raise SystemExit("wrk not found: apt-get install wrk (or --generator python)")
    data_dir = tempfile.mkdtemp(dir="/tmp", prefix="tkhub-bench-")
    populate(data_dir)
    hub_port = free_port()
    hub = multiprocessing.Process(target=run_hub_stand_in, args=(hub_port,))
    hub.start()
    try:
        load = " ".join(f"{x:.2f}" for x in os.getloadavg())
        amount = f"{args.duration} s" if args.generator == "wrk" else f"{args.requests} requests"
        print(
            f"{ENTRIES} entries, {args.clients} connections, {amount} per variant, "
            f"generator {args.generator}, uvicorn http={args.http} loop={args.loop}, "
            f"load average {load} ({os.cpu_count()} CPUs)"
        )
        results = {v: measure(v, hub_port, data_dir, args) for v in args.variants.split(",")}
        if "uncached" in results and "cached" in results:
            ratio = results["cached"]["rate"] / results["uncached"]["rate"]
            print(f"ratio cached/uncached (req/s): {ratio:.1f}x")
        print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    finally:
        hub.terminate()
        hub.join()
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
