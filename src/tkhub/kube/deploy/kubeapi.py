"""A small async Kubernetes API client (httpx) for deploy, verify and uninstall.

Reads the kubeconfig (``$KUBECONFIG`` or ``~/.kube/config``; in a pod, the service
account). Objects are plain dicts; server-side apply sends them as they are.
"""

from __future__ import annotations

import base64
import json
import os
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from tkhub.kube.names import FIELD_MANAGER

SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")


@dataclass(frozen=True)
class Kind:
    prefix: str  # "api/v1", "apis/apps/v1"
    plural: str
    namespaced: bool


KINDS: dict[str, Kind] = {
    "Namespace": Kind("api/v1", "namespaces", False),
    "Node": Kind("api/v1", "nodes", False),
    "Pod": Kind("api/v1", "pods", True),
    "Event": Kind("api/v1", "events", True),
    "Secret": Kind("api/v1", "secrets", True),
    "Service": Kind("api/v1", "services", True),
    "ServiceAccount": Kind("api/v1", "serviceaccounts", True),
    "PersistentVolumeClaim": Kind("api/v1", "persistentvolumeclaims", True),
    "Deployment": Kind("apis/apps/v1", "deployments", True),
    "ClusterRole": Kind("apis/rbac.authorization.k8s.io/v1", "clusterroles", False),
    "ClusterRoleBinding": Kind("apis/rbac.authorization.k8s.io/v1", "clusterrolebindings", False),
    "StorageClass": Kind("apis/storage.k8s.io/v1", "storageclasses", False),
}


class KubeError(Exception):
    """The API refused a request or could not be reached; ``str()`` is one line."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def object_path(kind: str, name: str | None = None, namespace: str | None = None) -> str:
    info = KINDS[kind]
    path = f"/{info.prefix}"
    if info.namespaced and namespace:
        path += f"/namespaces/{namespace}"
    path += f"/{info.plural}"
    return f"{path}/{name}" if name else path


@dataclass
class Connection:
    server: str
    token: str | None = None
    verify: ssl.SSLContext | bool = True


def _pem(item: dict[str, Any], key: str) -> bytes | None:
    """``key-data`` (base64) or the file named by ``key``, as PEM bytes."""
    if item.get(f"{key}-data"):
        return base64.b64decode(item[f"{key}-data"])
    if item.get(key):
        return Path(item[key]).expanduser().read_bytes()
    return None


def _tls(cluster: dict[str, Any], user: dict[str, Any]) -> ssl.SSLContext | bool:
    """One SSL context with the cluster's CA and the user's client certificate."""
    if not str(cluster.get("server", "")).startswith("https"):
        return True
    context = ssl.create_default_context()
    if cluster.get("insecure-skip-tls-verify"):
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    ca = _pem(cluster, "certificate-authority")
    if ca:
        context.load_verify_locations(cadata=ca.decode())
    cert, key = _pem(user, "client-certificate"), _pem(user, "client-key")
    if cert and key:
        # ssl reads a key only from a file: a private 0600 file, removed at once
        with tempfile.TemporaryDirectory(prefix="tkhub-kube-") as tmp:
            (Path(tmp) / "cert.pem").write_bytes(cert)
            (Path(tmp) / "key.pem").write_bytes(key)
            os.chmod(Path(tmp) / "key.pem", 0o600)
            context.load_cert_chain(Path(tmp) / "cert.pem", Path(tmp) / "key.pem")
    return context


def load_connection(kubeconfig: Path | None = None) -> Connection:
    """The current context of the kubeconfig, or the pod's service account."""
    path = kubeconfig or Path(os.environ.get("KUBECONFIG", "~/.kube/config")).expanduser()
    if not path.exists() and (SERVICE_ACCOUNT / "token").exists():
        host, port = os.environ["KUBERNETES_SERVICE_HOST"], os.environ["KUBERNETES_SERVICE_PORT"]
        return Connection(
            f"https://{host}:{port}",
            token=(SERVICE_ACCOUNT / "token").read_text().strip(),
            verify=ssl.create_default_context(cafile=str(SERVICE_ACCOUNT / "ca.crt")),
        )
    try:
        config = yaml.safe_load(path.read_text()) or {}
    except OSError as e:
        raise KubeError(f"no kubeconfig at {path} ({e.strerror}); set KUBECONFIG") from None
    context_name = config.get("current-context")
    contexts = {c["name"]: c["context"] for c in config.get("contexts") or []}
    if context_name not in contexts:
        raise KubeError(f"{path}: current-context {context_name!r} is not defined")
    context = contexts[context_name]
    clusters = {c["name"]: c["cluster"] for c in config.get("clusters") or []}
    users = {u["name"]: u.get("user") or {} for u in config.get("users") or []}
    cluster, user = clusters[context["cluster"]], users.get(context.get("user"), {})
    return Connection(cluster["server"], token=user.get("token"), verify=_tls(cluster, user))


class KubeApi:
    """``async with KubeApi(connection) as api``: get, list, apply, create, delete."""

    def __init__(self, connection: Connection, timeout: float = 10.0) -> None:
        headers = {"Authorization": f"Bearer {connection.token}"} if connection.token else {}
        self.server = connection.server.rstrip("/")
        self._http = httpx.AsyncClient(
            base_url=self.server,
            headers=headers,
            verify=connection.verify,
            timeout=timeout,
        )

    async def __aenter__(self) -> KubeApi:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._http.aclose()

    async def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = await self._http.request(method, path, **kwargs)
        except httpx.HTTPError as e:
            raise KubeError(f"the Kubernetes API at {self.server} did not answer ({e!r})") from e
        if response.status_code >= 400:
            try:
                message = response.json().get("message", response.text)
            except ValueError:
                message = response.text
            raise KubeError(
                f"{method} {path}: {response.status_code} {message}".strip(),
                status=response.status_code,
            )
        return response

    async def get_json(self, path: str, **params: Any) -> Any:
        return (await self.request("GET", path, params=params)).json()

    async def get(self, kind: str, name: str, namespace: str | None = None) -> dict | None:
        """The object, or None when it does not exist."""
        try:
            return dict(await self.get_json(object_path(kind, name, namespace)))
        except KubeError as e:
            if e.status == 404:
                return None
            raise

    async def list(self, kind: str, namespace: str | None = None, **params: Any) -> list[dict]:
        return list((await self.get_json(object_path(kind, None, namespace), **params))["items"])

    async def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Server-side apply: tkhub owns the fields it sets, and takes them back."""
        meta = obj["metadata"]
        path = object_path(obj["kind"], meta["name"], meta.get("namespace"))
        response = await self.request(
            "PATCH",
            path,
            params={"fieldManager": FIELD_MANAGER, "force": "true"},
            content=json.dumps(obj),
            headers={"Content-Type": "application/apply-patch+yaml"},
        )
        return dict(response.json())

    async def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        meta = obj["metadata"]
        path = object_path(obj["kind"], None, meta.get("namespace"))
        return dict((await self.request("POST", path, json=obj)).json())

    async def delete(self, kind: str, name: str, namespace: str | None = None) -> bool:
        """Delete; False when it was already gone."""
        try:
            await self.request(
                "DELETE",
                object_path(kind, name, namespace),
                json={"propagationPolicy": "Background"},
            )
        except KubeError as e:
            if e.status == 404:
                return False
            raise
        return True

    async def pod_log(self, name: str, namespace: str) -> str:
        path = object_path("Pod", name, namespace) + "/log"
        return (await self.request("GET", path)).text

    async def service_proxy(
        self, namespace: str, service: str, port: str, path: str, **kwargs: Any
    ) -> httpx.Response:
        """A request to a Service through the API server (no ingress or DNS needed)."""
        url = f"/api/v1/namespaces/{namespace}/services/{service}:{port}/proxy/{path.lstrip('/')}"
        try:
            return await self._http.request(kwargs.pop("method", "GET"), url, **kwargs)
        except httpx.HTTPError as e:
            raise KubeError(f"{service} in {namespace} did not answer ({e!r})") from e
