"""A registry that answers 429/500: retried with backoff, then skipped and reported."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from tkhub.catalog import store
from tkhub.catalog.registry.client import RegistryClient, RegistryError
from tkhub.catalog.registry.sync import sync_one
from tkhub.catalog.schemas import ImageCreate
from tkhub.settings import RegistrySettings

OK_CATALOG = (
    200,
    {"Content-Type": "application/json"},
    json.dumps({"repositories": ["a/b"]}).encode(),
)
OK_TAGS = (200, {}, json.dumps({"name": "a/b", "tags": ["latest"]}).encode())


def settings(url: str) -> RegistrySettings:
    return RegistrySettings(name="flaky", url=url)


async def test_429_is_retried_after_retry_after(flaky_server: Callable[..., Any]) -> None:
    flaky = flaky_server([(429, {"Retry-After": "1"}, b""), OK_CATALOG])
    async with RegistryClient(settings(flaky.url), backoff=0.01) as client:
        assert await client.repositories() == ["a/b"]
    assert flaky.requests == ["GET /v2/_catalog?n=100"] * 2


async def test_persistent_500_gives_up_with_a_reason(flaky_server: Callable[..., Any]) -> None:
    flaky = flaky_server([(500, {}, b"")] * 3)
    async with RegistryClient(settings(flaky.url), retries=2, backoff=0.01) as client:
        try:
            await client.repositories()
        except RegistryError as e:
            assert e.reason == "/v2/_catalog: HTTP 500 after 3 tries"
            assert e.transient
        else:
            raise AssertionError("a 500-ing registry must raise")
    assert len(flaky.requests) == 3


async def test_failing_manifest_is_skipped_and_its_entry_kept(
    flaky_server: Callable[..., Any], catalog_db: sessionmaker[Session]
) -> None:
    # The first HEAD is the pipelined one; then four tries the ordinary way.
    flaky = flaky_server([OK_CATALOG, OK_TAGS, *[(503, {}, b"")] * 5])
    with catalog_db() as session:
        store.upsert_registry_image(
            session,
            registry="flaky",
            repository="a/b",
            tag="latest",
            entry=ImageCreate(name="a-b", image="x/a/b@sha256:" + "0" * 64),
            digest="sha256:" + "0" * 64,
        )
        session.commit()

    report = await sync_one(settings(flaky.url), catalog_db)

    assert [(s.repository, s.tag) for s in report.skipped] == [("a/b", "latest")]
    assert "HTTP 503 after 4 tries" in report.skipped[0].reason
    assert flaky.requests[2:] == ["HEAD /v2/a/b/manifests/latest"] * 5
    assert report.removed == []
    with catalog_db() as session:
        assert [i.name for i in store.list_images(session)] == ["a-b"]


async def test_garbage_answers_are_reported_not_raised(
    flaky_server: Callable[..., Any], catalog_db: sessionmaker[Session]
) -> None:
    flaky = flaky_server([(200, {}, b"<html>not a registry</html>")])
    report = await sync_one(settings(flaky.url), catalog_db)
    assert not report.ok
    assert report.errors == ["listing repositories: /v2/_catalog: the answer is not a JSON object"]


async def test_a_refused_pipelined_head_is_asked_again_the_ordinary_way(
    flaky_server: Callable[..., Any], catalog_db: sessionmaker[Session]
) -> None:
    digest = "sha256:" + "0" * 64
    flaky = flaky_server(
        [OK_CATALOG, OK_TAGS, (500, {}, b""), (200, {"Docker-Content-Digest": digest}, b"")]
    )
    with catalog_db() as session:
        store.upsert_registry_image(
            session,
            registry="flaky",
            repository="a/b",
            tag="latest",
            entry=ImageCreate(name="a-b", image=f"x/a/b@{digest}"),
            digest=digest,
        )
        session.commit()

    report = await sync_one(settings(flaky.url), catalog_db)

    assert report.ok and report.unchanged == ["a/b:latest"] and report.removed == []
    assert flaky.requests[2:] == ["HEAD /v2/a/b/manifests/latest"] * 2
