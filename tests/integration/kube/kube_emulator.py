"""A small Kubernetes API server emulator (aiohttp) for the kubernetes-mode tests.

It serves what KubeSpawner and ``tkhub deploy`` use: create, get, list (label and
field selectors), watch from a resourceVersion, delete, server-side apply PATCH,
pod logs, ``/version`` and the Service proxy. Objects are plain JSON in memory.
What a cluster would *do* (schedule, pull, run) lives in ``cluster.py``, which
reacts to the changes published here.

Run alone: ``python tests/integration/kube/emulator.py`` prints its URL.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import json
import threading
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp
import yaml
from aiohttp import web

Obj = dict[str, Any]


@dataclass(frozen=True)
class Resource:
    group_version: str  # "v1", "apps/v1"
    plural: str
    kind: str
    namespaced: bool


RESOURCES = {
    r.plural: r
    for r in (
        Resource("v1", "namespaces", "Namespace", False),
        Resource("v1", "nodes", "Node", False),
        Resource("v1", "pods", "Pod", True),
        Resource("v1", "events", "Event", True),
        Resource("v1", "secrets", "Secret", True),
        Resource("v1", "services", "Service", True),
        Resource("v1", "serviceaccounts", "ServiceAccount", True),
        Resource("v1", "configmaps", "ConfigMap", True),
        Resource("v1", "persistentvolumeclaims", "PersistentVolumeClaim", True),
        Resource("apps/v1", "deployments", "Deployment", True),
        Resource("rbac.authorization.k8s.io/v1", "clusterroles", "ClusterRole", False),
        Resource(
            "rbac.authorization.k8s.io/v1", "clusterrolebindings", "ClusterRoleBinding", False
        ),
        Resource("rbac.authorization.k8s.io/v1", "roles", "Role", True),
        Resource("rbac.authorization.k8s.io/v1", "rolebindings", "RoleBinding", True),
        Resource("storage.k8s.io/v1", "storageclasses", "StorageClass", False),
        Resource("batch/v1", "jobs", "Job", True),
        Resource("batch/v1", "cronjobs", "CronJob", True),
        Resource("kueue.x-k8s.io/v1beta2", "localqueues", "LocalQueue", True),
    )
}


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def status_body(code: int, reason: str, message: str) -> Obj:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "code": code,
        "reason": reason,
        "message": message,
    }


def _lookup(obj: Obj, dotted: str) -> str:
    value: Any = obj
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return "" if value is None else str(value)


def matches(obj: Obj, labels: str | None, fields: str | None) -> bool:
    """Equality, inequality and existence label selectors; field (in)equality."""
    have = (obj.get("metadata") or {}).get("labels") or {}
    for term in filter(None, (labels or "").split(",")):
        if "!=" in term:
            k, v = term.split("!=", 1)
            if have.get(k.strip()) == v.strip():
                return False
        elif "=" in term:
            k, v = term.replace("==", "=").split("=", 1)
            if have.get(k.strip()) != v.strip():
                return False
        elif term.strip() not in have:
            return False
    for term in filter(None, (fields or "").split(",")):
        if "!=" in term:
            k, v = term.split("!=", 1)
            if _lookup(obj, k) == v:
                return False
        else:
            k, v = term.replace("==", "=").split("=", 1)
            if _lookup(obj, k) != v:
                return False
    return True


def merge(into: Any, patch: Any) -> Any:
    """Apply semantics, simplified: maps merge, everything else is replaced."""
    if isinstance(into, dict) and isinstance(patch, dict):
        out = dict(into)
        for k, v in patch.items():
            out[k] = merge(into.get(k), v) if v is not None else None
        return {k: v for k, v in out.items() if v is not None}
    return copy.deepcopy(patch)


class Store:
    """Objects keyed by (plural, namespace, name), with a change history for watches."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str, str], Obj] = {}
        self.history: list[tuple[int, str, str, Obj]] = []  # (rv, type, plural, object)
        self._rv = itertools.count(1)
        self.last_rv = 0
        self.changed = asyncio.Condition()
        self.listeners: list[Callable[[str, str, Obj], Awaitable[None] | None]] = []

    def get(self, plural: str, namespace: str, name: str) -> Obj | None:
        return self.objects.get((plural, namespace, name))

    def list(self, plural: str, namespace: str | None = None) -> list[Obj]:
        return [
            o
            for (p, ns, _), o in self.objects.items()
            if p == plural and (namespace is None or ns == namespace)
        ]

    async def _publish(self, kind: str, plural: str, obj: Obj) -> None:
        self.history.append((self.last_rv, kind, plural, copy.deepcopy(obj)))
        del self.history[:-5000]
        async with self.changed:
            self.changed.notify_all()
        for listener in list(self.listeners):
            result = listener(kind, plural, obj)
            if asyncio.iscoroutine(result):
                await result

    def _stamp(self, obj: Obj) -> None:
        self.last_rv = next(self._rv)
        obj["metadata"]["resourceVersion"] = str(self.last_rv)

    async def put(self, plural: str, obj: Obj) -> tuple[Obj, bool]:
        """Create or replace; returns (stored object, created)."""
        res = RESOURCES[plural]
        meta = obj.setdefault("metadata", {})
        key = (plural, meta.get("namespace", "") if res.namespaced else "", meta["name"])
        old = self.objects.get(key)
        obj.setdefault("apiVersion", res.group_version)
        obj.setdefault("kind", res.kind)
        if old is None:
            meta.setdefault("uid", str(uuid.uuid4()))
            meta.setdefault("creationTimestamp", now_iso())
        else:
            meta["uid"] = old["metadata"]["uid"]
            meta["creationTimestamp"] = old["metadata"]["creationTimestamp"]
        self._stamp(obj)
        self.objects[key] = obj
        await self._publish("ADDED" if old is None else "MODIFIED", plural, obj)
        return obj, old is None

    async def update(
        self, plural: str, namespace: str, name: str, change: Callable[[Obj], None]
    ) -> Obj | None:
        obj = self.get(plural, namespace, name)
        if obj is None:
            return None
        change(obj)
        self._stamp(obj)
        await self._publish("MODIFIED", plural, obj)
        return obj

    async def remove(self, plural: str, namespace: str, name: str) -> Obj | None:
        obj = self.objects.pop((plural, namespace, name), None)
        if obj is not None:
            self._stamp(obj)
            await self._publish("DELETED", plural, obj)
        return obj


ADMIN_TOKEN = "emulated-admin-token"  # the only credential the emulated API server accepts


class Emulator:
    """The API server: ``await start()`` / ``stop()``, or ``start_in_thread()``.

    Every API request needs ``Authorization: Bearer <ADMIN_TOKEN>`` (401 without), so
    a client that lost its credentials on the way fails as against a real cluster.
    """

    def __init__(self, version: str = "1.31") -> None:
        self.version = version
        self.store: Store | None = None
        self.url = ""
        self.service_backends: dict[tuple[str, str], str] = {}  # (ns, svc) -> http://ip:port
        self.delete_hooks: list[Callable[[str, Obj], Awaitable[bool]]] = []
        self.log_files: dict[tuple[str, str], str] = {}  # (ns, pod) -> path
        self.requests: list[tuple[str, str]] = []
        self._runner: web.AppRunner | None = None
        self._watches: set[web.StreamResponse] = set()
        self._stopping = False
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ----------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        self.store = Store()
        self.loop = asyncio.get_running_loop()
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_get("/version", self._version)
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        bound = site._server.sockets[0].getsockname()  # type: ignore[union-attr]
        self.url = f"http://{bound[0]}:{bound[1]}"
        return self.url

    async def stop(self) -> None:
        """End open watches first (as an API server closes them), then the server."""
        self._stopping = True
        if self.store is not None:
            async with self.store.changed:
                self.store.changed.notify_all()
        await asyncio.sleep(0.05)
        if self._runner is not None:
            await self._runner.cleanup()

    def start_in_thread(self) -> str:
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            loop.run_until_complete(self.start())
            ready.set()
            loop.run_forever()

        self._thread = threading.Thread(target=run, name="kube-emulator", daemon=True)
        self._thread.start()
        ready.wait(10)
        return self.url

    def call(self, coro: Awaitable[Any], timeout: float = 30) -> Any:
        """Run a coroutine on the emulator's loop from another thread."""
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)  # type: ignore[arg-type]

    def stop_thread(self) -> None:
        if self.loop is None or self._thread is None:
            return
        self.call(self.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)

    # --- handlers -----------------------------------------------------------------

    async def _version(self, request: web.Request) -> web.Response:
        major, minor = self.version.split(".")[:2]
        return web.json_response(
            {"major": major, "minor": minor, "gitVersion": f"v{major}.{minor}.0-emulated"}
        )

    def _parse(self, path: str) -> tuple[str, str | None, str | None, list[str]] | None:
        """(plural, namespace, name, rest) from an /api or /apis path."""
        parts = [p for p in path.split("/") if p]
        if parts[:2] == ["api", "v1"]:
            rest = parts[2:]
        elif parts[:1] == ["apis"] and len(parts) >= 3:
            rest = parts[3:]
        else:
            return None
        namespace = None
        if len(rest) >= 3 and rest[0] == "namespaces":
            namespace, rest = rest[1], rest[2:]
        if not rest or rest[0] not in RESOURCES:
            return None
        return rest[0], namespace, rest[1] if len(rest) > 1 else None, rest[2:]

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        self.requests.append((request.method, request.path))
        if request.headers.get("Authorization") != f"Bearer {ADMIN_TOKEN}":
            return web.json_response(status_body(401, "Unauthorized", "Unauthorized"), status=401)
        parsed = self._parse(request.path)
        if parsed is None:
            return web.json_response(
                status_body(404, "NotFound", f"no route {request.path}"), status=404
            )
        plural, namespace, name, rest = parsed
        if rest and rest[0] == "proxy" and plural == "services":
            return await self._proxy(request, namespace or "", name or "", rest[1:])
        if rest == ["log"] and plural == "pods":
            return self._log(namespace or "", name or "")
        res = RESOURCES[plural]
        ns = (namespace or "") if res.namespaced else ""
        if request.method == "GET" and name is None:
            if request.query.get("watch") in ("1", "true", "True"):
                return await self._watch(request, plural, namespace)
            return self._list(request, plural, namespace if res.namespaced else None)
        if request.method == "GET":
            obj = self.store.get(plural, ns, name)  # type: ignore[union-attr,arg-type]
            return self._found(obj, plural, name)
        if request.method == "POST":
            return await self._create(request, plural, ns)
        if request.method == "PATCH":
            return await self._apply(request, plural, ns, name or "")
        if request.method == "DELETE":
            return await self._delete(plural, ns, name or "")
        return web.json_response(status_body(405, "MethodNotAllowed", request.method), status=405)

    def _found(self, obj: Obj | None, plural: str, name: str | None) -> web.Response:
        if obj is None:
            return web.json_response(
                status_body(404, "NotFound", f'{plural} "{name}" not found'), status=404
            )
        return web.json_response(obj)

    def _list(self, request: web.Request, plural: str, namespace: str | None) -> web.Response:
        items = [
            o
            for o in self.store.list(plural, namespace)  # type: ignore[union-attr]
            if matches(o, request.query.get("labelSelector"), request.query.get("fieldSelector"))
        ]
        kind = RESOURCES[plural].kind
        return web.json_response(
            {
                "kind": f"{kind}List",
                "apiVersion": RESOURCES[plural].group_version,
                "metadata": {"resourceVersion": str(self.store.last_rv)},  # type: ignore[union-attr]
                "items": items,
            }
        )

    async def _watch(
        self, request: web.Request, plural: str, namespace: str | None
    ) -> web.StreamResponse:
        store = self.store
        assert store is not None
        labels, fields = request.query.get("labelSelector"), request.query.get("fieldSelector")
        timeout = float(request.query.get("timeoutSeconds", "300"))
        since = int(request.query.get("resourceVersion") or 0)
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        self._watches.add(response)
        deadline = asyncio.get_running_loop().time() + timeout

        def wanted(obj: Obj) -> bool:
            ns = (obj.get("metadata") or {}).get("namespace", "")
            return (namespace is None or ns == namespace) and matches(obj, labels, fields)

        try:
            if since == 0:
                for obj in store.list(plural, namespace):
                    if wanted(obj):
                        await response.write(
                            json.dumps({"type": "ADDED", "object": obj}).encode() + b"\n"
                        )
                since = store.last_rv
            while True:
                for rv, kind, p, obj in list(store.history):
                    if rv > since and p == plural and wanted(obj):
                        await response.write(
                            json.dumps({"type": kind, "object": obj}).encode() + b"\n"
                        )
                since = max(since, store.last_rv)
                left = deadline - asyncio.get_running_loop().time()
                if left <= 0 or self._stopping:
                    break
                async with store.changed:
                    try:
                        await asyncio.wait_for(store.changed.wait(), min(left, 5))
                    except TimeoutError:
                        pass
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self._watches.discard(response)
        return response

    async def _body(self, request: web.Request) -> Obj:
        text = await request.text()
        return dict(yaml.safe_load(text) or {})

    async def _create(self, request: web.Request, plural: str, ns: str) -> web.Response:
        obj = await self._body(request)
        meta = obj.setdefault("metadata", {})
        if RESOURCES[plural].namespaced:
            meta["namespace"] = ns
            if plural != "events" and self.store.get("namespaces", "", ns) is None:  # type: ignore[union-attr]
                return web.json_response(
                    status_body(404, "NotFound", f'namespaces "{ns}" not found'), status=404
                )
        if self.store.get(plural, ns, meta.get("name", "")) is not None:  # type: ignore[union-attr]
            msg = f'{plural} "{meta.get("name")}" already exists'
            return web.json_response(status_body(409, "AlreadyExists", msg), status=409)
        if plural == "pods":
            # As the API server does on create: every client (KubeSpawner reads
            # pod["status"]["phase"]) sees a status from the first event on.
            obj.setdefault("status", {}).setdefault("phase", "Pending")
        stored, _ = await self.store.put(plural, obj)  # type: ignore[union-attr]
        return web.json_response(stored, status=201)

    async def _apply(self, request: web.Request, plural: str, ns: str, name: str) -> web.Response:
        patch = await self._body(request)
        if request.content_type != "application/apply-patch+yaml":
            return web.json_response(
                status_body(415, "UnsupportedMediaType", request.content_type), status=415
            )
        if request.query.get("fieldManager") is None:
            return web.json_response(
                status_body(400, "BadRequest", "fieldManager is required"), status=400
            )
        patch.setdefault("metadata", {})["name"] = name
        if RESOURCES[plural].namespaced:
            patch["metadata"]["namespace"] = ns
            if self.store.get("namespaces", "", ns) is None:  # type: ignore[union-attr]
                return web.json_response(
                    status_body(404, "NotFound", f'namespaces "{ns}" not found'), status=404
                )
        old = self.store.get(plural, ns, name)  # type: ignore[union-attr]
        obj = merge(copy.deepcopy(old), patch) if old else patch
        if request.query.get("dryRun") == "All":  # validated and admitted; nothing stored
            return web.json_response(obj, status=200 if old else 201)
        stored, created = await self.store.put(plural, obj)  # type: ignore[union-attr]
        return web.json_response(stored, status=201 if created else 200)

    async def _delete(self, plural: str, ns: str, name: str) -> web.Response:
        store = self.store
        assert store is not None
        obj = store.get(plural, ns, name)
        if obj is None:
            return web.json_response(
                status_body(404, "NotFound", f'{plural} "{name}" not found'), status=404
            )
        for hook in self.delete_hooks:
            if await hook(plural, obj):  # a controller finishes the deletion itself
                return web.json_response(obj)
        await store.remove(plural, ns, name)
        if plural == "namespaces":
            for p, o_ns, o_name in list(store.objects):
                if o_ns == name:
                    await self._delete(p, o_ns, o_name)
        return web.json_response(obj)

    def _log(self, ns: str, name: str) -> web.Response:
        path = self.log_files.get((ns, name))
        if path is None:
            return web.json_response(
                status_body(404, "NotFound", f'pods "{name}" not found'), status=404
            )
        with open(path, errors="replace") as f:
            return web.Response(text=f.read())

    async def _proxy(
        self, request: web.Request, ns: str, svc_port: str, rest: list[str]
    ) -> web.StreamResponse:
        svc = svc_port.split(":")[0]
        backend = self.service_backends.get((ns, svc))
        if backend is None or self.store.get("services", ns, svc) is None:  # type: ignore[union-attr]
            return web.json_response(
                status_body(
                    503, "ServiceUnavailable", f'no endpoints available for service "{svc}"'
                ),
                status=503,
            )
        url = backend.rstrip("/") + "/" + "/".join(rest)
        # The API server authenticated the caller and drops its Authorization
        # header: nothing of the caller's credentials reaches the service.
        headers = {
            k: v for k, v in request.headers.items() if k.lower() in ("accept", "content-type")
        }
        async with aiohttp.ClientSession() as session:
            try:
                async with session.request(
                    request.method,
                    url,
                    params=request.query,
                    headers=headers,
                    data=await request.read(),
                    allow_redirects=False,
                ) as upstream:
                    body = await upstream.read()
                    return web.Response(
                        body=body, status=upstream.status, content_type=upstream.content_type
                    )
            except aiohttp.ClientError as e:
                return web.json_response(
                    status_body(503, "ServiceUnavailable", repr(e)), status=503
                )


if __name__ == "__main__":

    async def _main() -> None:
        emulator = Emulator()
        print(await emulator.start(), flush=True)
        await asyncio.Event().wait()

    asyncio.run(_main())
