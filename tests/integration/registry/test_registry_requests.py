"""What a sync asks the registry for, counted in the real registry's access log."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from tkhub.catalog.registry.client import LABELS
from tkhub.catalog.registry.sync import sync_one

pytestmark = pytest.mark.registry
JUPYTER = {"io.thinkube.jupyter.compatible": "true"}


@pytest.fixture(autouse=True)
def no_cached_labels() -> Iterator[None]:
    LABELS.clear()
    yield
    LABELS.clear()


def push_again(registry: Any, local: str, dest: str, *flags: str) -> None:
    """Push an already built image to another repository or tag."""
    registry.builder.run(
        "push", "--tls-verify=false", *flags, local, f"docker://{registry.host}/{dest}"
    )


def annotate(registry: Any, repository: str, tag: str) -> None:
    """Put the tag's manifest back with an annotation: a new digest, the same config."""
    oci = "application/vnd.oci.image.manifest.v1+json"
    with registry.client() as http:
        url = f"/v2/{repository}/manifests/{tag}"
        manifest = http.get(url, headers={"Accept": oci}).raise_for_status().json()
        manifest["annotations"] = {"org.example.note": "re-pushed"}
        body = json.dumps(manifest).encode()
        http.put(url, content=body, headers={"Content-Type": oci}).raise_for_status()


async def test_a_config_blob_shared_by_tags_and_repositories_is_fetched_once(
    start_registry: Callable[..., Any], catalog_db: sessionmaker[Session]
) -> None:
    registry = start_registry()
    local = registry.push("same/lab", "latest", {**JUPYTER, "io.thinkube.jupyter.gpu": "none"})
    push_again(registry, local, "same/lab:1.0")
    push_again(registry, local, "other/lab:latest")
    before = len(registry.requests())

    report = await sync_one(registry.settings(tags="glob:*"), catalog_db)

    assert sorted(c.name for c in report.added) == ["other-lab", "same-lab", "same-lab-1.0"]
    asked = registry.requests()[before:]
    assert sum(r.startswith("GET ") and "/manifests/" in r for r in asked) == 3
    assert [r.split("/blobs/")[0] for r in asked if "/blobs/" in r] in (
        ["GET /v2/same/lab"],
        ["GET /v2/other/lab"],
    )


async def test_an_unchanged_resync_asks_only_for_tag_lists_and_digests(
    start_registry: Callable[..., Any], catalog_db: sessionmaker[Session]
) -> None:
    registry = start_registry()
    for repository in ("r/a", "r/b"):
        for tag in ("latest", "1.0"):
            registry.push(repository, tag, JUPYTER)
    registry.push_index("r/multi", "latest", JUPYTER, ["arm64", "amd64"])
    settings = registry.settings(tags="glob:*")
    first = await sync_one(settings, catalog_db)
    assert len(first.added) == 5
    before = len(registry.requests())

    again = await sync_one(settings, catalog_db)

    assert (again.added, again.updated, again.removed, len(again.unchanged)) == ([], [], [], 5)
    repositories = ["r/a", "r/b", "r/multi"]
    tagged = [("r/a", "1.0"), ("r/a", "latest"), ("r/b", "1.0"), ("r/b", "latest")]
    heads = [f"HEAD /v2/{r}/manifests/{t}" for r, t in [*tagged, ("r/multi", "latest")]]
    assert sorted(registry.requests()[before:]) == sorted(
        ["GET /v2/_catalog?n=100", *(f"GET /v2/{r}/tags/list?n=100" for r in repositories), *heads]
    )
    # Conditional on the digest the catalog holds: the registry answers 304.
    assert sorted(registry.requests("(pipelined)", status=True)) == sorted(
        f"{h} 304" for h in heads
    )


async def test_a_new_manifest_over_a_known_config_needs_no_blob_request(
    start_registry: Callable[..., Any], catalog_db: sessionmaker[Session]
) -> None:
    registry = start_registry()
    registry.push("z/lab", "latest", {**JUPYTER, "io.thinkube.jupyter.gpu": "none"})
    settings = registry.settings()
    first = await sync_one(settings, catalog_db)
    annotate(registry, "z/lab", "latest")
    before = len(registry.requests())

    again = await sync_one(settings, catalog_db)

    assert [c.name for c in again.updated] == ["z-lab"]
    assert again.updated[0].digest != first.added[0].digest
    asked = registry.requests(status=True)[before:]
    assert "HEAD /v2/z/lab/manifests/latest 200" in asked  # a new digest, not a 304
    assert "GET /v2/z/lab/manifests/latest 200" in asked
    assert not [r for r in asked if "/blobs/" in r]


@pytest.mark.parametrize("auth", ["basic", "token"])
async def test_pipelined_heads_carry_the_credentials(
    auth: str, start_registry: Callable[..., Any], catalog_db: sessionmaker[Session]
) -> None:
    registry = start_registry(auth)
    for tag in ("latest", "1.0", "1.1"):
        registry.push("secure/lab", tag, JUPYTER)
    settings = registry.settings(tags="glob:*")
    assert len((await sync_one(settings, catalog_db)).added) == 3
    before = len(registry.requests())

    again = await sync_one(settings, catalog_db)

    assert again.ok and len(again.unchanged) == 3
    heads = sorted(r for r in registry.requests()[before:] if r.startswith("HEAD "))
    # Once each, all pipelined: no 401 answered by the ordinary path a second time.
    expected = [f"HEAD /v2/secure/lab/manifests/{t}" for t in ("1.0", "1.1", "latest")]
    assert heads == expected
    assert sorted(registry.requests("(pipelined)")) == expected


async def test_a_registry_on_https_is_synced_and_resynced_over_tls(
    start_registry: Callable[..., Any], catalog_db: sessionmaker[Session]
) -> None:
    registry = start_registry(tls=True)
    registry.push("tls/lab", "latest", JUPYTER)
    checked = await sync_one(registry.settings(name="checked"), catalog_db)
    assert not checked.ok and "did not answer" in checked.errors[0]  # self-signed

    settings = registry.settings(verify_tls=False)
    first = await sync_one(settings, catalog_db)
    before = len(registry.requests())
    again = await sync_one(settings, catalog_db)

    assert [c.name for c in first.added] == ["tls-lab"]
    assert again.ok and again.unchanged == ["tls/lab:latest"]
    after = registry.requests()[before:]
    assert [r for r in after if r.startswith("HEAD ")] == ["HEAD /v2/tls/lab/manifests/latest"]
    assert registry.requests("(pipelined)") == ["HEAD /v2/tls/lab/manifests/latest"]
