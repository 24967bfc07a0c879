"""Registry sync against a real docker-registry with images built by buildah."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from tkhub.catalog import store
from tkhub.catalog.registry.sync import sync_one
from tkhub.catalog.schemas import ImageCreate, ImageUpdate, Kind, Source

pytestmark = pytest.mark.registry
JUPYTER = {"io.thinkube.jupyter.compatible": "true"}


def labels(**extra: str) -> dict[str, str]:
    return {
        **JUPYTER,
        **{f"io.thinkube.jupyter.{k.replace('_', '-')}": v for k, v in extra.items()},
    }


def entries(sessions: sessionmaker[Session]) -> dict[str, object]:
    with sessions() as session:
        return {i.name: i for i in store.list_images(session)}


async def test_sync_finds_jupyter_images_and_skips_the_rest(
    start_registry: Callable[..., Any], catalog_db: sessionmaker[Session]
) -> None:
    registry = start_registry()
    registry.push(
        "team/pytorch",
        "latest",
        labels(display_name="PyTorch", gpu="required", packages="torch, numpy", mem_limit="8Gi"),
    )
    registry.push("team/pytorch", "1.2", labels(display_name="PyTorch 1.2"))
    registry.push("team/pytorch", "ci-1234", labels())
    registry.push("team/nginx", "latest", {"org.opencontainers.image.title": "nginx"})

    report = await sync_one(registry.settings(), catalog_db)

    assert report.ok, report.errors
    assert sorted(c.name for c in report.added) == ["team-pytorch", "team-pytorch-1.2"]
    assert [(s.repository, s.reason) for s in report.skipped] == [
        (
            "team/nginx",
            "label io.thinkube.jupyter.compatible: missing or not 'true': not a Jupyter image",
        )
    ]
    found = entries(catalog_db)["team-pytorch"]
    assert found.kind is Kind.oci and found.source is Source.registry
    assert found.display_name == "PyTorch" and found.gpu.value == "required"
    assert found.packages == ["torch", "numpy"] and found.resources.mem_limit == "8Gi"
    assert found.image == f"{registry.host}/team/pytorch@{found.digest}"
    assert found.digest and found.digest.startswith("sha256:")


async def test_resync_follows_pushes_deletes_and_relabels(
    start_registry: Callable[..., Any], catalog_db: sessionmaker[Session]
) -> None:
    registry = start_registry()
    settings = registry.settings(tags="glob:*")
    registry.push("lab/base", "latest", labels(display_name="Base"))
    first = await sync_one(settings, catalog_db)
    assert [c.name for c in first.added] == ["lab-base"]

    again = await sync_one(settings, catalog_db)
    assert (again.added, again.updated, again.removed) == ([], [], [])
    assert again.unchanged == ["lab/base:latest"]

    registry.push("lab/base", "2.0", labels(display_name="Base 2"))
    pushed = await sync_one(settings, catalog_db)
    assert [c.name for c in pushed.added] == ["lab-base-2.0"]

    registry.push("lab/base", "latest", labels(display_name="Base, relabelled", gpu="none"))
    relabelled = await sync_one(settings, catalog_db)
    assert [c.name for c in relabelled.updated] == ["lab-base"]
    assert entries(catalog_db)["lab-base"].display_name == "Base, relabelled"

    registry.delete("lab/base", "2.0")
    deleted = await sync_one(settings, catalog_db)
    assert deleted.removed == ["lab-base-2.0"]
    assert sorted(entries(catalog_db)) == ["lab-base"]


async def test_bad_labels_skip_that_image_only(
    start_registry: Callable[..., Any], catalog_db: sessionmaker[Session]
) -> None:
    registry = start_registry()
    registry.push("x/good", "latest", labels())
    registry.push("x/maybe", "latest", labels(gpu="maybe"))
    registry.push("x/lots", "latest", labels(mem_limit="lots"))

    report = await sync_one(registry.settings(), catalog_db)

    assert [c.name for c in report.added] == ["x-good"]
    reasons = {s.repository: s.reason for s in report.skipped}
    assert reasons["x/maybe"] == (
        "label io.thinkube.jupyter.gpu: 'maybe' is not one of required, optional, none"
    )
    assert reasons["x/lots"].startswith("label io.thinkube.jupyter.mem-limit: 'lots' is not")
    assert report.ok  # bad data is reported, not a failed sync


async def test_admin_edits_and_api_entries_survive_resyncs(
    start_registry: Callable[..., Any], catalog_db: sessionmaker[Session]
) -> None:
    registry = start_registry()
    settings = registry.settings()
    registry.push("ds/notebook", "latest", labels(display_name="From label"))
    await sync_one(settings, catalog_db)
    with catalog_db() as session:
        store.update_image(
            session,
            name="ds-notebook",
            update=ImageUpdate(display_name="Admin's name", hidden=True, allowed_groups=["ml"]),
        )
        store.set_default(session, name="ds-notebook")
        store.create_image(
            session, entry=ImageCreate(name="by-hand", image="example.org/hand:1", kind=Kind.oci)
        )
        session.commit()

    registry.push("ds/notebook", "latest", labels(display_name="New label", gpu="none"))
    report = await sync_one(settings, catalog_db)

    assert [c.name for c in report.updated] == ["ds-notebook"]
    entry = entries(catalog_db)["ds-notebook"]
    assert (entry.display_name, entry.hidden, entry.default) == ("Admin's name", True, True)
    assert entry.allowed_groups == ["ml"] and entry.gpu.value == "none"
    registry.delete("ds/notebook", "latest")
    gone = await sync_one(settings, catalog_db)
    assert gone.removed == ["ds-notebook"]
    assert list(entries(catalog_db)) == ["by-hand"]


async def test_image_index_uses_linux_amd64_and_records_platforms(
    start_registry: Callable[..., Any], catalog_db: sessionmaker[Session]
) -> None:
    registry = start_registry()
    registry.push_index("multi/lab", "latest", labels(), ["arm64", "amd64"])

    report = await sync_one(registry.settings(), catalog_db)

    (change,) = report.added
    assert sorted(change.platforms) == ["linux/amd64", "linux/arm64"]
    entry = entries(catalog_db)["multi-lab"]
    assert entry.description == "built for amd64"
    assert entry.image == f"{registry.host}/multi/lab@{change.digest}"  # the index digest


async def test_default_tag_policy_latest_plus_newest_version(
    start_registry: Callable[..., Any], catalog_db: sessionmaker[Session]
) -> None:
    registry = start_registry()
    for tag in ("latest", "1.2", "1.10", "1.11-rc1", "ci-7f3a2b"):
        registry.push("p/app", tag, labels())

    report = await sync_one(registry.settings(), catalog_db)

    assert sorted(c.tag for c in report.added) == ["1.10", "latest"]


@pytest.mark.parametrize("auth", ["basic", "token"])
async def test_authenticated_registries(
    auth: str, start_registry: Callable[..., Any], catalog_db: sessionmaker[Session]
) -> None:
    registry = start_registry(auth)
    registry.push("secure/lab", "latest", labels(display_name="Secure"))

    anonymous = await sync_one(
        registry.settings(name="anon", username=None, password_file=None), catalog_db
    )
    assert not anonymous.ok and "HTTP 401" in anonymous.errors[0]
    report = await sync_one(registry.settings(), catalog_db)

    assert report.ok, report.errors
    assert [c.name for c in report.added] == ["secure-lab"]
    if auth == "token":
        assert "registry:catalog:*" in registry.token_scopes
        assert "repository:secure/lab:pull" in registry.token_scopes


async def test_pagination_of_repositories_and_tags(
    start_registry: Callable[..., Any], catalog_db: sessionmaker[Session]
) -> None:
    from tkhub.catalog.registry.client import RegistryClient

    registry = start_registry()
    for i in range(5):
        registry.push(f"page/r{i}", "latest", labels())
    for tag in ("a", "b", "c", "d", "e"):
        registry.push("page/r0", tag, labels())

    async with RegistryClient(registry.settings()) as client:
        assert await client.repositories(page_size=2) == [f"page/r{i}" for i in range(5)]
        assert sorted(await client.tags("page/r0", page_size=2)) == [
            "a", "b", "c", "d", "e", "latest"
        ]  # fmt: skip


async def test_registry_down_keeps_last_good_entries(
    start_registry: Callable[..., Any], catalog_db: sessionmaker[Session]
) -> None:
    registry = start_registry()
    settings = registry.settings()
    registry.push("keep/me", "latest", labels())
    await sync_one(settings, catalog_db)
    registry.stop()

    report = await sync_one(settings, catalog_db)

    assert not report.ok and report.removed == []
    assert "did not answer" in report.errors[0]
    assert list(entries(catalog_db)) == ["keep-me"]
