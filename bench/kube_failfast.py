"""Time to the failure message: TkKubeSpawner vs stock KubeSpawner, same emulated cluster.

Run by hand: ``.venv/bin/python bench/kube_failfast.py [--rounds 3]``

Two real hubs talk to one Kubernetes API emulator (tests/integration/kube): one
with TkKubeSpawner (the catalog picks the image), one with stock KubeSpawner
(default settings: JupyterHub's ``start_timeout`` of 60 s; the Zero to JupyterHub
chart raises it to 300 s). Cases: an image that cannot be pulled, and a GPU request
that no node can satisfy (another workload takes both GPUs of the node first).
The time is from the spawn request to the spawn ending with a message.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "integration" / "kube"))
sys.path.insert(0, str(HERE.parent / "tests" / "support"))

import kube_support as kt  # noqa: E402
from kube_cluster import Cluster, make_node, make_root, remove_root  # noqa: E402
from kube_emulator import Emulator  # noqa: E402
from test_kube_spawn import spawn_and_follow  # noqa: E402

USERS = [f"{who}-r{n}-{case}" for who in ("tk", "st") for n in range(10) for case in ("img", "gpu")]

STOCK_EXTRA = f"""
c.JupyterHub.spawner_class = "kubespawner.KubeSpawner"
c.KubeSpawner.image = {kt.LAB_IMAGE!r}
c.KubeSpawner.start_timeout = {{start_timeout}}
def _apply(spawner, options):
    if options.get("case") == "bad-image":
        spawner.image = {kt.BROKEN_IMAGE!r}
    if options.get("case") == "gpu":
        spawner.extra_resource_limits = {{{{"nvidia.com/gpu": "1"}}}}
        spawner.node_selector = {{{{"kubernetes.io/hostname": "gpu-1"}}}}
        spawner.tolerations = [{{{{"key": "nvidia.com/gpu", "operator": "Exists"}}}}]
c.KubeSpawner.apply_user_options = _apply
"""

CASES = {
    "bad image": ({"image": ["broken"]}, {"case": "bad-image"}),
    "unschedulable GPU": ({"image": ["gpu-lab"], "gpu": ["node:gpu-1"]}, {"case": "gpu"}),
}


def start_cluster() -> kt.Kube:
    root = make_root()
    emulator = Emulator()
    emulator.start_in_thread()
    cluster = Cluster(emulator, root, kt.images(root))
    emulator.call(cluster.start())
    kube = kt.Kube(emulator, cluster, root, root / "kubeconfig")
    kt.write_kubeconfig(kube.kubeconfig, emulator.url)
    for node in (make_node("cpu-a"), make_node("cpu-b"), make_node("gpu-1", gpus=2)):
        kube.put("nodes", node)
    kube.put("namespaces", {"metadata": {"name": kt.NAMESPACE}})
    return kube


def run_case(hub: kt.Hub, user: str, options: dict) -> tuple[float, str]:
    with kt.httpx.Client(headers={"Authorization": f"token {hub.tokens['admin']}"}) as http:
        http.post(f"{hub.api_url}/users/{user}")
    seconds, events = spawn_and_follow(hub, user, options, limit=600)
    last = events[-1] if events else {}
    return seconds, str(last.get("message", ""))[:120]


def run_round(hub: kt.Hub, prefix: str, which: int) -> dict[str, tuple[float, str]]:
    """Both cases at once, for one hub; {case: (seconds, message)}."""
    with ThreadPoolExecutor(2) as pool:
        futures = {
            case: pool.submit(
                run_case,
                hub,
                f"{prefix}-{'gpu' if 'GPU' in case else 'img'}",
                options[which],
            )
            for case, options in CASES.items()
        }
        return {case: future.result() for case, future in futures.items()}


def main(rounds: int = 3, stock_start_timeout: int = 60) -> None:
    kube = start_cluster()
    squatter = ("pods", "default", "someone-else")

    async def race(pod: dict) -> None:
        """Someone else takes the node's GPUs after the hub's check, before scheduling."""
        if (
            pod["metadata"]["name"].endswith("-gpu")
            and kube.get("pods", "someone-else", "default") is None
        ):
            await kube.cluster.squat("gpu-1", 2)

    allow = f"c.Authenticator.allowed_users = {set(USERS)!r}\n"
    tk_hub, tk_proc = kt.start_hub(kube, extra=allow)
    stock = STOCK_EXTRA.format(start_timeout=stock_start_timeout)
    stock_hub, stock_proc = kt.start_hub(kube, extra=allow + stock)
    kt.seed_catalog(tk_hub)
    results: dict[tuple[str, str], list[float]] = {}
    messages: dict[tuple[str, str], str] = {}

    def record(spawner: str, answers: dict[str, tuple[float, str]]) -> None:
        for case, (seconds, message) in answers.items():
            results.setdefault((case, spawner), []).append(seconds)
            messages[(case, spawner)] = message
        kube.emulator.call(kube.emulator.store.remove(*squatter))
        time.sleep(1)

    try:
        kube.cluster.before_schedule = race
        for n in range(rounds):
            record("TkKubeSpawner", run_round(tk_hub, f"tk-r{n}", 0))
        # stock does not look at the inventory: the GPUs are simply taken beforehand
        kube.cluster.before_schedule = None
        kube.emulator.call(kube.cluster.squat("gpu-1", 2))
        record("KubeSpawner", run_round(stock_hub, "st-r0", 1))  # waits out start_timeout
    finally:
        kt.stop_hub(tk_hub, tk_proc)
        kt.stop_hub(stock_hub, stock_proc)
        kube.emulator.call(kube.cluster.shutdown())
        kube.emulator.stop_thread()
        remove_root(kube.root)
    print(f"{'case':20} {'spawner':15} {'seconds (median)':>17}  message")
    for (case, spawner), times in sorted(results.items()):
        print(
            f"{case:20} {spawner:15} {statistics.median(times):17.2f}  {messages[(case, spawner)]}"
        )
    for case in CASES:
        ratio = statistics.median(results[(case, "KubeSpawner")]) / statistics.median(
            results[(case, "TkKubeSpawner")]
        )
        print(f"{case}: TkKubeSpawner answers {ratio:.1f}x sooner")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="TkKubeSpawner rounds")
    parser.add_argument(
        "--stock-start-timeout",
        type=int,
        default=60,
        help="stock KubeSpawner's start_timeout (JupyterHub's default 60 s); keep it above"
        " the hub's 10 s slow_spawn_timeout, or the timeout answers the POST itself",
    )
    args = parser.parse_args()
    asyncio.set_event_loop(asyncio.new_event_loop())
    main(args.rounds, args.stock_start_timeout)
