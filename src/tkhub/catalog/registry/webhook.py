"""Harbor push events -> the (registry, repository) pairs to sync.

Harbor's payload: ``{"type": "PUSH_ARTIFACT", "event_data": {"repository":
{"repo_full_name": "project/name", ...}, "resources": [{"resource_url":
"harbor.example.org/project/name:tag", ...}]}}``. The registry is the configured
one whose host (or ``pull_host``) the resource URL names; without a match, every
registry whose prefix covers the repository.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from tkhub.settings import RegistrySettings

EVENTS = {"PUSH_ARTIFACT", "DELETE_ARTIFACT", "pushImage", "deleteImage"}


class WebhookError(ValueError):
    """A payload that does not say which repository changed."""


def _hosts(registry: RegistrySettings) -> set[str]:
    hosts = {urlsplit(registry.url).netloc}
    if registry.pull_host:
        hosts.add(registry.pull_host)
    return hosts


def harbor_targets(
    registries: Sequence[RegistrySettings], payload: dict[str, Any]
) -> list[tuple[str, str]]:
    kind = payload.get("type")
    if kind not in EVENTS:
        raise WebhookError(f"type: {kind!r} is not a push or delete event")
    data = payload.get("event_data")
    repo = data.get("repository") if isinstance(data, dict) else None
    name = repo.get("repo_full_name") if isinstance(repo, dict) else None
    if not isinstance(name, str) or not name:
        raise WebhookError("event_data.repository.repo_full_name: missing")
    resources = data.get("resources") if isinstance(data, dict) else None
    urls = [r.get("resource_url", "") for r in resources or [] if isinstance(r, dict)]
    named_hosts = {str(u).split("/", 1)[0] for u in urls if u}
    matched = [r for r in registries if _hosts(r) & named_hosts and name.startswith(r.prefix)]
    if not matched:
        matched = [r for r in registries if name.startswith(r.prefix)]
    if not matched:
        raise WebhookError(f"event_data.repository: no configured registry holds {name!r}")
    return [(r.name, name) for r in matched]
