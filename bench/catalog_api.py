"""Catalog API throughput: ``GET /api/v1/images/jupyter`` from the in-memory cache
versus the same endpoint reading the database on every request (the baseline).

500 entries in SQLite, 50 concurrent httpx clients, a fixed number of requests per
variant; each server runs in its own process on 127.0.0.1. Token checks go to a
minimal stand-in of the hub's ``/hub/api/user`` (HubAuth caches the answer, so
the hub is out of the measured path either way).

    .venv/bin/python bench/catalog_api.py [--requests 3000] [--clients 50]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import socket
import statistics
import tempfile
import time
from typing import Any

import httpx
import uvicorn

ENTRIES = 500


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_hub_stand_in(port: int) -> None:
    from fastapi import FastAPI

    app = FastAPI()

    @app.get("/hub/api/user")
    async def user() -> dict[str, Any]:
        return {"kind": "user", "name": "bench", "admin": True, "groups": [], "scopes": []}

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="error")


def run_catalog(port: int, hub_port: int, data_dir: str, cached: bool) -> None:
    from tkhub.catalog.app import create_app
    from tkhub.catalog.auth import make_hub_auth
    from tkhub.config import Settings

    auth = make_hub_auth(f"http://127.0.0.1:{hub_port}/hub/api", "bench-service-token")
    app = create_app(Settings(data_dir=data_dir), hub_auth=auth, cache_enabled=cached)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="error")


def populate(data_dir: str) -> None:
    from tkhub.catalog import db, store
    from tkhub.catalog.schemas import ImageCreate
    from tkhub.config import Settings

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


async def load(url: str, requests: int, clients: int) -> tuple[float, list[float]]:
    latencies: list[float] = []
    remaining = iter(range(requests))
    headers = {"Authorization": "token bench-user-token"}
    limits = httpx.Limits(max_connections=clients)
    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits) as http:
        first = await http.get("/api/v1/images/jupyter")  # warms the token cache
        assert first.status_code == 200 and len(first.json()) == ENTRIES, first.text[:200]

        async def worker() -> None:
            for _ in remaining:
                start = time.perf_counter()
                response = await http.get("/api/v1/images/jupyter")
                latencies.append(time.perf_counter() - start)
                response.raise_for_status()

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        return time.perf_counter() - began, latencies


def wait_for(url: str) -> None:
    for _ in range(300):
        try:
            httpx.get(url + "/health", timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise SystemExit(f"{url} did not start")


def measure(name: str, port: int, hub_port: int, data_dir: str, cached: bool, args: Any) -> float:
    proc = multiprocessing.Process(target=run_catalog, args=(port, hub_port, data_dir, cached))
    proc.start()
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for(url)
        elapsed, lat = asyncio.run(load(url, args.requests, args.clients))
    finally:
        proc.terminate()
        proc.join()
    rate = args.requests / elapsed
    p99 = statistics.quantiles(lat, n=100)[98]
    print(
        f"{name:10s} {rate:8.1f} req/s  p50 {statistics.median(lat) * 1000:7.1f} ms  "
        f"p99 {p99 * 1000:7.1f} ms"
    )
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--clients", type=int, default=50)
    args = parser.parse_args()
    data_dir = tempfile.mkdtemp(dir="/tmp", prefix="tkhub-bench-")
    populate(data_dir)
    hub_port = free_port()
    hub = multiprocessing.Process(target=run_hub_stand_in, args=(hub_port,))
    hub.start()
    try:
        print(f"{ENTRIES} entries, {args.clients} clients, {args.requests} requests each")
        baseline = measure("uncached", free_port(), hub_port, data_dir, False, args)
        cached = measure("cached", free_port(), hub_port, data_dir, True, args)
        print(f"ratio cached/uncached: {cached / baseline:.2f}x")
    finally:
        hub.terminate()
        hub.join()


if __name__ == "__main__":
    main()
