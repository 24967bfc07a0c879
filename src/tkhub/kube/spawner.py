"""``TkKubeSpawner``: KubeSpawner with the tkhub selection, and pods that fail fast.

The catalog entry gives the image and resources; the placement becomes GPU limits,
node selectors and tolerations (``tkhub.kube.placement``). While the pod starts,
a watcher reads its status and events from KubeSpawner's own reflectors: an image
that cannot be pulled, or a GPU request no node can satisfy, ends the spawn at once
with the Kubernetes reason in plain words and deletes the pod, instead of waiting
out ``start_timeout`` (300 s by default).
"""

from __future__ import annotations

import asyncio
import copy
import time
from contextlib import suppress
from typing import Any, NoReturn

from kubespawner import KubeSpawner
from traitlets import Float, Unicode

from tkhub.errors import SpawnRefused
from tkhub.examples import examples_folder
from tkhub.gpu.model import Inventory
from tkhub.kube.deploy.cluster import ClusterService
from tkhub.kube.inventory import read_inventory
from tkhub.kube.names import (
    client_mount,
    examples_init_container,
    tools_init_container,
    tools_volume,
)
from tkhub.kube.placement import kubespawner_overrides
from tkhub.kube.podstatus import StartFailure, start_failure, unschedulable_seen
from tkhub.quantity import QuantityError, cpu_cores, memory_bytes
from tkhub.selection import Selection, SelectionError
from tkhub.settings import ServiceBase
from tkhub.spawner import TkSpawnerMixin

# Traits a selection sets; reset to their configured values before each start.
SELECTION_TRAITS = (
    "image",
    "cpu_limit",
    "cpu_guarantee",
    "mem_limit",
    "mem_guarantee",
    "extra_resource_limits",
    "extra_resource_guarantees",
    "node_selector",
    "tolerations",
    "environment",
    "init_containers",
    "volumes",
    "volume_mounts",
)


class TkKubeSpawner(TkSpawnerMixin, KubeSpawner):
    """KubeSpawner that starts the catalog entry and placement the user selected."""

    fail_fast_grace_seconds = Float(
        2.0,
        config=True,
        help="""
        Seconds a pod may stay unschedulable (no GPU free, or any other reason
        kube-scheduler gives) before the spawn is ended with the scheduler's
        reason. Image pull failures end it at once.

            c.TkKubeSpawner.fail_fast_grace_seconds = 2
        """,
    )

    fail_fast_poll_seconds = Float(
        0.25,
        config=True,
        help="""
        How often the starting pod's status and events (already watched by
        KubeSpawner's reflectors; no extra API calls) are checked for a failure.

            c.TkKubeSpawner.fail_fast_poll_seconds = 0.25
        """,
    )

    examples_image = Unicode(
        "",
        config=True,
        help="""
        Image of the init containers that deliver the environment's examples into the
        user's notebooks before the server starts, and stage the ``tkhub jobs`` terminal
        client (the hub image: it carries tkhub). Empty: neither. ``tkhub deploy`` sets
        it to the hub image.

            c.TkKubeSpawner.examples_image = "registry.example.org/thinkube/tkhub-hub:1.0"
        """,
    )

    service_model = ClusterService

    def secret_environment(self, service: ServiceBase) -> dict[str, Any]:
        """``valueFrom.secretKeyRef`` per secret: the hub never holds the value. Optional,
        so a Secret removed later leaves the variable unset instead of failing spawns
        (``tkhub deploy preflight`` checks that each one exists)."""
        return {
            variable: {
                "valueFrom": {"secretKeyRef": {"name": ref.name, "key": ref.key, "optional": True}}
            }
            for variable, ref in service.secrets.items()
        }

    _configured: dict[str, Any] | None = None  # the traits as configured, before any selection

    # --- inventory and selection -------------------------------------------------

    async def fetch_inventory(self) -> Inventory:
        """GPU nodes and what is free, from the Node and Pod objects of the cluster."""
        return await read_inventory(self.api)

    def _reset_selection_traits(self) -> None:
        """A server restarted with another selection must not keep the last one's GPUs."""
        if self._configured is None:
            self._configured = {t: copy.deepcopy(getattr(self, t)) for t in SELECTION_TRAITS}
        for trait, value in self._configured.items():
            setattr(self, trait, copy.deepcopy(value))

    def _apply_resources(self, selection: Selection) -> None:
        res = selection.resources
        if res is None:
            return
        try:
            if res.cpu_limit:
                self.cpu_limit = cpu_cores(res.cpu_limit)
            if res.cpu_guarantee:
                self.cpu_guarantee = cpu_cores(res.cpu_guarantee)
            if res.mem_limit:
                self.mem_limit = memory_bytes(res.mem_limit)
            if res.mem_guarantee:
                self.mem_guarantee = memory_bytes(res.mem_guarantee)
        except QuantityError as e:
            raise SpawnRefused(
                f"The environment {selection.image.title} has invalid resources ({e}); "
                "ask your administrator to fix its catalog entry."
            ) from e

    async def apply_selection(self, selection: Selection, inventory: Inventory) -> None:
        """Image, resources and GPU placement of the selection, on this spawner's traits."""
        entry = selection.image
        if entry.kind != "oci" or not entry.image:
            raise SpawnRefused(
                f"{entry.title} is a local Python environment and cannot run on the "
                "cluster; choose an image environment."
            )
        self._reset_selection_traits()
        self.image = entry.image
        if self.examples_image:  # the hub image: it carries tkhub
            self._add_tools(self.examples_image)
            self.init_containers = [
                *self.init_containers,
                examples_init_container(self.examples_image, examples_folder(entry.examples)),
            ]
        self._apply_resources(selection)
        try:
            overrides = kubespawner_overrides(selection.placement, inventory)
        except SelectionError as e:
            raise SpawnRefused(f"{e.field}: {e.reason}") from e
        configured: dict[str, Any] = dict(self.environment)  # type: ignore[has-type]
        services = self.service_environment()
        environment = {**configured, **services, **overrides.pop("environment", {})}
        self.environment = environment
        for trait, value in overrides.items():
            setattr(self, trait, value)
        self.log.info(
            "%s: image %s, placement %s", self._log_name, entry.image, selection.placement.key
        )

    def _add_tools(self, image: str) -> None:
        """``tkhub jobs`` in the server's terminals: the user's image has no tkhub."""
        self.init_containers = [*self.init_containers, tools_init_container(image)]
        self.volumes = [*self.volumes, tools_volume()]
        self.volume_mounts = [*self.volume_mounts, client_mount()]

    # --- fail fast -----------------------------------------------------------------

    def _pod_events(self, uid: str) -> list[dict[str, Any]]:
        """Events about this very pod (by uid: a previous pod of the same name is not it)."""
        reflector = self.event_reflector
        if reflector is None:
            return []
        return [
            e
            for e in list(reflector.resources.values())
            if (e.get("involvedObject") or {}).get("uid") == uid
        ]

    async def _watch_start_failure(self) -> StartFailure:
        """Return as soon as the starting pod shows a reason it will not start."""
        ref_key = f"{self.namespace}/{self.pod_name}"
        shortage_since: float | None = None
        while True:
            await asyncio.sleep(self.fail_fast_poll_seconds)
            reflector = self.pod_reflector
            pod = reflector.pods.get(ref_key) if reflector is not None else None
            if pod is None:
                continue
            events = self._pod_events(pod["metadata"].get("uid", ""))
            now = time.monotonic()
            if unschedulable_seen(pod, events):
                shortage_since = shortage_since or now
            else:
                shortage_since = None
            failure = start_failure(
                pod,
                events,
                unschedulable_for=now - shortage_since if shortage_since else 0.0,
                grace=self.fail_fast_grace_seconds,
            )
            if failure is not None:
                return failure

    async def _start(self) -> Any:
        """KubeSpawner's start, raced against the failure watcher."""
        start = asyncio.ensure_future(super()._start())
        watch = asyncio.ensure_future(self._watch_start_failure())
        try:
            done, _ = await asyncio.wait({start, watch}, return_when=asyncio.FIRST_COMPLETED)
            if start in done or watch.exception() is not None:
                if start not in done:  # a broken watcher must not fail the spawn
                    self.log.error("fail-fast watcher failed", exc_info=watch.exception())
                return await start
        except BaseException:
            start.cancel()
            raise
        finally:
            watch.cancel()
        start.cancel()
        with suppress(asyncio.CancelledError, Exception):
            await start
        await self._refuse(watch.result())

    async def _refuse(self, failure: StartFailure) -> NoReturn:
        """Delete the doomed pod and end the spawn with the reason in plain words."""
        self.log.warning(
            "%s: pod %s will not start: %s: %s",
            self._log_name,
            self.pod_name,
            failure.reason,
            failure.detail,
        )
        await self.stop(now=True)
        raise SpawnRefused(
            failure.user_message,
            log_message=f"pod {self.namespace}/{self.pod_name}: {failure.reason}: {failure.detail}",
        )
