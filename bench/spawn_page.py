"""Spawn page: server-side time to build the options form, versus KubeSpawner's stock form.

Ours, per request: the catalog query over HTTP (``CatalogClient.list_images`` against
the real catalog service, 200 entries in SQLite), the inventory from the Node/Pod JSON
of 50 GPU nodes (``inventory_from_objects``, what ``TkKubeSpawner.fetch_inventory``
does after listing), the placement choices, and the template.

Baselines, measured in the same run: KubeSpawner's ``_render_options_form`` with its
bundled ``form.html`` for a static ``profile_list`` of the same size, no catalog and
no inventory:
  static-envs     200 profiles, no options (the same number of environments)
  static-choices  200 profiles, each with a ``gpu`` option of the same 56 placements
                  (the same choices our page offers)

Token checks go to a minimal stand-in of the hub's ``/hub/api/user`` (the catalog
caches the answer), as in bench/catalog_api.py.

    .venv/bin/python bench/spawn_page.py [--runs 200]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import socket
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import uvicorn

ENTRIES = 200
NODES = 50
MODELS = ("NVIDIA-H100-80GB-HBM3", "NVIDIA-A100-SXM4-40GB", "NVIDIA-L4", "Tesla-T4")


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


def run_catalog(port: int, hub_port: int, data_dir: str) -> None:
    from tkhub.catalog.app import create_app
    from tkhub.catalog.hub_tokens import make_hub_auth
    from tkhub.settings import Settings

    auth = make_hub_auth(f"http://127.0.0.1:{hub_port}/hub/api", "bench-service-token")
    app = create_app(Settings(data_dir=data_dir), hub_auth=auth)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="error")


def populate(data_dir: str) -> None:
    from tkhub.catalog import db, store
    from tkhub.catalog.schemas import ImageCreate
    from tkhub.settings import Settings

    engine = db.make_engine(Settings(data_dir=data_dir).database_url)
    db.upgrade(engine)
    needs = ("optional", "required", "none")
    with db.session_factory(engine)() as session:
        for i in range(ENTRIES):
            entry = ImageCreate(
                name=f"env-{i:03d}",
                image=f"registry.example.org/thinkube/env-{i:03d}:1.0",
                display_name=f"Environment {i}",
                description="A Jupyter environment " * 4,
                gpu=needs[i % 3],
                packages=["numpy", "pandas", "torch", "jax"],
                resources={"cpu_limit": "4", "mem_limit": "16Gi"},
                default=i == 0,
            )
            store.create_image(session, entry=entry)
        session.commit()
    engine.dispose()


def cluster_json() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """50 GPU nodes (8 GPUs each, GFD labels, some cordoned) and pods holding some GPUs."""
    nodes, pods = [], []
    for i in range(NODES):
        model = MODELS[i % len(MODELS)]
        res = {"cpu": "64", "memory": "512Gi", "pods": "110", "nvidia.com/gpu": "8"}
        labels = {"nvidia.com/gpu.present": "true", "nvidia.com/gpu.product": model}
        nodes.append(
            {
                "metadata": {"name": f"gpu-node-{i:02d}", "labels": labels},
                "spec": {"unschedulable": True} if i % 10 == 7 else {},
                "status": {
                    "capacity": res,
                    "allocatable": res,
                    "conditions": [{"type": "Ready", "status": "True"}],
                },
            }
        )
        for j in range(i % 9):
            limits = {"nvidia.com/gpu": "1"}
            pods.append(
                {
                    "metadata": {"name": f"jupyter-{i}-{j}", "namespace": "jhub"},
                    "spec": {
                        "nodeName": f"gpu-node-{i:02d}",
                        "containers": [{"name": "notebook", "resources": {"limits": limits}}],
                    },
                    "status": {"phase": "Running"},
                }
            )
    return nodes, pods


def profiles(choices: list[Any] | None) -> list[dict[str, Any]]:
    out = []
    for i in range(ENTRIES):
        profile: dict[str, Any] = {
            "display_name": f"Environment {i}",
            "slug": f"env-{i:03d}",
            "description": "A Jupyter environment " * 4,
            "kubespawner_override": {"image": f"registry.example.org/thinkube/env-{i:03d}:1.0"},
        }
        if choices:
            profile["profile_options"] = {
                "gpu": {
                    "display_name": "Where to run",
                    "choices": {
                        c.placement.key: {"display_name": f"{c.label} ({c.free}/{c.total} free)"}
                        for c in choices
                    },
                }
            }
        out.append(profile)
    return out


async def timed(
    variants: dict[str, Callable[[], Awaitable[str]]], runs: int
) -> dict[str, tuple[list[float], int]]:
    """Interleaved runs, so load from elsewhere on the machine hits every variant alike."""
    sizes = {name: len(await fn()) for name, fn in variants.items()}  # warm-up
    samples: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(runs):
        for name, fn in variants.items():
            start = time.perf_counter()
            await fn()
            samples[name].append(time.perf_counter() - start)
    return {name: (samples[name], sizes[name]) for name in variants}


def report(name: str, samples: list[float], size: int) -> float:
    p95 = statistics.quantiles(samples, n=20)[18]
    med = statistics.median(samples)
    print(
        f"{name:15s} median {med * 1000:7.2f} ms  p95 {p95 * 1000:7.2f} ms  {size // 1024:5d} KiB"
    )
    return p95


async def measure(catalog_url: str, runs: int) -> None:
    from kubespawner import KubeSpawner

    from tkhub.catalog.client import CatalogClient
    from tkhub.gpu.kubernetes import inventory_from_objects
    from tkhub.selection import spawn_choices
    from tkhub.spawnpage.render import render_options_form

    nodes, pods = cluster_json()
    previous = {"image": ["env-001"], "gpu": ["auto"]}
    async with CatalogClient(catalog_url, "bench-user-token") as client:

        async def ours() -> str:
            entries = await client.list_images()
            inventory = inventory_from_objects(nodes, pods)
            return render_options_form(spawn_choices(entries, inventory), previous)

        entries = await client.list_images()
        inventory = inventory_from_objects(nodes, pods)
        gpu_choices = spawn_choices(entries, inventory).by_entry["env-000"]
        spawner = KubeSpawner(_mock=True)
        plain, with_choices = profiles(None), profiles(gpu_choices)

        async def static_envs() -> str:
            return spawner._render_options_form(plain)

        async def static_choices() -> str:
            return spawner._render_options_form(with_choices)

        async def no_http() -> str:
            inv = inventory_from_objects(nodes, pods)
            return render_options_form(spawn_choices(entries, inv), previous)

        print(
            f"{len(entries)} environments, {len(inventory.nodes)} GPU nodes, "
            f"{len(gpu_choices)} placements, {runs} interleaved runs each"
        )
        variants = {
            "static-envs": static_envs,
            "static-choices": static_choices,
            "tkhub": ours,
            "tkhub-no-http": no_http,
        }
        results = await timed(variants, runs)
    p95 = {name: report(name, *result) for name, result in results.items()}
    print(
        f"ratio tkhub/static-envs (p95): {p95['tkhub'] / p95['static-envs']:.2f}x; "
        f"tkhub/static-choices: {p95['tkhub'] / p95['static-choices']:.2f}x; "
        f"tkhub-no-http/static-envs: {p95['tkhub-no-http'] / p95['static-envs']:.2f}x "
        "(goal <= 1.5x, p95 <= 50 ms)"
    )


def write_kubeconfig(directory: str) -> str:
    """KubeSpawner loads a client config on creation; it never connects here."""
    path = Path(directory) / "kubeconfig"
    path.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: bench\n"
        "clusters: [{name: bench, cluster: {server: 'http://127.0.0.1:9'}}]\n"
        "users: [{name: bench, user: {}}]\n"
        "contexts: [{name: bench, context: {cluster: bench, user: bench}}]\n"
    )
    return str(path)


def wait_for(url: str) -> None:
    for _ in range(300):
        try:
            httpx.get(url + "/health", timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise SystemExit(f"{url} did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()
    data_dir = tempfile.mkdtemp(dir="/tmp", prefix="tkhub-bench-")
    os.environ["KUBECONFIG"] = write_kubeconfig(data_dir)
    populate(data_dir)
    hub_port, port = free_port(), free_port()
    procs = [
        multiprocessing.Process(target=run_hub_stand_in, args=(hub_port,)),
        multiprocessing.Process(target=run_catalog, args=(port, hub_port, data_dir)),
    ]
    for proc in procs:
        proc.start()
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for(url)
        asyncio.run(measure(url, args.runs))
    finally:
        for proc in procs:
            proc.terminate()
            proc.join()


if __name__ == "__main__":
    main()
