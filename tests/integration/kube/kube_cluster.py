"""What the emulated cluster does: schedule, pull, run, bind volumes, report ready.

- **Scheduler**: places a pod on a Ready, uncordoned node whose labels match its
  nodeSelector, whose NoSchedule taints it tolerates, and that has enough free
  extended resources (``nvidia.com/gpu``, MIG profiles); otherwise the pod stays
  Pending with ``PodScheduled=False`` and a ``FailedScheduling`` event worded as
  kube-scheduler words it ("0/2 nodes are available: 2 Insufficient nvidia.com/gpu.").
- **Image check**: only references in ``images`` pull; others get ``ErrImagePull``
  then ``ImagePullBackOff`` (or ``InvalidImageName``), with kubelet-style events.
- **Fake kubelet**: each running pod gets its own loopback address (127.0.0.x) and
  its container runs as a local process with the pod's environment. The container
  filesystem is emulated by rewriting mount paths: every path under a volume
  mount (in command, args, env and workingDir) is rewritten to the host directory
  backing that volume, and ``$HOME`` is the pod's own directory. ``0.0.0.0`` in
  the singleuser URL becomes the pod address, so the server binds only there.
- **Volumes**: a PVC binds when its storage class exists; a class whose provisioner
  is ``nfs.csi.k8s.io`` (played by one directory seen by every node: RWX that works),
  ``emulated.local/node-local`` gives each node its own copy (the failure the
  verify step must catch).
- **Deployments** report their replicas ready (their images are not run).
- **Jobs**: one pod each, Complete or Failed as it ends; a container's
  ``terminationMessagePath`` is a file whose text becomes ``terminated.message``;
  deleting a Job deletes its pods.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import os
import re
import shutil
import signal
import socket
import tempfile
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kube_emulator import Emulator, Obj, now_iso

# A real RWX provisioner's name, so preflight judges the emulated class as a real one.
SHARED_PROVISIONER = "nfs.csi.k8s.io"
NODE_LOCAL_PROVISIONER = "emulated.local/node-local"
VALID_IMAGE = re.compile(r"^[a-z0-9]+([._/:@-][a-zA-Z0-9_.-]+)*$")
HOME = "/home/jovyan"


@dataclass
class Image:
    """What running an image means here: an entrypoint and extra environment."""

    entrypoint: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)


def make_node(
    name: str, *, gpus: int = 0, product: str = "NVIDIA-H100-80GB-HBM3", taint: bool = True
) -> Obj:
    allocatable = {"cpu": "16", "memory": "64Gi", "pods": "110"}
    labels = {"kubernetes.io/hostname": name}
    spec: dict[str, Any] = {}
    if gpus:
        allocatable["nvidia.com/gpu"] = str(gpus)
        labels |= {"nvidia.com/gpu.present": "true", "nvidia.com/gpu.product": product}
        if taint:
            spec["taints"] = [{"key": "nvidia.com/gpu", "effect": "NoSchedule"}]
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": labels},
        "spec": spec,
        "status": {
            "allocatable": allocatable,
            "capacity": dict(allocatable),
            "conditions": [{"type": "Ready", "status": "True"}],
            "nodeInfo": {"kubeletVersion": "v1.31.0"},
        },
    }


GPU_RESOURCE_PREFIX = "nvidia.com/"  # nvidia.com/gpu and the MIG profiles


def container(name: str, limits: dict[str, str]) -> Obj:
    return {"name": name, "image": "other", "resources": {"limits": limits}}


def gpus_requested(pod: Obj) -> dict[str, int]:
    """The GPUs kube-scheduler counts for ``pod``: the containers' sum, or the
    largest init container where that is more (sidecar init containers are not
    modelled). Written here rather than taken from tkhub, so that the emulator
    checks tkhub's own accounting instead of repeating it."""
    counted: dict[str, int] = {}
    for c in pod["spec"].get("containers") or []:
        for k, v in ((c.get("resources") or {}).get("limits") or {}).items():
            if k.startswith(GPU_RESOURCE_PREFIX):
                counted[k] = counted.get(k, 0) + int(v)
    for c in pod["spec"].get("initContainers") or []:
        for k, v in ((c.get("resources") or {}).get("limits") or {}).items():
            if k.startswith(GPU_RESOURCE_PREFIX):
                counted[k] = max(counted.get(k, 0), int(v))
    return counted


def _tolerates(pod: Obj, taint: Obj) -> bool:
    for t in pod["spec"].get("tolerations") or []:
        if t.get("operator") == "Exists" and t.get("key") in (None, "", taint["key"]):
            return True
        if t.get("key") == taint["key"] and t.get("value") == taint.get("value"):
            return True
    return False


class Cluster:
    """Scheduler, image check, kubelet and controllers over an ``Emulator``."""

    def __init__(self, emulator: Emulator, root: Path, images: dict[str, Image]) -> None:
        self.api = emulator
        self.root = root
        self.images = images
        self.processes: dict[tuple[str, str], asyncio.subprocess.Process] = {}
        self.ips: dict[tuple[str, str], str] = {}
        self._ip_pool = (f"127.0.{b}.{c}" for b in itertools.count(90) for c in range(2, 255))
        self._pending: set[tuple[str, str]] = set()
        self._tasks: set[asyncio.Task] = set()
        self.fake_bin = root / "gpu-bin"
        # Called with each pod before it is placed: a test makes a race happen here.
        self.before_schedule: Any = None

    # --- wiring -------------------------------------------------------------------

    async def start(self) -> None:
        store = self.api.store
        assert store is not None
        store.listeners.append(self._on_change)
        self.api.delete_hooks.append(self._on_delete)
        self._spawn(self._retry_pending())
        self._write_fake_nvidia_smi()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _on_change(self, kind: str, plural: str, obj: Obj) -> None:
        if kind != "ADDED":
            return
        if plural == "pods" and not obj["spec"].get("nodeName"):
            self._spawn(self._schedule(obj["metadata"]["namespace"], obj["metadata"]["name"]))
        elif plural == "persistentvolumeclaims":
            self._spawn(self._bind(obj))
        elif plural == "deployments":
            self._spawn(self._deployment_ready(obj))
        elif plural == "jobs":
            self._spawn(self._run_job(obj))

    async def event(self, pod: Obj, reason: str, message: str, type_: str = "Normal") -> None:
        meta = pod["metadata"]
        name = f"{meta['name']}.{os.urandom(6).hex()}"
        await self.api.store.put(  # type: ignore[union-attr]
            "events",
            {
                "metadata": {"name": name, "namespace": meta["namespace"]},
                "involvedObject": {
                    "kind": "Pod",
                    "name": meta["name"],
                    "namespace": meta["namespace"],
                    "uid": meta["uid"],
                    "apiVersion": "v1",
                },
                "reason": reason,
                "message": message,
                "type": type_,
                "lastTimestamp": now_iso(),
                "firstTimestamp": now_iso(),
                "eventTime": None,
                "count": 1,
                "source": {"component": "emulated-cluster"},
            },
        )

    async def _update_pod(self, ns: str, name: str, change: Any) -> Obj | None:
        return await self.api.store.update("pods", ns, name, change)  # type: ignore[union-attr]

    # --- scheduler ----------------------------------------------------------------

    def free_gpus(self, node: Obj) -> dict[str, int]:
        """What the scheduler sees free on ``node``, per GPU resource."""
        alloc = node["status"].get("allocatable") or {}
        free = {k: int(v) for k, v in alloc.items() if k.startswith(GPU_RESOURCE_PREFIX)}
        for pod in self.api.store.list("pods"):  # type: ignore[union-attr]
            done = pod.get("status", {}).get("phase") in ("Succeeded", "Failed")
            if pod["spec"].get("nodeName") == node["metadata"]["name"] and not done:
                for k, n in gpus_requested(pod).items():
                    free[k] = free.get(k, 0) - n
        return free

    def _fit(self, pod: Obj, nodes: Iterable[Obj]) -> tuple[Obj | None, str]:
        wanted = gpus_requested(pod)
        selector = pod["spec"].get("nodeSelector") or {}
        reasons: dict[str, int] = {}
        nodes = list(nodes)
        for node in nodes:
            labels = node["metadata"].get("labels") or {}
            ready = any(
                c["type"] == "Ready" and c["status"] == "True" for c in node["status"]["conditions"]
            )
            why = ""
            if not ready or node["spec"].get("unschedulable"):
                why = "node(s) were unschedulable"
            elif any(labels.get(k) != v for k, v in selector.items()):
                why = "node(s) didn't match Pod's node affinity/selector"
            elif any(not _tolerates(pod, t) for t in node["spec"].get("taints") or []):
                t = next(t for t in node["spec"]["taints"] if not _tolerates(pod, t))
                why = f"node(s) had untolerated taint {{{t['key']}: }}"
            else:
                free = self.free_gpus(node)
                short = [k for k, n in wanted.items() if n > 0 and free.get(k, 0) < n]
                if short:
                    why = f"Insufficient {short[0]}"
            if not why:
                return node, ""
            reasons[why] = reasons.get(why, 0) + 1
        detail = ", ".join(f"{n} {why}" for why, n in sorted(reasons.items()))
        return None, f"0/{len(nodes)} nodes are available: {detail}."

    async def _schedule(self, ns: str, name: str) -> None:
        pod = self.api.store.get("pods", ns, name)  # type: ignore[union-attr]
        if pod is None or pod["spec"].get("nodeName"):
            return
        if self.before_schedule is not None:
            await self.before_schedule(pod)
        node, message = self._fit(pod, self.api.store.list("nodes"))  # type: ignore[union-attr]
        if node is None:
            first = (ns, name) not in self._pending
            self._pending.add((ns, name))

            def unschedulable(p: Obj) -> None:
                p["status"] = {
                    "phase": "Pending",
                    "conditions": [
                        {
                            "type": "PodScheduled",
                            "status": "False",
                            "reason": "Unschedulable",
                            "message": message,
                        }
                    ],
                }

            await self._update_pod(ns, name, unschedulable)
            if first:
                await self.event(pod, "FailedScheduling", message, "Warning")
            return
        self._pending.discard((ns, name))
        node_name = node["metadata"]["name"]

        def bind(p: Obj) -> None:
            p["spec"]["nodeName"] = node_name
            p["status"] = {
                "phase": "Pending",
                "hostIP": "127.0.0.1",
                "conditions": [{"type": "PodScheduled", "status": "True"}],
            }

        pod = await self._update_pod(ns, name, bind)
        if pod is not None:
            await self.event(pod, "Scheduled", f"Successfully assigned {ns}/{name} to {node_name}")
            self._spawn(self._kubelet(ns, name))

    async def _retry_pending(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            for ns, name in list(self._pending):
                await self._schedule(ns, name)

    async def squat(self, node: str, gpus: int, name: str = "someone-else") -> None:
        """Another workload takes ``gpus`` GPUs on ``node`` (bound, running, no process)."""
        limits = {"nvidia.com/gpu": str(gpus)}
        await self.workload(node, name, {"containers": [container("main", limits)]})

    async def workload(self, node: str, name: str, spec: Obj, phase: str = "Running") -> None:
        """A pod of another workload, already bound to ``node`` and in ``phase``."""
        await self.api.store.put(  # type: ignore[union-attr]
            "pods",
            {
                "metadata": {"name": name, "namespace": "default", "labels": {}},
                "spec": {"nodeName": node, **spec},
                "status": {"phase": phase},
            },
        )

    # --- kubelet ------------------------------------------------------------------

    def _waiting(self, pod: Obj, reason: str, message: str) -> Any:
        def change(p: Obj) -> None:
            p["status"]["containerStatuses"] = [
                {
                    "name": c["name"],
                    "image": c["image"],
                    "ready": False,
                    "restartCount": 0,
                    "imageID": "",
                    "state": {"waiting": {"reason": reason, "message": message}},
                }
                for c in p["spec"]["containers"]
            ]

        return change

    async def _pull(self, ns: str, name: str, pod: Obj) -> bool:
        for c in pod["spec"]["containers"]:
            image = c["image"]
            if not VALID_IMAGE.match(image):
                msg = f'Failed to apply default image tag "{image}": couldn\'t parse image name'
                await self._update_pod(ns, name, self._waiting(pod, "InvalidImageName", msg))
                await self.event(pod, "InspectFailed", msg, "Warning")
                return False
            if image not in self.images:
                await self.event(pod, "Pulling", f'Pulling image "{image}"')
                msg = (
                    f'Failed to pull image "{image}": rpc error: code = NotFound desc = '
                    f'failed to pull and unpack image "{image}": not found'
                )
                await self._update_pod(ns, name, self._waiting(pod, "ErrImagePull", msg))
                await self.event(pod, "Failed", msg, "Warning")
                await asyncio.sleep(1.0)
                back = f'Back-off pulling image "{image}"'
                await self._update_pod(ns, name, self._waiting(pod, "ImagePullBackOff", back))
                await self.event(pod, "BackOff", back, "Normal")
                return False
        return True

    def _next_ip(self, port: int) -> str:
        for ip in self._ip_pool:
            with socket.socket() as s:
                try:
                    s.bind((ip, port))
                except OSError:
                    continue
            return ip
        raise RuntimeError("no free loopback address")

    def _volume_dir(self, pod: Obj, volume: Obj, sub_path: str) -> Path:
        ns, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
        if "persistentVolumeClaim" in volume:
            claim = volume["persistentVolumeClaim"]["claimName"]
            pvc = self.api.store.get("persistentvolumeclaims", ns, claim) or {}  # type: ignore[union-attr]
            sc = (
                self.api.store.get(
                    "storageclasses", "", (pvc.get("spec") or {}).get("storageClassName", "")
                )
                or {}
            )  # type: ignore[union-attr]
            base = self.root / "volumes" / ns / claim
            if sc.get("provisioner") == NODE_LOCAL_PROVISIONER:
                base = base / "node" / pod["spec"]["nodeName"]
        else:  # emptyDir and anything else: the pod's own
            base = self.root / "pods" / ns / name / "volumes" / volume["name"]
        path = base / sub_path if sub_path else base
        if path.is_file():  # a subPath naming a file an init container wrote
            return path
        path.mkdir(parents=True, exist_ok=True)
        os.chmod(path, 0o777)
        return path

    def _mounts(self, pod: Obj, container: Obj, home: Path) -> list[tuple[str, str]]:
        """(container path, host path) pairs, longest first, with the home last."""
        volumes = {v["name"]: v for v in pod["spec"].get("volumes") or []}
        pairs = []
        for m in container.get("volumeMounts") or []:
            volume = volumes.get(m["name"])
            if volume is None or "secret" in volume or "configMap" in volume:
                continue
            host = self._volume_dir(pod, volume, m.get("subPath", ""))
            pairs.append((m["mountPath"].rstrip("/"), str(host)))
            if m["mountPath"].startswith(HOME + "/"):  # also reachable through $HOME
                link = home / m["mountPath"][len(HOME) + 1 :]
                link.parent.mkdir(parents=True, exist_ok=True)
                if not link.exists():
                    link.symlink_to(host)
        pairs.sort(key=lambda p: -len(p[0]))
        return [*pairs, (HOME, str(home))]

    @staticmethod
    def _rewrite(value: str, mounts: list[tuple[str, str]], ip: str) -> str:
        value = value.replace("0.0.0.0", ip)
        for inside, host in mounts:
            value = re.sub(rf"(?<![\w/.]){re.escape(inside)}(?=/|\b|$)", host, value)
        return value

    def _environment(
        self, pod: Obj, container: Obj, mounts: list, ip: str, home: Path
    ) -> dict[str, str]:
        secrets = {}
        env = {
            "PATH": os.environ["PATH"],
            "HOME": str(home),
            "HOSTNAME": pod["metadata"]["name"],
            "LANG": "C.UTF-8",
        }
        image = self.images[container["image"]]
        env.update(image.env)
        if gpus_requested(pod):
            env["PATH"] = f"{self.fake_bin}:{env['PATH']}"
            env["EMULATED_GPUS"] = str(sum(gpus_requested(pod).values()))
        for item in container.get("env") or []:
            if "value" in item:
                env[item["name"]] = self._rewrite(str(item["value"]), mounts, ip)
            elif "secretKeyRef" in (item.get("valueFrom") or {}):
                ref = item["valueFrom"]["secretKeyRef"]
                secrets[item["name"]] = ref
        env["JUPYTERHUB_SERVICE_URL"] = env.get("JUPYTERHUB_SERVICE_URL", "").replace("0.0.0.0", ip)
        return env

    async def _init_containers(self, ns: str, name: str, pod: Obj) -> bool:
        """Run each init container to its end first, as the kubelet does; False (the pod
        failed, Init:Error) when one exits non-zero."""
        home = self.root / "pods" / ns / name / "home"
        home.mkdir(parents=True, exist_ok=True)
        for init in pod["spec"].get("initContainers") or []:
            mounts = self._mounts(pod, init, home)
            image = self.images[init["image"]]
            argv = list(init.get("command") or image.entrypoint) + list(init.get("args") or [])
            argv = [self._rewrite(a, mounts, "127.0.0.1") for a in argv]
            env = self._environment(pod, init, mounts, "127.0.0.1", home)
            log = self.root / "pods" / ns / name / f"init-{init['name']}.txt"
            with open(log, "wb") as out:
                process = await asyncio.create_subprocess_exec(
                    *argv, cwd=str(home), env=env, stdout=out, stderr=asyncio.subprocess.STDOUT
                )
                code = await process.wait()
            if code != 0:

                def failed(p: Obj, code: int = code) -> None:
                    p["status"]["phase"] = "Failed"
                    p["status"]["reason"] = f"Init:Error (exit {code})"

                await self._update_pod(ns, name, failed)
                return False
        return True

    async def _kubelet(self, ns: str, name: str) -> None:
        pod = self.api.store.get("pods", ns, name)  # type: ignore[union-attr]
        if pod is None or not await self._pull(ns, name, pod):
            return
        if not await self._init_containers(ns, name, pod):
            return
        container = pod["spec"]["containers"][0]
        ports = [p["containerPort"] for p in container.get("ports") or []] or [8888]
        ip = self._next_ip(ports[0])
        home = self.root / "pods" / ns / name / "home"
        home.mkdir(parents=True, exist_ok=True)
        mounts = self._mounts(pod, container, home)
        termination = self.root / "pods" / ns / name / "termination-log"
        termination.touch(mode=0o666)
        if container.get("terminationMessagePath"):  # the kubelet's file, read at exit
            mounts.insert(0, (container["terminationMessagePath"], str(termination)))
        image = self.images[container["image"]]
        argv = list(container.get("command") or image.entrypoint) + list(
            container.get("args") or []
        )
        argv = [self._rewrite(a, mounts, ip) for a in argv]
        cwd = self._rewrite(container.get("workingDir") or HOME, mounts, ip)
        Path(cwd).mkdir(parents=True, exist_ok=True)
        log = self.root / "pods" / ns / name / "log.txt"
        self.api.log_files[(ns, name)] = str(log)
        env = self._environment(pod, container, mounts, ip, home)
        with open(log, "wb") as out:
            process = await asyncio.create_subprocess_exec(
                *argv,
                cwd=cwd,
                env=env,
                stdout=out,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
            )
        self.processes[(ns, name)] = process
        self.ips[(ns, name)] = ip

        def running(p: Obj) -> None:
            p["status"].update(phase="Running", podIP=ip, podIPs=[{"ip": ip}], startTime=now_iso())
            p["status"]["conditions"] = [
                {"type": t, "status": "True"}
                for t in ("PodScheduled", "Initialized", "ContainersReady", "Ready")
            ]
            p["status"]["containerStatuses"] = [
                {
                    "name": c["name"],
                    "image": c["image"],
                    "ready": True,
                    "restartCount": 0,
                    "imageID": "",
                    "started": True,
                    "state": {"running": {"startedAt": now_iso()}},
                }
                for c in p["spec"]["containers"]
            ]

        await self.event(pod, "Started", f"Started container {container['name']}")
        await self._update_pod(ns, name, running)
        code = await process.wait()

        message = termination.read_text(errors="replace")[:4096]

        def exited(p: Obj) -> None:
            p["status"]["phase"] = "Succeeded" if code == 0 else "Failed"
            for cs in p["status"].get("containerStatuses") or []:
                cs["ready"] = False
                cs["state"] = {
                    "terminated": {
                        "exitCode": code,
                        "reason": "Completed" if code == 0 else "Error",
                        **({"message": message} if message else {}),
                    }
                }

        if self.processes.pop((ns, name), None) is not None:
            await self._update_pod(ns, name, exited)

    async def _on_delete(self, plural: str, obj: Obj) -> bool:
        if plural == "jobs":  # the garbage collector: a Job's pods go with it
            ns, job_name = obj["metadata"]["namespace"], obj["metadata"]["name"]
            for pod in self.api.store.list("pods", ns):  # type: ignore[union-attr]
                if pod["metadata"].get("labels", {}).get("job-name") == job_name:
                    await self._on_delete("pods", pod)
            return False
        if plural != "pods":
            return False
        key = (obj["metadata"]["namespace"], obj["metadata"]["name"])
        self._pending.discard(key)
        process = self.processes.pop(key, None)
        self.ips.pop(key, None)

        async def finish() -> None:
            if process is not None and process.returncode is None:
                try:
                    os.killpg(process.pid, signal.SIGTERM)
                    await asyncio.wait_for(process.wait(), 5)
                except (ProcessLookupError, TimeoutError):
                    with_kill = process.returncode is None
                    if with_kill:
                        os.killpg(process.pid, signal.SIGKILL)
                        await process.wait()
            await self.api.store.remove("pods", *key)  # type: ignore[union-attr]

        await self.api.store.update(
            "pods", *key, lambda p: p["metadata"].__setitem__("deletionTimestamp", now_iso())
        )  # type: ignore[union-attr]
        self._spawn(finish())
        return True

    async def shutdown(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for process in list(self.processes.values()):
            if process.returncode is None:
                try:
                    os.killpg(process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                await process.wait()
        self.processes.clear()

    # --- controllers ---------------------------------------------------------------

    async def _bind(self, pvc: Obj) -> None:
        await asyncio.sleep(0.05)
        sc_name = (pvc.get("spec") or {}).get("storageClassName", "")
        if self.api.store.get("storageclasses", "", sc_name) is None:  # type: ignore[union-attr]
            return  # stays Pending, as with a missing class

        def bound(p: Obj) -> None:
            p["status"] = {"phase": "Bound", "accessModes": p["spec"]["accessModes"]}

        meta = pvc["metadata"]
        await self.api.store.update(
            "persistentvolumeclaims", meta["namespace"], meta["name"], bound
        )  # type: ignore[union-attr]

    async def _run_job(self, job: Obj) -> None:
        """The Job controller, for one pod: create it from the template, follow it,
        record Complete or Failed on the Job (backoffLimit retries are not emulated)."""
        meta = job["metadata"]
        ns, name = meta["namespace"], meta["name"]
        pod_name = f"{name}-{os.urandom(3).hex()}"
        template = copy.deepcopy(job["spec"]["template"])
        labels = {
            **(template.get("metadata") or {}).get("labels", {}),
            "job-name": name,
            "controller-uid": meta.get("uid", ""),
        }  # as the real Job controller labels
        pod = {"apiVersion": "v1", "kind": "Pod", "spec": template["spec"],
               "metadata": {"name": pod_name, "namespace": ns, "labels": labels,
                            "uid": str(uuid.uuid4())}}  # fmt: skip
        pod["status"] = {"phase": "Pending"}
        await self.api.store.put("pods", pod)  # type: ignore[union-attr]  # scheduled on ADDED
        while True:
            current = self.api.store.get("pods", ns, pod_name)  # type: ignore[union-attr]
            phase = ((current or {}).get("status") or {}).get("phase")
            if current is None or phase in ("Succeeded", "Failed"):
                break
            await asyncio.sleep(0.1)
        done = "Complete" if phase == "Succeeded" else "Failed"

        def finished(j: Obj) -> None:
            j.setdefault("status", {}).update(
                {
                    "succeeded" if done == "Complete" else "failed": 1,
                    "conditions": [{"type": done, "status": "True"}],
                }  # fmt: skip
            )

        await self.api.store.update("jobs", ns, name, finished)  # type: ignore[union-attr]

    async def _deployment_ready(self, dep: Obj) -> None:
        await asyncio.sleep(0.05)

        def ready(d: Obj) -> None:
            n = d["spec"].get("replicas", 1)
            d["status"] = {"replicas": n, "readyReplicas": n, "availableReplicas": n}

        meta = dep["metadata"]
        await self.api.store.update("deployments", meta["namespace"], meta["name"], ready)  # type: ignore[union-attr]

    def _write_fake_nvidia_smi(self) -> None:
        """GPU nodes' containers see an ``nvidia-smi`` (the hardware boundary, faked)."""
        self.fake_bin.mkdir(parents=True, exist_ok=True)
        script = self.fake_bin / "nvidia-smi"
        script.write_text(
            "#!/bin/sh\n"
            'i=0; while [ "$i" -lt "${EMULATED_GPUS:-0}" ]; do\n'
            '  echo "GPU $i: NVIDIA H100 80GB HBM3 (UUID: GPU-0000-$i)"\n'
            "  i=$((i+1)); done\n"
        )
        script.chmod(0o755)


def make_root() -> Path:
    root = Path(tempfile.mkdtemp(dir="/tmp", prefix="tkhub-kube-"))
    os.chmod(root, 0o755)
    return root


def remove_root(root: Path) -> None:
    shutil.rmtree(root, ignore_errors=True)
