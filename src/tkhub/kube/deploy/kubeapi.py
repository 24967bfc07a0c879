"""``tkhub deploy``'s view of the Kubernetes API: plain-dict objects over
kubernetes_asyncio's ``ApiClient``, the client KubeSpawner, the inventory and the
jobs service use, so every part of tkhub reaches a cluster one way.

Connects as kubectl would (``load_connection``: the kubeconfig through
kubernetes_asyncio's loader; in a pod, the service account). Objects are plain
dicts; server-side apply sends them as they are. ``KINDS`` maps the kinds tkhub
manages to their API paths, so no discovery round trip is needed.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from kubernetes_asyncio import config
from kubernetes_asyncio.client import ApiClient, Configuration
from kubernetes_asyncio.config import ConfigException, kube_config

from tkhub.kube.apijson import status_message
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
    "Role": Kind("apis/rbac.authorization.k8s.io/v1", "roles", True),
    "RoleBinding": Kind("apis/rbac.authorization.k8s.io/v1", "rolebindings", True),
    "StorageClass": Kind("apis/storage.k8s.io/v1", "storageclasses", False),
    "Job": Kind("apis/batch/v1", "jobs", True),
    "CronJob": Kind("apis/batch/v1", "cronjobs", True),
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
    """What ``load_connection`` read, and the API client made from it (its TLS context
    holds the certificates, whose temporary files are gone once it is made)."""

    configuration: Configuration
    client: ApiClient
    namespace: str | None = None  # the kubeconfig context's, when it names one

    @property
    def server(self) -> str:
        return str(self.configuration.host)

    @property
    def token(self) -> str | None:
        return _bearer(self.configuration)


def _bearer(loaded: Configuration) -> str | None:
    value = loaded.api_key.get("BearerToken") or loaded.api_key.get("authorization")
    return str(value).removeprefix("Bearer ").strip() if value else None


def _kubeconfig_paths(kubeconfig: Path | None) -> list[Path]:
    if kubeconfig is not None:
        return [kubeconfig]
    listed = os.environ.get("KUBECONFIG", "~/.kube/config")
    return [Path(p).expanduser() for p in listed.split(os.pathsep) if p]


async def load_connection(kubeconfig: Path | None = None) -> Connection:
    """The current context of the kubeconfig, or the pod's service account.

    Read by kubernetes_asyncio's loader, as kubectl reads it: tokens, client
    certificates, exec credential plugins (EKS, GKE, OIDC logins), auth
    providers, merged ``KUBECONFIG`` lists and the context's namespace.
    """
    paths = _kubeconfig_paths(kubeconfig)
    loaded = Configuration()
    namespace = None
    # Certificates given inline become files for ssl: in a private directory,
    # removed once the client's SSL context (made with the ApiClient) holds them.
    with tempfile.TemporaryDirectory(prefix="tkhub-kube-") as tmp:
        try:
            if not any(p.exists() for p in paths) and kubeconfig is None and _in_cluster():
                config.load_incluster_config(client_configuration=loaded)
                namespace = _service_account_namespace()
            elif not any(p.exists() for p in paths):
                where = ", ".join(str(p) for p in paths)
                raise KubeError(f"no kubeconfig at {where}; set KUBECONFIG or --kubeconfig")
            else:
                loader = await config.load_kube_config(
                    config_file=os.pathsep.join(str(p) for p in paths),
                    client_configuration=loaded,
                    persist_config=False,
                    temp_file_path=tmp,
                )
                namespace = (loader.current_context or {}).get("context", {}).get("namespace")
            if not loaded.host:
                raise KubeError("the kubeconfig's cluster has no server address")
            return Connection(loaded, ApiClient(loaded), namespace)
        except ConfigException as e:
            raise KubeError(f"the kubeconfig cannot be used: {e}") from None
        finally:
            # The loader remembers its files by content for the next load; they
            # are gone with the directory, so it must forget them too.
            kube_config._cleanup_temp_files()


def _in_cluster() -> bool:
    return bool(os.environ.get("KUBERNETES_SERVICE_HOST")) and (SERVICE_ACCOUNT / "token").exists()


def _service_account_namespace() -> str | None:
    try:
        return (SERVICE_ACCOUNT / "namespace").read_text().strip() or None
    except OSError:
        return None


@dataclass(frozen=True)
class Answer:
    """An HTTP answer through the API server (its service proxy, a pod's log)."""

    status_code: int
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode(errors="replace")

    def json(self) -> Any:
        return json.loads(self.body)


class KubeApi:
    """``async with KubeApi(connection) as api``: get, list, apply, create, delete."""

    def __init__(self, connection: Connection, timeout: float = 10.0) -> None:
        self.server = connection.server.rstrip("/")
        self.client = connection.client
        self.timeout = timeout

    async def __aenter__(self) -> KubeApi:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.client.close()

    async def call(
        self, method: str, path: str, *, params: dict[str, Any] | None = None,
        body: Any = None, content_type: str = "application/json",
    ) -> Answer:  # fmt: skip
        """One request with the connection's credentials; any status comes back."""
        try:
            response = await self.client.call_api(
                path, method, query_params=list((params or {}).items()),
                header_params={"Accept": "application/json", "Content-Type": content_type},
                body=body, auth_settings=["BearerToken"], _preload_content=False,
                _request_timeout=self.timeout,
            )  # fmt: skip
            return Answer(response.status, await response.read())
        except (TimeoutError, aiohttp.ClientError, OSError) as e:
            raise KubeError(f"the Kubernetes API at {self.server} did not answer ({e!r})") from e

    async def request(self, method: str, path: str, **kwargs: Any) -> Answer:
        """``call``, with an error status raised as ``KubeError`` in the server's words."""
        answer = await self.call(method, path, **kwargs)
        if answer.status_code >= 400:
            raise KubeError(
                f"{method} {path}: {answer.status_code} {status_message(answer.body)}".strip(),
                status=answer.status_code,
            )
        return answer

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

    async def apply(self, obj: dict[str, Any], dry_run: bool = False) -> dict[str, Any]:
        """Server-side apply: tkhub owns the fields it sets, and takes them back.
        ``dry_run``: the API server validates and admits it, and stores nothing."""
        meta = obj["metadata"]
        path = object_path(obj["kind"], meta["name"], meta.get("namespace"))
        params = {"fieldManager": FIELD_MANAGER, "force": "true"}
        answer = await self.request(
            "PATCH", path, params={**params, "dryRun": "All"} if dry_run else params,
            body=obj, content_type="application/apply-patch+yaml",  # JSON is YAML
        )  # fmt: skip
        return dict(answer.json())

    async def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        meta = obj["metadata"]
        path = object_path(obj["kind"], None, meta.get("namespace"))
        return dict((await self.request("POST", path, body=obj)).json())

    async def delete(self, kind: str, name: str, namespace: str | None = None) -> bool:
        """Delete; False when it was already gone."""
        try:
            await self.request("DELETE", object_path(kind, name, namespace),
                               body={"propagationPolicy": "Background"})  # fmt: skip
        except KubeError as e:
            if e.status == 404:
                return False
            raise
        return True

    async def pod_log(self, name: str, namespace: str) -> str:
        path = object_path("Pod", name, namespace) + "/log"
        return (await self.request("GET", path)).text

    async def service_proxy(
        self, namespace: str, service: str, port: str, path: str, method: str = "GET"
    ) -> Answer:
        """A request to a Service through the API server (no ingress or DNS needed)."""
        url = f"/api/v1/namespaces/{namespace}/services/{service}:{port}/proxy/{path.lstrip('/')}"
        try:
            return await self.call(method, url)
        except KubeError as e:
            raise KubeError(f"{service} in {namespace} did not answer ({e})") from e
