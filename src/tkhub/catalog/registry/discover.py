"""Discover the Jupyter images of one registry, concurrently and incrementally.

``discover(client, known)`` lists repositories (or just one, for a webhook),
their tags, applies the tag policy, ``HEAD``s each chosen manifest the catalog
already holds (pipelined, all repositories at once) and fetches manifest +
config only when the digest differs (or the tag is new).
It returns plain data (``Discovery``); writing it to the catalog is ``apply``'s job.

Failures are per item: a repository whose tags cannot be listed, or a tag whose
manifest is unreachable, keeps its last good entries (``keep``); a bad label or a
malformed manifest skips that image (and drops its old entry); a registry whose
repository list cannot be read is ``complete=False`` and nothing is removed.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from tkhub.catalog.registry.client import (
    INDEX_TYPES,
    Manifest,
    RegistryClient,
    RegistryError,
    registry_host,
)
from tkhub.catalog.registry.labels import LabelError, entry_from_labels
from tkhub.catalog.registry.naming import entry_names
from tkhub.catalog.registry.policy import PolicyError, TagPolicy, parse_policy
from tkhub.catalog.schemas import ImageCreate

log = logging.getLogger(__name__)
Key = tuple[str, str]  # (repository, tag)
WANTED_PLATFORM = "linux/amd64"


@dataclass
class Found:
    repository: str
    tag: str
    digest: str | None
    entry: ImageCreate | None  # None: digest unchanged, nothing to write
    platforms: list[str] = field(default_factory=list)


@dataclass
class Skipped:
    repository: str
    tag: str | None
    reason: str


@dataclass
class Discovery:
    registry: str
    repository: str | None = None  # a single-repository sync (webhook)
    complete: bool = True  # the repository list was read: vanished entries may go
    found: list[Found] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    keep: set[Key] = field(default_factory=set)


async def _repositories(client: RegistryClient, only: str | None) -> list[str]:
    prefix = client.registry.prefix
    if only is not None:
        return [only] if only.startswith(prefix) else []
    return sorted(r for r in await client.repositories() if r.startswith(prefix))


async def discover(
    client: RegistryClient, known: dict[Key, str | None], *, repository: str | None = None
) -> Discovery:
    """Everything the registry offers now, compared with ``known`` digests."""
    result = Discovery(client.registry.name, repository=repository)
    try:
        policy = parse_policy(client.registry.tags)
    except PolicyError as e:
        result.complete = False
        result.errors.append(str(e))
        return result
    try:
        repositories = await _repositories(client, repository)
    except RegistryError as e:
        result.complete = False
        result.errors.append(f"listing repositories: {e.reason}")
        log.warning("registry %s: listing repositories failed: %s", result.registry, e.reason)
        return result
    chosen = await asyncio.gather(
        *(_choose_tags(client, r, policy, known, result) for r in repositories)
    )
    keys = [(repo, tag) for repo, tags in zip(repositories, chosen, strict=True) for tag in tags]
    names = entry_names([*keys, *known], client.registry.prefix)
    heads = await client.head_digests({k: known[k] for k in keys if k in known})
    unchanged = {k for k, digest in heads.items() if known.get(k) == digest}
    for repository, tag in sorted(unchanged):  # the usual re-sync: nothing more to ask
        result.found.append(Found(repository, tag, heads[(repository, tag)], None))
    result.keep.update(unchanged)
    await asyncio.gather(
        *(
            _inspect(client, key, names[key], known, result, heads.get(key))
            for key in keys
            if key not in unchanged
        )
    )
    result.found.sort(key=lambda f: (f.repository, f.tag))
    return result


async def _choose_tags(
    client: RegistryClient,
    repository: str,
    policy: TagPolicy,
    known: dict[Key, str | None],
    result: Discovery,
) -> list[str]:
    try:
        tags = await client.tags(repository)
    except RegistryError as e:
        if not e.transient:  # 404: the repository is gone
            return []
        result.skipped.append(Skipped(repository, None, f"listing tags: {e.reason}"))
        result.keep.update(k for k in known if k[0] == repository)
        return []
    return policy(tags)


async def _inspect(
    client: RegistryClient,
    key: Key,
    name: str,
    known: dict[Key, str | None],
    result: Discovery,
    head: str | None = None,
) -> None:
    """``head``: the digest the pipelined ``HEAD``s already got for ``key``."""
    repository, tag = key
    try:
        # HEAD only what the catalog holds: a new image needs its manifest anyway.
        digest = head
        if digest is None and key in known:
            digest = await client.manifest_digest(repository, tag)
        if digest is not None and known.get(key) == digest:
            result.found.append(Found(repository, tag, digest, None))
            result.keep.add(key)
            return
        found = await _fetch(client, repository, tag, name)
    except RegistryError as e:
        if e.transient:
            result.keep.add(key)
        elif e.status == 404:
            return  # the tag vanished between listing and fetching
        result.skipped.append(Skipped(repository, tag, e.reason))
        log.warning("registry %s: skipped %s:%s: %s", result.registry, repository, tag, e.reason)
        return
    except LabelError as e:
        result.skipped.append(Skipped(repository, tag, str(e)))
        if e.label.endswith(".compatible"):
            log.debug("registry %s: %s:%s is not a Jupyter image", result.registry, repository, tag)
        else:
            log.warning("registry %s: skipped %s:%s: %s", result.registry, repository, tag, e)
        return
    result.found.append(found)
    result.keep.add(key)


async def _fetch(client: RegistryClient, repository: str, tag: str, name: str) -> Found:
    """Manifest (the linux/amd64 one of an index), config blob, labels -> entry."""
    top = await client.manifest(repository, tag)
    manifest = top
    platforms: list[str] = []
    if top.media_type in INDEX_TYPES:
        manifest, platforms = await _pick_platform(client, repository, top)
    config = manifest.body.get("config")
    if not isinstance(config, dict) or not isinstance(config.get("digest"), str):
        raise RegistryError("the manifest names no config blob", transient=False)
    labels = await client.config_labels(repository, config["digest"])
    reference = f"{registry_host(client.registry)}/{repository}@{top.digest}"
    entry = entry_from_labels(name, reference, labels)
    return Found(repository, tag, top.digest, entry, platforms)


def _platform(descriptor: dict[str, object]) -> str:
    platform = descriptor.get("platform")
    if not isinstance(platform, dict):
        return "unknown"
    text = f"{platform.get('os', '?')}/{platform.get('architecture', '?')}"
    return f"{text}/{platform['variant']}" if platform.get("variant") else text


async def _pick_platform(
    client: RegistryClient, repository: str, index: Manifest
) -> tuple[Manifest, list[str]]:
    descriptors = [d for d in index.body.get("manifests") or [] if isinstance(d, dict)]
    platforms = [_platform(d) for d in descriptors]
    for descriptor, platform in zip(descriptors, platforms, strict=True):
        if platform == WANTED_PLATFORM and isinstance(descriptor.get("digest"), str):
            child = await client.manifest(repository, str(descriptor["digest"]))
            if child.media_type in INDEX_TYPES:
                raise RegistryError("an index inside an index is not supported", transient=False)
            return child, platforms
    listed = ", ".join(platforms) or "none"
    raise RegistryError(
        f"the image index has no {WANTED_PLATFORM} image (it has: {listed})",
        transient=False,
    )
