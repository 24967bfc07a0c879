"""CatalogClient against a real uvicorn server answering like the catalog (or badly)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import socket
from collections.abc import Callable
from typing import Any

import pytest
from fastapi import FastAPI, Header, HTTPException, Response

from tkhub.catalog.client import CatalogClient, CatalogRequestError
from tkhub.catalog.schemas import ImageCreate, ImageUpdate
from tkhub.errors import CatalogUnavailable

ENTRY = {"name": "py", "display_name": "Python", "kind": "local", "python": "/usr/bin/python3"}


def fake_catalog(seen: list[dict[str, Any]]) -> FastAPI:
    app = FastAPI()

    @app.get("/api/v1/images/jupyter")
    async def images(gpu: str | None = None, authorization: str = Header("")) -> list[dict]:
        seen.append({"gpu": gpu, "authorization": authorization})
        return [ENTRY]

    @app.get("/api/v1/images/{name}")
    async def image(name: str) -> dict:
        if name != "py":
            raise HTTPException(404, f"no image named {name!r}")
        return ENTRY

    @app.post("/api/v1/images", status_code=201)
    async def create(body: dict) -> dict:
        return body

    @app.patch("/api/v1/images/{name}")
    async def patch(name: str, body: dict) -> dict:
        seen.append(body)
        return {**ENTRY, **body}

    @app.delete("/api/v1/images/{name}", status_code=204)
    async def delete(name: str) -> Response:
        return Response(status_code=204)

    @app.get("/api/v1/nodes/gpu")
    async def gpu() -> dict:
        raise HTTPException(503, "GPU inventory not available")

    @app.get("/slow/api/v1/images/jupyter")
    async def slow() -> list:
        await asyncio.sleep(3)
        return []

    return app


async def test_reads_writes_and_errors(serve_app: Callable[[Any], str]) -> None:
    seen: list[dict[str, Any]] = []
    url = serve_app(fake_catalog(seen))
    async with CatalogClient(url, "secret-token") as client:
        images = await client.list_images(gpu="required")
        assert images[0].name == "py" and images[0].title == "Python"
        assert seen[0] == {"gpu": "required", "authorization": "token secret-token"}
        assert (await client.get_image("py")).python == "/usr/bin/python3"
        with pytest.raises(CatalogRequestError) as refused:
            await client.get_image("nope")
        assert refused.value.status == 404 and "nope" in str(refused.value.detail)
        created = await client.create_image(ImageCreate.model_validate(ENTRY))
        assert created.name == "py"
        patched = await client.update_image("py", ImageUpdate(hidden=True))
        assert seen[-1] == {"hidden": True} and patched.hidden
        assert await client.delete_image("py") is None
        with pytest.raises(CatalogUnavailable) as down:
            await client.get_gpu_inventory()
        assert "503" in down.value.user_message


async def test_timeout_is_a_plain_message(serve_app: Callable[[Any], str]) -> None:
    url = serve_app(fake_catalog([]))
    async with CatalogClient(url + "/slow", "secret-token", timeout=0.3) as client:
        with pytest.raises(CatalogUnavailable) as down:
            await client.list_images()
    message = down.value.user_message
    assert "did not answer within 0.3 s" in message and "administrator" in message
    assert "secret-token" not in message and "secret-token" not in str(down.value)


async def test_connection_refused() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    async with CatalogClient(f"http://127.0.0.1:{port}", "t") as client:
        with pytest.raises(CatalogUnavailable) as down:
            await client.list_images()
    assert "cannot be reached" in down.value.user_message


def etag_catalog(seen: list[tuple[str | None, str | None]], body: list[dict]) -> FastAPI:
    """Answers like the catalog: an ETag per body, 304 when the client has it."""
    app = FastAPI()

    @app.get("/api/v1/images/jupyter")
    async def images(
        gpu: str | None = None,
        authorization: str = Header(""),
        if_none_match: str | None = Header(None),
    ) -> Response:
        seen.append((gpu, if_none_match))
        chosen = [e for e in body if gpu is None or e.get("gpu") == gpu]
        content = json.dumps(chosen).encode()
        etag = f'"{hashlib.sha256(content + authorization.encode()).hexdigest()[:16]}"'
        if if_none_match == etag:
            return Response(status_code=304, headers={"etag": etag})
        return Response(content, media_type="application/json", headers={"etag": etag})

    return app


async def test_list_images_revalidates_with_the_etag(serve_app: Callable[[Any], str]) -> None:
    seen: list[tuple[str | None, str | None]] = []
    body = [dict(ENTRY), {**ENTRY, "name": "gpu", "gpu": "required"}]
    url = serve_app(etag_catalog(seen, body))
    async with CatalogClient(url, "secret-token") as client:
        first = await client.list_images()
    assert [i.name for i in first] == ["py", "gpu"] and seen[-1] == (None, None)
    async with CatalogClient(url, "secret-token") as client:  # a new client, as spawners do
        again = await client.list_images()
        etag = seen[-1][1]
        assert etag and again == first and again[0] is not first[0]
        assert [i.name for i in await client.list_images(gpu="required")] == ["gpu"]
        assert seen[-1] == ("required", None)  # other filters: another listing
        assert len(await client.list_images(gpu="required")) == 1 and seen[-1][1]
    async with CatalogClient(url, "other-token") as other:  # another caller: nothing kept
        await other.list_images()
        assert seen[-1] == (None, None)
    body.append({**ENTRY, "name": "new"})  # the catalog changed: a new tag and body
    async with CatalogClient(url, "secret-token") as client:
        assert [i.name for i in await client.list_images()] == ["py", "gpu", "new"]
        assert seen[-1] == (None, etag)
        assert len(await client.list_images()) == 3 and seen[-1][1] not in (None, etag)
