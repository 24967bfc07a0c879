"""Kueue on the test cluster: its CRDs and webhooks from the pinned module, its manager
as a process on the host.

In a real cluster Kueue runs as a Deployment behind a webhook Service. Here the
manager runs beside the apiserver, so its webhook configurations (Kueue's own
``config/components/webhook/manifests.yaml``) are rewritten to call it by URL on
127.0.0.1 with a certificate from the cluster's CA; nothing else is changed.
"""

from __future__ import annotations

import base64
import json
import shutil
import ssl
import subprocess
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pki
import yaml

HERE = Path(__file__).resolve().parent
NAMESPACE = "kueue-system"


def module_dir() -> Path:
    out = subprocess.run(
        ["go", "list", "-m", "-f", "{{.Dir}}", "sigs.k8s.io/kueue"],
        cwd=HERE / "go" / "kueue", capture_output=True, text=True, check=True,
    )  # fmt: skip
    return Path(out.stdout.strip())


def webhook_configurations(source: Path, url: str, ca: bytes) -> list[dict[str, Any]]:
    docs = [d for d in yaml.safe_load_all(source.read_text()) if d]
    bundle = base64.b64encode(ca).decode()
    for doc in docs:
        doc["metadata"]["name"] = "kueue-" + doc["metadata"]["name"]
        for hook in doc.get("webhooks") or []:
            path = hook["clientConfig"]["service"]["path"]
            hook["clientConfig"] = {"url": f"{url}{path}", "caBundle": bundle}
    return docs


def with_conversion(crd_dir: Path, url: str, ca: bytes) -> list[dict[str, Any]]:
    """Kueue's CRDs with the conversion webhooks its own kustomization enables
    (``patches/webhook_in_*.yaml`` not commented out there: the manager converts
    only those kinds), so v1beta1 and v1beta2 clients both work."""
    kustomization = yaml.safe_load((crd_dir / "kustomization.yaml").read_text())
    patched = {
        yaml.safe_load((crd_dir / p["path"]).read_text())["metadata"]["name"]
        for p in kustomization.get("patches") or []
        if "webhook_in_" in p.get("path", "")
    }
    bundle = base64.b64encode(ca).decode()
    crds = [yaml.safe_load(p.read_text()) for p in sorted((crd_dir / "bases").glob("*.yaml"))]
    for crd in crds:
        if crd["metadata"]["name"] in patched:
            crd["spec"]["conversion"] = {"strategy": "Webhook", "webhook": {
                "clientConfig": {"url": f"{url}/convert", "caBundle": bundle},
                "conversionReviewVersions": ["v1"]}}  # fmt: skip
    return crds


def manager_config(state: Any) -> str:
    certs = state.root / "kueue-certs"
    return yaml.safe_dump({
        "apiVersion": "config.kueue.x-k8s.io/v1beta2", "kind": "Configuration",
        "namespace": NAMESPACE,
        "health": {"healthProbeBindAddress": f"127.0.0.1:{state.ports['kueue-health']}"},
        "metrics": {"bindAddress": "0"},
        "webhook": {"port": state.ports["kueue-webhook"], "host": "127.0.0.1",
                    "certDir": str(certs)},
        "leaderElection": {"leaderElect": False},
        "internalCertManagement": {"enable": False},
        "manageJobsWithoutQueueName": False,
        "integrations": {"frameworks": ["batch/job"]},
    })  # fmt: skip


def private_etc(state: Any, crt: Path, key: Path) -> list[str]:
    """A command prefix that runs the manager with its own view of /etc.

    Kueue's manager reads a metrics certificate from the fixed path
    /etc/kueue/metrics/certs, which its container image provides. On the host it
    gets that path in a private mount namespace, an overlay over /etc whose upper
    layer holds just those files, so the host's /etc is never written.
    """
    upper, work = state.root / "kueue-etc", state.root / "kueue-etc-work"
    certs = upper / "kueue" / "metrics" / "certs"
    certs.mkdir(parents=True, exist_ok=True)
    work.mkdir(exist_ok=True)
    shutil.copy(crt, certs / "tls.crt")
    shutil.copy(key, certs / "tls.key")
    layers = f"lowerdir=/etc,upperdir={upper},workdir={work}"
    mount = f"mount -t overlay tkhub-kueue-etc -o {layers} /etc"
    unshare = ["unshare", "--mount", "--propagation", "private"]
    return [*unshare, "sh", "-c", f'{mount} && exec "$@"', "kueue"]


def install(
    state: Any, kubectl: Callable[..., str], start: Callable[[Any, str], None],
    wait_healthy: Callable[[Any, str], None],
) -> None:  # fmt: skip
    source = module_dir()
    kubectl(state, "create", "namespace", NAMESPACE)
    url = f"https://127.0.0.1:{state.ports['kueue-webhook']}"
    ca = (state.root / "pki" / "ca.crt").read_bytes()
    crds = with_conversion(source / "config/components/crd", url, ca)
    kubectl(state, "apply", "--server-side", "-f", "-",
            input="\n---\n".join(json.dumps(c) for c in crds))  # fmt: skip
    kubectl(state, "wait", "--for=condition=Established", "--timeout=60s", "crd", "--all")
    root = state.root / "pki"
    crt, key = pki.ensure_cert(root, "kueue-webhook", cn="kueue-webhook", ips=("127.0.0.1",))
    certs = state.root / "kueue-certs"
    certs.mkdir(exist_ok=True)
    shutil.copy(crt, certs / "tls.crt")
    shutil.copy(key, certs / "tls.key")
    (state.root / "kueue-config.yaml").write_text(manager_config(state))
    state.commands["kueue"] = [
        *private_etc(state, crt, key),
        str(Path(state.bins["kueue"]) / "kueue"),
        f"--config={state.root / 'kueue-config.yaml'}",
        f"--kubeconfig={state.root / 'kueue.kubeconfig'}",
        "--feature-gates=VisibilityOnDemand=false",  # its API server binds every address
    ]
    start(state, "kueue")
    wait_healthy(state, "kueue")
    hooks = webhook_configurations(source / "config/components/webhook/manifests.yaml", url, ca)
    kubectl(state, "apply", "-f", "-", input="\n---\n".join(json.dumps(h) for h in hooks))


def healthy(state: Any) -> bool:
    pid = state.pids.get("kueue")
    if pid is None:
        return False
    try:
        url = f"http://127.0.0.1:{state.ports['kueue-health']}/readyz"
        with urllib.request.urlopen(url, timeout=2) as r:
            ready = r.status == 200
    except OSError:
        return False
    if not ready:
        return False
    try:  # and its webhook server answers TLS with the cluster's certificate
        ctx = ssl.create_default_context(cafile=str(state.root / "pki" / "ca.crt"))
        port = state.ports["kueue-webhook"]
        with urllib.request.urlopen(f"https://127.0.0.1:{port}/", context=ctx, timeout=2):
            return True
    except urllib.error.HTTPError:
        return True  # 404 on "/" is an answer
    except OSError:
        return False
