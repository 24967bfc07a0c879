"""Time to the failure message: TkKubeSpawner vs stock KubeSpawner, same real cluster.

Run by hand: ``.venv/bin/python bench/kube_failfast.py [--rounds 3]``

A real control plane (``cluster/cluster.py``: kube-apiserver, kube-scheduler,
kwok nodes) and two real hubs: one with TkKubeSpawner (the catalog picks the
image), one with stock KubeSpawner (default settings: JupyterHub's
``start_timeout`` of 60 s; the Zero to JupyterHub chart raises it to 300 s).
Cases: an image that cannot be pulled (kwok reports ErrImagePull for the
``missing.invalid`` registry); a GPU on a node whose only GPU another workload
holds (tkhub reads that from the inventory, stock waits for the scheduler); and a
CPU request no node can meet (both reach kube-scheduler's refusal). The time is
from the spawn request to the spawn ending with a message.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "integration" / "kube"))
sys.path.insert(0, str(HERE.parent / "tests" / "support"))

import kube_support as kt  # noqa: E402
from real_cluster import RealCluster, pod, start_cluster, stop_cluster  # noqa: E402
from test_cluster_spawn import volumes  # noqa: E402
from test_kube_spawn import spawn_and_follow  # noqa: E402

CASE_KEYS = ("img", "gpu", "cpu")
USERS = [f"{who}-r{n}-{case}" for who in ("tk", "st") for n in range(10) for case in CASE_KEYS]

STOCK_EXTRA = f"""
c.JupyterHub.spawner_class = "kubespawner.KubeSpawner"
c.KubeSpawner.image = {kt.LAB_IMAGE!r}
c.KubeSpawner.start_timeout = {{start_timeout}}
def _apply(spawner, options):
    if options.get("case") == "bad-image":
        spawner.image = {kt.BROKEN_IMAGE!r}
    if options.get("case") == "gpu":
        spawner.extra_resource_limits = {{{{"nvidia.com/gpu": "1"}}}}
        spawner.node_selector = {{{{"kubernetes.io/hostname": "gpu-l4"}}}}
        spawner.tolerations = [{{{{"key": "nvidia.com/gpu", "operator": "Exists"}}}}]
    if options.get("case") == "cpu":
        spawner.cpu_guarantee = 64
c.KubeSpawner.apply_user_options = _apply
"""
BIG = {"name": "big", "display_name": "Big", "image": kt.LAB_IMAGE, "gpu": "none",
       "resources": {"cpu_guarantee": "64", "cpu_limit": "64"}}  # fmt: skip

CASES = {
    "bad image": ({"image": ["broken"]}, {"case": "bad-image"}),
    "no GPU free": ({"image": ["gpu-lab"], "gpu": ["node:gpu-l4"]}, {"case": "gpu"}),
    "CPU shortage": ({"image": ["big"]}, {"case": "cpu"}),
}
KEYS = dict(zip(CASES, CASE_KEYS, strict=True))


def hold_the_l4(cluster: RealCluster, namespace: str) -> None:
    """Another workload takes gpu-l4's only GPU."""
    squatter = pod("someone-else", limits={"nvidia.com/gpu": "1"}, node="gpu-l4", gpu=True)
    squatter["metadata"]["namespace"] = namespace
    cluster.apply(squatter)
    cluster.wait_for("the squatter to run", lambda: (cluster.pod(namespace, "someone-else") or {})
                     .get("status", {}).get("phase") == "Running")  # fmt: skip


def run_case(hub: kt.Hub, user: str, options: dict) -> tuple[float, str]:
    with kt.httpx.Client(headers={"Authorization": f"token {hub.tokens['admin']}"}) as http:
        http.post(f"{hub.api_url}/users/{user}")
    seconds, events = spawn_and_follow(hub, user, options, limit=600)
    last = events[-1] if events else {}
    return seconds, str(last.get("message", ""))[:120]


def run_round(hub: kt.Hub, prefix: str, which: int) -> dict[str, tuple[float, str]]:
    """Every case at once, for one hub; {case: (seconds, message)}."""
    with ThreadPoolExecutor(len(CASES)) as pool:
        futures = {
            case: pool.submit(run_case, hub, f"{prefix}-{KEYS[case]}", options[which])
            for case, options in CASES.items()
        }
        return {case: future.result() for case, future in futures.items()}


def main(rounds: int = 3, stock_start_timeout: int = 60) -> None:
    work = Path(tempfile.mkdtemp(prefix="tkhub-bench-"))
    cluster = start_cluster(work / "cluster")
    namespace = "bench"
    cluster.kubectl("create", "namespace", namespace)
    cluster.apply(*volumes(namespace))
    cluster.kubectl("wait", "pvc", "--all", "-n", namespace, "--timeout=60s",
                    "--for=jsonpath={.status.phase}=Bound")  # fmt: skip
    hold_the_l4(cluster, namespace)
    allow = f"c.Authenticator.allowed_users = {set(USERS)!r}\n"
    tk_hub, tk_proc = kt.start_hub(cluster, extra=allow, namespace=namespace)
    stock = STOCK_EXTRA.format(start_timeout=stock_start_timeout)
    stock_hub, stock_proc = kt.start_hub(cluster, extra=allow + stock, namespace=namespace)
    kt.seed_catalog(tk_hub, (BIG,))
    results: dict[tuple[str, str], list[float]] = {}
    messages: dict[tuple[str, str], str] = {}

    def record(spawner: str, answers: dict[str, tuple[float, str]]) -> None:
        for case, (seconds, message) in answers.items():
            results.setdefault((case, spawner), []).append(seconds)
            messages[(case, spawner)] = message
        time.sleep(1)

    try:
        for n in range(rounds):
            record("TkKubeSpawner", run_round(tk_hub, f"tk-r{n}", 0))
        record("KubeSpawner", run_round(stock_hub, "st-r0", 1))  # waits out start_timeout
    finally:
        kt.stop_hub(tk_hub, tk_proc)
        kt.stop_hub(stock_hub, stock_proc)
        stop_cluster(cluster)
        kt.remove_root(work)
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
