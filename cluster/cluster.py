#!/usr/bin/env python3
"""A real Kubernetes control plane on this machine's loopback, for tests and trials.

    python3 cluster/cluster.py up       build (or reuse) and start; print the kubeconfig
    python3 cluster/cluster.py status   what runs, and the nodes
    python3 cluster/cluster.py down     stop everything and remove the cluster directory
    python3 cluster/cluster.py stop|start COMPONENT   one component (faults in tests)

It runs upstream programs built from pinned Go modules (``cluster/build.sh``):
etcd, kube-apiserver (TLS, ``Node,RBAC``, default admission plugins),
kube-controller-manager, kube-scheduler, kwok managing the fake GPU nodes of
``cluster/nodes.yaml`` with the pod lifecycle of ``cluster/kwok-stages.yaml``,
and, with ``--kueue``, Kueue's manager with its CRDs and webhooks. Every listener
is on 127.0.0.1 with a free port; everything lives in one directory
(``--dir``, default ``$TKHUB_CLUSTER_DIR`` or ``~/.local/state/tkhub-cluster``)
that ``down`` removes. The admin kubeconfig is ``DIR/admin.kubeconfig``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path

import kueue_setup
import pki

HERE = Path(__file__).resolve().parent
SERVICE_CIDR = "10.96.0.0/16"
SERVICE_IP = "10.96.0.1"  # the first address of SERVICE_CIDR: the kubernetes Service
ORDER = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok", "kueue")


class ClusterError(Exception):
    """A step failed; the message names it and where its log is."""


@dataclass
class State:
    dir: str
    ports: dict[str, int] = field(default_factory=dict)
    commands: dict[str, list[str]] = field(default_factory=dict)
    pids: dict[str, int] = field(default_factory=dict)
    bins: dict[str, str] = field(default_factory=dict)

    @property
    def root(self) -> Path:
        return Path(self.dir)

    @property
    def kubeconfig(self) -> Path:
        return self.root / "admin.kubeconfig"

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.ports['kube-apiserver']}"

    def save(self) -> None:
        pki.write_private(self.root / "state.json", json.dumps(asdict(self), indent=2))

    @classmethod
    def load(cls, root: Path) -> State | None:
        path = root / "state.json"
        return cls(**json.loads(path.read_text())) if path.exists() else None


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _ephemeral_ports() -> range:
    try:
        low, high = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    except (OSError, ValueError):
        low, high = 32768, 60999
    return range(low, high + 1)


def free_ports(count: int) -> list[int]:
    """``count`` distinct free loopback ports outside the kernel's ephemeral range.

    A port the kernel hands out for bind(0) lies in the ephemeral range, where any
    outgoing connection (the apiserver opens hundreds) may take it before the
    component that is to listen on it starts, sometimes a minute later.
    """
    ephemeral = _ephemeral_ports()
    candidates = [p for p in range(20000, 32768) if p not in ephemeral]
    random.shuffle(candidates)
    chosen: list[int] = []
    for port in candidates:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        chosen.append(port)
        if len(chosen) == count:
            return chosen
    raise ClusterError("no free loopback ports between 20000 and 32767")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie of ours is not alive
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except (OSError, IndexError):
        return False


def build(modules: list[str]) -> dict[str, str]:
    """Each module's bin directory, built once into the cache by build.sh."""
    proc = subprocess.run(
        ["bash", str(HERE / "build.sh"), *modules], stdout=subprocess.PIPE, text=True
    )
    if proc.returncode != 0:
        raise ClusterError("building the cluster's programs failed (see the output above)")
    return dict(zip(modules, proc.stdout.split(), strict=True))


def kubeconfig_text(server: str, ca: Path, user: str, *, cert: Path | None = None,
                    key: Path | None = None, token: str | None = None) -> str:  # fmt: skip
    creds = {"token": token} if token else {
        "client-certificate": str(cert), "client-key": str(key)}  # fmt: skip
    return json.dumps({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "tkhub-test", "cluster": {
            "server": server, "certificate-authority": str(ca)}}],
        "users": [{"name": user, "user": creds}],
        "contexts": [{"name": user, "context": {"cluster": "tkhub-test", "user": user}}],
        "current-context": user,
    }, indent=2)  # fmt: skip


def make_pki(state: State) -> None:
    root = state.root / "pki"
    pki.ensure_ca(root)
    pki.ensure_service_account_keys(root)
    pki.ensure_cert(
        root, "apiserver", cn="kube-apiserver", ips=("127.0.0.1", SERVICE_IP),
        dns=("localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
             "kubernetes.default.svc.cluster.local"),
    )  # fmt: skip
    users = {
        "admin": ("tkhub-admin", "system:masters"),
        "kube-controller-manager": ("system:kube-controller-manager", ""),
        "kube-scheduler": ("system:kube-scheduler", ""),
        "kwok": ("tkhub-kwok", "system:masters"),
        "kueue": ("tkhub-kueue", "system:masters"),
    }
    for name, (cn, org) in users.items():
        crt, key = pki.ensure_cert(root, f"{name}-client", cn=cn, org=org)
        path = state.root / ("admin.kubeconfig" if name == "admin" else f"{name}.kubeconfig")
        pki.write_private(
            path, kubeconfig_text(state.server, root / "ca.crt", name, cert=crt, key=key)
        )


def commands(state: State) -> dict[str, list[str]]:
    r, p, b = state.root, state.ports, state.bins
    k8s = Path(b["kubernetes"])
    pk = r / "pki"
    etcd_client = f"http://127.0.0.1:{p['etcd']}"
    etcd_peer = f"http://127.0.0.1:{p['etcd-peer']}"
    return {
        "etcd": [
            str(Path(b["etcd"]) / "server"),
            "--name=tkhub-test",
            f"--data-dir={r / 'etcd'}",
            f"--listen-client-urls={etcd_client}",
            f"--advertise-client-urls={etcd_client}",
            f"--listen-peer-urls={etcd_peer}",
            f"--initial-advertise-peer-urls={etcd_peer}",
            f"--initial-cluster=tkhub-test={etcd_peer}",
            "--listen-metrics-urls=",
            "--log-level=warn",
            "--quota-backend-bytes=2147483648",
        ],
        "kube-apiserver": [
            str(k8s / "kube-apiserver"),
            f"--etcd-servers={etcd_client}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={p['kube-apiserver']}",
            f"--tls-cert-file={pk / 'apiserver.crt'}",
            f"--tls-private-key-file={pk / 'apiserver.key'}",
            f"--client-ca-file={pk / 'ca.crt'}",
            f"--service-account-key-file={pk / 'sa.pub'}",
            f"--service-account-signing-key-file={pk / 'sa.key'}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--authorization-mode=Node,RBAC",
            "--allow-privileged=true",
            # Kueue's webhooks are served on the host, reached by URL, not by Service.
            "--endpoint-reconciler-type=none",
        ],
        "kube-controller-manager": [
            str(k8s / "kube-controller-manager"),
            f"--kubeconfig={r / 'kube-controller-manager.kubeconfig'}",
            f"--authentication-kubeconfig={r / 'kube-controller-manager.kubeconfig'}",
            f"--authorization-kubeconfig={r / 'kube-controller-manager.kubeconfig'}",
            "--bind-address=127.0.0.1",
            f"--secure-port={p['kube-controller-manager']}",
            f"--service-account-private-key-file={pk / 'sa.key'}",
            f"--root-ca-file={pk / 'ca.crt'}",
            "--use-service-account-credentials=true",
            f"--cluster-signing-cert-file={pk / 'ca.crt'}",
            f"--cluster-signing-key-file={pk / 'ca.key'}",
            "--controllers=*",
            "--leader-elect=false",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
        ],
        "kube-scheduler": [
            str(k8s / "kube-scheduler"),
            f"--kubeconfig={r / 'kube-scheduler.kubeconfig'}",
            f"--authentication-kubeconfig={r / 'kube-scheduler.kubeconfig'}",
            f"--authorization-kubeconfig={r / 'kube-scheduler.kubeconfig'}",
            "--bind-address=127.0.0.1",
            f"--secure-port={p['kube-scheduler']}",
            "--leader-elect=false",
        ],
        "kwok": [
            str(Path(b["kwok"]) / "kwok"),
            f"--kubeconfig={r / 'kwok.kubeconfig'}",
            f"--config={HERE / 'kwok-stages.yaml'}",
            "--manage-all-nodes=false",
            "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
            f"--server-address=127.0.0.1:{p['kwok']}",
            "--cidr=10.244.0.0/16",
            "--node-ip=127.0.0.1",
            "--node-port=0",
        ],
    }


def start(state: State, name: str) -> None:
    logs = state.root / "logs"
    logs.mkdir(exist_ok=True)
    with open(logs / f"{name}.log", "ab") as out:
        proc = subprocess.Popen(
            state.commands[name], stdout=out, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True, cwd=state.root,
        )  # fmt: skip
    state.pids[name] = proc.pid
    state.save()


def stop(state: State, name: str, timeout: float = 10) -> None:
    pid = state.pids.pop(name, None)
    state.save()
    if pid is None or not alive(pid):
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while alive(pid) and time.monotonic() < deadline:
        _reap(pid)
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    _reap(pid)


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def _ssl_context(state: State) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(state.root / "pki" / "ca.crt"))
    pk = state.root / "pki"
    ctx.load_cert_chain(str(pk / "admin-client.crt"), str(pk / "admin-client.key"))
    return ctx


def healthy(state: State, name: str) -> bool:
    """Whether ``name`` answers its health check now."""
    pid = state.pids.get(name)
    if pid is None or not alive(pid):
        return False
    if name == "etcd":
        url, ctx = f"http://127.0.0.1:{state.ports['etcd']}/health", None
    elif name in ("kube-apiserver", "kube-controller-manager", "kube-scheduler"):
        path = "/readyz" if name == "kube-apiserver" else "/healthz"
        url, ctx = f"https://127.0.0.1:{state.ports[name]}{path}", _ssl_context(state)
        if name != "kube-apiserver":
            ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE  # self-signed serving
    elif name == "kwok":
        url, ctx = f"http://127.0.0.1:{state.ports['kwok']}/healthz", None
    else:
        return kueue_setup.healthy(state)
    try:
        with urllib.request.urlopen(url, context=ctx, timeout=2) as r:
            return bool(r.status == 200)
    except (OSError, ValueError):
        return False


def wait_healthy(state: State, name: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if healthy(state, name):
            return
        pid = state.pids.get(name)
        if pid is None or not alive(pid):
            break
        time.sleep(0.2)
    tail = (state.root / "logs" / f"{name}.log").read_text(errors="replace")[-3000:]
    raise ClusterError(f"{name} did not become healthy; the end of its log:\n{tail}")


def kubectl(state: State, *args: str, input: str | None = None) -> str:
    cmd = [str(Path(state.bins["kubernetes"]) / "kubectl"), f"--kubeconfig={state.kubeconfig}"]
    proc = subprocess.run([*cmd, *args], input=input, capture_output=True, text=True)
    if proc.returncode != 0:
        raise ClusterError(f"kubectl {' '.join(args)}: {proc.stderr.strip()}")
    return proc.stdout


def wait_nodes_ready(state: State, timeout: float = 60) -> None:
    """Every node Ready, and the node lifecycle controller's not-ready taint gone
    (until then the scheduler places nothing there)."""
    deadline = time.monotonic() + timeout
    waiting: list[str] = []
    while time.monotonic() < deadline:
        nodes = json.loads(kubectl(state, "get", "nodes", "-o", "json"))["items"]
        waiting = [n["metadata"]["name"] for n in nodes if not _schedulable_now(n)]
        if nodes and not waiting:
            return
        time.sleep(0.3)
    raise ClusterError(f"nodes not ready after {timeout:.0f} s: {', '.join(waiting)}")


def _schedulable_now(node: dict) -> bool:
    conditions = node.get("status", {}).get("conditions") or []
    ready = any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)
    taints = node.get("spec", {}).get("taints") or []
    lifecycle = [t for t in taints if t["key"].startswith("node.kubernetes.io/")]
    return ready and all(t["key"] == "node.kubernetes.io/unschedulable" for t in lifecycle)


def hub_service_account(state: State) -> None:
    """Namespace ``tkhub`` with the hub's service account and a kubeconfig for it.
    Its rights are what tkhub's RBAC grants, once `tkhub deploy apply` binds them."""
    manifest = "\n---\n".join([
        json.dumps({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "tkhub"}}),
        json.dumps({"apiVersion": "v1", "kind": "ServiceAccount",
                    "metadata": {"name": "hub", "namespace": "tkhub"}}),
    ])  # fmt: skip
    kubectl(state, "apply", "-f", "-", input=manifest)
    token = kubectl(state, "create", "token", "hub", "-n", "tkhub", "--duration=24h").strip()
    pki.write_private(
        state.root / "hub.kubeconfig",
        kubeconfig_text(state.server, state.root / "pki" / "ca.crt", "hub", token=token),
    )


def up(root: Path, *, kueue: bool) -> State:
    old = State.load(root)
    wanted = [n for n in ORDER if kueue or n != "kueue"]
    if old is not None and all(healthy(old, n) for n in wanted):
        log(f"cluster already up in {root}")
        return old
    if old is not None:
        log("a cluster was left half-running; stopping it first")
        down(root)
    root.mkdir(parents=True, exist_ok=True)
    root.chmod(0o700)
    state = State(dir=str(root))
    state.bins = build(["etcd", "kubernetes", "kwok"] + (["kueue"] if kueue else []))
    names = ("etcd", "etcd-peer", "kube-apiserver", "kube-controller-manager",
             "kube-scheduler", "kwok", "kueue-webhook", "kueue-health")  # fmt: skip
    state.ports = dict(zip(names, free_ports(len(names)), strict=True))
    make_pki(state)
    state.commands = commands(state)
    state.save()
    try:
        for name in ("etcd", "kube-apiserver"):
            log(f"starting {name}")
            start(state, name)
            wait_healthy(state, name)
        for name in ("kube-controller-manager", "kube-scheduler", "kwok"):
            log(f"starting {name}")
            start(state, name)
        for name in ("kube-controller-manager", "kube-scheduler", "kwok"):
            wait_healthy(state, name)
        hub_service_account(state)
        log("creating the nodes of cluster/nodes.yaml")
        kubectl(state, "apply", "-f", str(HERE / "nodes.yaml"))
        wait_nodes_ready(state)
        if kueue:
            kueue_setup.install(state, kubectl, start, wait_healthy)
    except Exception:
        down(root, quiet=True)
        raise
    return state


def down(root: Path, quiet: bool = False) -> None:
    state = State.load(root)
    if state is not None:
        for name in reversed(ORDER):
            if name in state.pids:
                quiet or log(f"stopping {name}")
                stop(state, name)
    if root.exists():
        shutil.rmtree(root)


def status(root: Path) -> int:
    state = State.load(root)
    if state is None:
        print(f"no cluster in {root}")
        return 1
    ok = True
    for name in ORDER:
        if name not in state.commands:
            continue
        up_now = healthy(state, name)
        ok &= up_now
        print(f"{name:24} {'running' if up_now else 'DOWN'}")
    if healthy(state, "kube-apiserver"):
        print(kubectl(state, "get", "nodes", "-L", "nvidia.com/gpu.product"), end="")
    print(f"KUBECONFIG={state.kubeconfig}")
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    default_dir = os.environ.get("TKHUB_CLUSTER_DIR") or str(
        Path.home() / ".local" / "state" / "tkhub-cluster"
    )
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("action", choices=("up", "down", "status", "stop", "start"))
    parser.add_argument("component", nargs="?", choices=ORDER)
    parser.add_argument("--dir", default=default_dir, help="the cluster's directory")
    parser.add_argument("--kueue", action="store_true", help="also install and run Kueue")
    args = parser.parse_args(argv)
    root = Path(args.dir).resolve()
    try:
        if args.action == "up":
            state = up(root, kueue=args.kueue)
            print(f"KUBECONFIG={state.kubeconfig}")
            return 0
        if args.action == "down":
            down(root)
            return 0
        if args.action == "status":
            return status(root)
        state = State.load(root)
        if state is None or args.component is None:
            raise ClusterError(f"{args.action} needs a component and a cluster in {root}")
        if args.action == "stop":
            stop(state, args.component)
        else:
            start(state, args.component)
            wait_healthy(state, args.component)
        return 0
    except ClusterError as e:
        log(f"cluster: {e}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
