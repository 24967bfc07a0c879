"""The list shortcut (``tkhub.catalog.fastpath``): the same answers as the FastAPI
route, ETag/304, gzip, and every refusal still made (by the route behind it).

A real uvicorn server runs the catalog app on SQLite; tokens are checked by
``HubAuth`` against a small stand-in of the hub's ``/hub/api/user``.
"""

from __future__ import annotations

import gzip
import json
import shutil
import tempfile
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Header, HTTPException

from tkhub.catalog.app import create_app
from tkhub.catalog.cache import Listing
from tkhub.catalog.fastpath import wants_gzip
from tkhub.catalog.hub_tokens import make_hub_auth
from tkhub.settings import Settings

USERS = {
    "admin-token": {"kind": "user", "name": "admin", "admin": True, "groups": [], "scopes": []},
    "alice-token": {"kind": "user", "name": "alice", "groups": ["physics"], "scopes": []},
    "bob-token": {"kind": "user", "name": "bob", "groups": [], "scopes": []},
}
ENTRIES = [
    {"name": "plain", "image": "reg/plain:1", "gpu": "none", "default": True},
    {"name": "torch", "image": "reg/torch:1", "gpu": "required", "allowed_groups": ["physics"]},
    {"name": "chem", "image": "reg/chem:1", "allowed_groups": ["chemistry"]},
    {"name": "secret", "image": "reg/secret:1", "hidden": True},
]
LIST = "/api/v1/images/jupyter"


def hub_stand_in(asked: list[str]) -> FastAPI:
    app = FastAPI()

    @app.get("/hub/api/user")
    async def user(authorization: str = Header("")) -> dict[str, Any]:
        token = authorization.removeprefix("token ")
        asked.append(token)
        if token not in USERS:
            raise HTTPException(403)
        return USERS[token]

    return app


@pytest.fixture
def catalog(serve_app: Callable[[Any], str]) -> Iterator[tuple[str, list[str]]]:
    asked: list[str] = []
    hub = serve_app(hub_stand_in(asked))
    data_dir = tempfile.mkdtemp(dir="/tmp", prefix="tkhub-fast-")
    app = create_app(
        Settings(data_dir=data_dir),
        hub_auth=make_hub_auth(f"{hub}/hub/api", "service-token"),
        service_prefix="/services/catalog/",
    )
    url = serve_app(app)
    for entry in ENTRIES:
        created = get(url, "admin", method="POST", path="/api/v1/images", json=entry)
        assert created.status_code == 201, created.text
    yield url, asked
    app.state.engine.dispose()
    shutil.rmtree(data_dir, ignore_errors=True)


def get(
    url: str, who: str | None, *, path: str = LIST, method: str = "GET", **kw: Any
) -> httpx.Response:
    headers = {"Accept-Encoding": "identity", **kw.pop("headers", {})}
    if who:
        headers["Authorization"] = f"token {who}-token"
    return httpx.request(method, url + path, headers=headers, timeout=30, **kw)


def names(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [e["name"] for e in response.json()]


@pytest.mark.parametrize(
    ("who", "query", "expected"),
    [
        ("bob", "", ["plain"]),
        ("alice", "", ["plain", "torch"]),
        ("admin", "", ["plain", "chem", "torch"]),
        ("admin", "?include_hidden=true", ["plain", "chem", "secret", "torch"]),
        ("admin", "?include_hidden=false", ["plain", "chem", "torch"]),
        ("alice", "?gpu=required", ["torch"]),
        ("bob", "?gpu=required", []),
        ("admin", "?group=chemistry", ["plain", "chem"]),
        ("admin", "?group=", ["plain"]),
        ("alice", "?gpu=none&group=physics", ["plain"]),
    ],
)
def test_same_answer_as_the_route(
    catalog: tuple[str, list[str]], who: str, query: str, expected: list[str]
) -> None:
    """An unknown extra parameter sends the request on to the route: compare both."""
    url, _ = catalog
    fast = get(url, who, path=LIST + query)
    routed = get(url, who, path=LIST + (query + "&" if query else "?") + "x=1")
    assert names(fast) == expected
    assert fast.content == routed.content
    assert fast.headers["etag"] == routed.headers["etag"]
    assert fast.headers["content-type"] == routed.headers["content-type"] == "application/json"
    prefixed = get(url, who, path="/services/catalog" + LIST + query)
    assert prefixed.content == fast.content


def test_refusals_are_unchanged(catalog: tuple[str, list[str]]) -> None:
    url, asked = catalog
    etag = get(url, "bob").headers["etag"]
    missing = get(url, None, headers={"If-None-Match": etag})
    assert missing.status_code == 401 and missing.headers["www-authenticate"] == "token"
    assert "authorization" in missing.json()["detail"]
    for _ in range(2):  # the unknown token is cached as unknown; still refused
        unknown = get(url, "mallory", headers={"If-None-Match": etag})
        assert unknown.status_code == 403 and "etag" not in unknown.headers
        assert unknown.json() == {"detail": "authorization: the hub does not know this token"}
    assert asked.count("mallory-token") == 1
    hidden = get(url, "bob", path=LIST + "?include_hidden=true")
    assert hidden.status_code == 403 and "include_hidden" in hidden.json()["detail"]
    bad = get(url, "bob", path=LIST + "?gpu=lots")
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["query", "gpu"]
    assert get(url, "bob", path=LIST + "?include_hidden=yes").status_code == 403
    assert get(url, "admin", path=LIST + "?include_hidden=yes").status_code == 200
    assert get(url, "bob", method="HEAD").status_code == 405
    assert get(url, "bob", method="POST").status_code == 405


def test_a_known_token_is_checked_once(catalog: tuple[str, list[str]]) -> None:
    url, asked = catalog
    for _ in range(5):
        assert names(get(url, "bob")) == ["plain"]
    assert asked.count("bob-token") == 1  # then HubAuth's cache answered


def test_etag_round_trip_and_writes(catalog: tuple[str, list[str]]) -> None:
    url, _ = catalog
    first = get(url, "alice")
    etag = first.headers["etag"]
    assert etag.startswith('"') and etag.endswith('"')
    for sent in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        again = get(url, "alice", headers={"If-None-Match": sent})
        assert again.status_code == 304 and again.content == b""
        assert again.headers["etag"] == etag
    assert get(url, "alice", headers={"If-None-Match": '"other"'}).content == first.content
    assert get(url, "bob").headers["etag"] != etag  # another answer, another tag
    changed = get(
        url, "admin", method="PATCH", path="/api/v1/images/torch", json={"display_name": "T"}
    )
    assert changed.status_code == 200
    after = get(url, "alice", headers={"If-None-Match": etag})
    assert after.status_code == 200 and after.headers["etag"] != etag
    assert [e["display_name"] for e in after.json()] == ["", "T"]
    assert get(url, "alice", method="DELETE", path="/api/v1/images/torch").status_code == 403
    assert get(url, "admin", method="DELETE", path="/api/v1/images/torch").status_code == 204
    gone = get(url, "alice", headers={"If-None-Match": after.headers["etag"]})
    assert names(gone) == ["plain"]


def test_gzip_when_accepted(catalog: tuple[str, list[str]]) -> None:
    url, _ = catalog
    plain = get(url, "admin")
    raw = httpx.get(
        url + LIST, headers={"Authorization": "token admin-token", "Accept-Encoding": "gzip"}
    )
    assert raw.headers["content-encoding"] == "gzip" and raw.headers["vary"] == "Accept-Encoding"
    assert raw.content == plain.content  # httpx decodes it
    assert raw.headers["etag"] == plain.headers["etag"]
    assert "content-encoding" not in plain.headers


def test_cache_disabled_answers_through_the_route(serve_app: Callable[[Any], str]) -> None:
    asked: list[str] = []
    hub = serve_app(hub_stand_in(asked))
    data_dir = tempfile.mkdtemp(dir="/tmp", prefix="tkhub-fast-")
    app = create_app(
        Settings(data_dir=data_dir),
        hub_auth=make_hub_auth(f"{hub}/hub/api", "service-token"),
        cache_enabled=False,
    )
    url = serve_app(app)
    assert get(url, "admin", method="POST", path="/api/v1/images", json=ENTRIES[0]).is_success
    first = get(url, "bob")
    assert names(first) == ["plain"]
    again = get(url, "bob", headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304
    app.state.engine.dispose()
    shutil.rmtree(data_dir, ignore_errors=True)


def test_listing_helpers() -> None:
    listing = Listing.of(b"[]")
    assert listing.etag == Listing.of(b"[]").etag != Listing.of(b"[1]").etag
    assert not listing.matches(None) and not listing.matches("") and listing.matches("*")
    assert listing.matches(f'W/"x" , {listing.etag}')
    assert json.loads(gzip.decompress(listing.gzipped())) == []
    assert wants_gzip("gzip, deflate") and wants_gzip("br;q=1.0, GZIP;q=0.5")
    assert not wants_gzip(None) and not wants_gzip("identity") and not wants_gzip("gzip;q=0")
