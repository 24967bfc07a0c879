"""The catalog API in a real uvicorn server, authenticating against a real hub."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from hubproc import free_port

from tkhub.catalog.app import create_app
from tkhub.catalog.client import CatalogClient, CatalogRequestError
from tkhub.catalog.hub_tokens import make_hub_auth
from tkhub.catalog.schemas import ImageCreate, ImageUpdate
from tkhub.local.catalog_service import local_inventory_reader
from tkhub.settings import Settings

Hub = Any  # the ``hub`` fixture of conftest.py


LOCAL = {"name": "here", "kind": "local", "python": sys.executable, "default": True}


@pytest.fixture
def catalog(hub: Hub, db_url: str) -> Iterator[str]:
    data_dir = tempfile.mkdtemp(dir="/tmp", prefix="tkhub-cat-")
    settings = Settings(data_dir=data_dir, catalog_database_url=db_url)
    app = create_app(
        settings,
        inventory=local_inventory_reader(settings),
        hub_auth=make_hub_auth(hub.api_url, hub.service_token),
        service_prefix="/services/catalog/",
    )
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)
    app.state.engine.dispose()


def call(url: str, method: str, path: str, token: str | None, **kw: Any) -> httpx.Response:
    headers = {"Authorization": f"token {token}"} if token else {}
    return httpx.request(method, url + path, headers=headers, timeout=30, **kw)


def test_auth(catalog: str, hub: Hub) -> None:
    assert call(catalog, "GET", "/health", None).json()["db"] == "ok"
    assert call(catalog, "GET", "/api/v1/images/jupyter", None).status_code == 401
    unknown = call(catalog, "GET", "/api/v1/images/jupyter", "not-a-token")
    assert unknown.status_code == 403 and "not-a-token" not in unknown.text
    assert call(catalog, "GET", "/api/v1/images/jupyter", hub.tokens["alice"]).json() == []
    refused = call(catalog, "POST", "/api/v1/images", hub.tokens["alice"], json=LOCAL)
    assert refused.status_code == 403
    bearer = httpx.get(
        catalog + "/api/v1/images/jupyter", headers={"Authorization": f"Bearer {hub.tokens['bob']}"}
    )
    assert bearer.status_code == 200


async def test_crud_through_the_client(catalog: str, hub: Hub) -> None:
    async with CatalogClient(catalog, hub.tokens["admin"]) as admin:
        created = await admin.create_image(ImageCreate.model_validate(LOCAL))
        assert created.default and created.source.value == "api"
        gpu = ImageCreate(
            name="torch", image="reg/torch:1", gpu="required", allowed_groups=["physics"]
        )
        await admin.create_image(gpu)
        await admin.create_image(ImageCreate(name="secret", image="reg/s:1", hidden=True))
        with pytest.raises(CatalogRequestError) as two:
            await admin.update_image("torch", ImageUpdate(default=True))
        assert two.value.status == 409 and "'here' is already the default" in two.value.detail
        moved = await admin.set_default("torch")
        assert moved.default
        assert [i.name for i in await admin.list_images(gpu="required")] == ["torch"]
        assert len(await admin.list_images(include_hidden=True)) == 3
    async with CatalogClient(catalog, hub.tokens["bob"]) as bob:
        assert [i.name for i in await bob.list_images()] == ["here"]
        with pytest.raises(CatalogRequestError) as hidden:
            await bob.list_images(include_hidden=True)
        assert hidden.value.status == 403
    async with CatalogClient(catalog, hub.tokens["alice"]) as alice:
        assert {i.name for i in await alice.list_images()} == {"here", "torch"}
    async with CatalogClient(catalog, hub.tokens["writer"]) as writer:  # custom scope
        patched = await writer.update_image("secret", ImageUpdate(hidden=False, display_name="S"))
        assert patched.title == "S" and not patched.hidden
        await writer.delete_image("secret")
        with pytest.raises(CatalogRequestError) as gone:
            await writer.get_image("secret")
        assert gone.value.status == 404


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"name": "Bad Slug!", "image": "x"}, 422, "name"),
        ({"name": "q", "image": "x", "resources": {"cpu_limit": "8Q"}}, 422, "cpu_limit"),
        ({"name": "nopy", "kind": "local", "python": "/nonexistent/python"}, 400, "does not exist"),
        (
            {"name": "nohub", "kind": "local", "python": "/usr/bin/python3"},
            400,
            "jupyterhub-singleuser",
        ),
        ({"name": "d2", "image": "x", "default": True}, 409, "already the default"),
    ],
)
def test_invalid_writes_change_nothing(
    catalog: str, hub: Hub, body: dict, status: int, words: str
) -> None:
    token = hub.tokens["admin"]
    assert call(catalog, "POST", "/api/v1/images", token, json=LOCAL).status_code == 201
    before = call(catalog, "GET", "/api/v1/images/jupyter", token).json()
    answer = call(catalog, "POST", "/api/v1/images", token, json=body)
    assert answer.status_code == status and words in answer.text
    assert call(catalog, "GET", "/api/v1/images/jupyter", token).json() == before


def test_through_the_proxy_prefix(catalog: str, hub: Hub) -> None:
    listed = call(catalog, "GET", "/services/catalog/api/v1/images/jupyter", hub.tokens["bob"])
    assert listed.status_code == 200
    assert call(catalog, "GET", "/services/catalog/health", None).status_code == 200
    assert "/api/v1/images/jupyter" in call(catalog, "GET", "/openapi.json", None).json()["paths"]


def test_gpu_inventory_answers_or_explains(catalog: str, hub: Hub) -> None:
    answer = call(catalog, "GET", "/api/v1/nodes/gpu", hub.tokens["bob"])
    assert answer.status_code in (200, 503)
    if answer.status_code == 503:
        assert "GPU inventory" in answer.json()["detail"]


def test_service_module_runs(hub: Hub) -> None:
    """``python -m tkhub.catalog`` as the hub would start it, then /health."""
    data_dir = tempfile.mkdtemp(dir="/tmp", prefix="tkhub-svc-")
    port = free_port()
    env = {
        "TKHUB_DATA_DIR": data_dir,
        "TKHUB_CATALOG_PORT": str(port),
        "JUPYTERHUB_API_URL": hub.api_url,
        "JUPYTERHUB_API_TOKEN": hub.service_token,
        "JUPYTERHUB_SERVICE_PREFIX": "/services/catalog/",
        "PATH": "/usr/bin:/bin",
    }
    proc = subprocess.Popen([sys.executable, "-m", "tkhub.catalog"], env=env)
    try:
        for _ in range(300):
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/services/catalog/health")
                break
            except httpx.HTTPError:
                assert proc.poll() is None, "the catalog service exited"
                time.sleep(0.1)
        assert health.json()["db"] == "ok"
        listed = httpx.get(
            f"http://127.0.0.1:{port}/api/v1/images/jupyter",
            headers={"Authorization": f"token {hub.tokens['alice']}"},
        )
        (seeded,) = listed.json()  # a fresh catalog offers this very environment
        assert seeded["python"] == sys.executable and seeded["default"]
        assert seeded["display_name"] == "Python (this machine)"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "words"),
    [
        ("PATCH", "/api/v1/images/here", {"resources": {"mem_limit": "8Q"}}, 422, "mem_limit"),
        ("PATCH", "/api/v1/images/here", {"colour": "red"}, 422, "colour"),
        ("PATCH", "/api/v1/images/here", {"python": "/nonexistent/py"}, 400, "python"),
        ("PUT", "/api/v1/images/here", {"name": "other", "image": "x"}, 400, "path names"),
        ("PATCH", "/api/v1/images/missing", {"hidden": True}, 404, "missing"),
        ("POST", "/api/v1/images/missing/default", None, 404, "missing"),
    ],
)
def test_refused_changes_change_nothing(
    catalog: str, hub: Hub, method: str, path: str, body: Any, status: int, words: str
) -> None:
    token = hub.tokens["admin"]
    assert call(catalog, "POST", "/api/v1/images", token, json=LOCAL).status_code == 201
    before = call(catalog, "GET", "/api/v1/images/jupyter", token).json()
    answer = call(catalog, "PUT" if method == "PUT" else method, path, token, json=body)
    assert answer.status_code == status and words in answer.text
    assert call(catalog, "GET", "/api/v1/images/jupyter", token).json() == before


def revalidate(url: str, token: str | None, etag: str) -> httpx.Response:
    headers = {"If-None-Match": etag, **({"Authorization": f"token {token}"} if token else {})}
    return httpx.get(url, headers=headers, timeout=30)


async def test_etag_304_and_refusals_on_the_fast_path(catalog: str, hub: Hub) -> None:
    """The list answers 304 to a known ETag, only to a token the hub knows."""
    admin = hub.tokens["admin"]
    assert call(catalog, "POST", "/api/v1/images", admin, json=LOCAL).status_code == 201
    for path in ("/api/v1/images/jupyter", "/services/catalog/api/v1/images/jupyter"):
        first = call(catalog, "GET", path, hub.tokens["alice"])
        etag = first.headers["etag"]
        assert [e["name"] for e in first.json()] == ["here"]
        cached = revalidate(catalog + path, hub.tokens["alice"], etag)
        assert cached.status_code == 304 and cached.content == b""
        for token in (None, "not-a-token"):
            refused = revalidate(catalog + path, token, etag)
            assert refused.status_code == (401 if token is None else 403)
            assert "etag" not in refused.headers
    async with CatalogClient(catalog, hub.tokens["alice"]) as alice:
        assert [i.name for i in await alice.list_images()] == ["here"]
    patched = call(catalog, "PATCH", "/api/v1/images/here", admin, json={"display_name": "H"})
    assert patched.status_code == 200
    after = call(catalog, "GET", "/api/v1/images/jupyter", hub.tokens["alice"])
    assert after.headers["etag"] != etag and after.json()[0]["display_name"] == "H"
    async with CatalogClient(catalog, hub.tokens["alice"]) as alice:  # kept body is stale
        assert [i.title for i in await alice.list_images()] == ["H"]
