"""Registry sync against a real docker-registry with images built by buildah."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from tkhub.catalog import store
from tkhub.catalog.registry.sync import sync_one
from tkhub.catalog.schemas import Kind, Source

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
