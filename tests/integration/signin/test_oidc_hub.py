"""Sign-in through a real OpenID Connect provider (``oidc-provider-mock``, an HTTP
server on 127.0.0.1) with ``tkhub up --oidc-issuer``, driven in headless Chromium:
the authorization-code flow with PKCE, groups from the userinfo claim deciding the
spawn page's cards and the admins, and a provider that stops answering."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import pytest_asyncio
from chromium import launched_chromium
from hubproc import free_port, remove_test_account, terminate, wait_for

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "local"))
from local_hub import LocalHub, running_tkhub_up  # noqa: E402

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]
PROVIDER = str(Path(sys.executable).parent / "oidc-provider-mock")
ENTRIES = [
    {"name": "open", "display_name": "Open to all"},
    {"name": "team", "display_name": "Team only", "allowed_groups": ["ml"]},
]
USERS = {  # Keycloak's "full group path" for alice: /ml is the group ml
    "alice": {"preferred_username": "alice", "groups": ["/ml"]},
    "bob": {"preferred_username": "bob", "groups": []},
    "boss": {"preferred_username": "boss", "groups": ["tkhub-admins"]},
    "carol": {"preferred_username": "carol", "groups": ["ml"]},
}
TOKEN_LIFE = 4  # seconds: the provider's access tokens expire during the tests


class Provider:
    def __init__(self, root: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = root / "provider.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [PROVIDER, "--port", str(self.port), "--token-max-age", str(TOKEN_LIFE)],
                stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        wait_for(self.url + "/.well-known/openid-configuration", self.proc, self.log)
        for sub, claims in USERS.items():
            made = httpx.put(f"{self.url}/users/{quote(sub)}", json=claims, timeout=10)
            assert made.status_code == 204, made.text

    def stop(self) -> None:
        if self.proc is not None:
            terminate(self.proc, timeout=10, sig=signal.SIGTERM)


@pytest.fixture(scope="module")
def stack() -> Iterator[tuple[LocalHub, Provider]]:
    root = Path(tempfile.mkdtemp(dir="/tmp", prefix="tkhub-oidc-"))
    root.chmod(0o755)
    provider = Provider(root)
    provider.start()
    secret = root / "client-secret"
    secret.write_text("not-checked-by-the-mock\n")
    secret.chmod(0o600)
    try:
        with running_tkhub_up("--oidc-issuer", provider.url, "--oidc-client-id", "tkhub",
                              "--oidc-client-secret-file", str(secret),
                              root=root, keep=True) as hub:  # fmt: skip
            assert f"Sign-in: {provider.url} (every account of the realm" in hub.printed()
            for entry in ENTRIES:
                body = {"kind": "local", "python": sys.executable, **entry}
                assert hub.catalog("POST", "/images", json=body).status_code == 201
            yield hub, provider
    finally:
        provider.stop()
        for user in (*USERS, "admin"):
            remove_test_account(user, root / "data")
        shutil.rmtree(root, ignore_errors=True)


@pytest_asyncio.fixture(scope="module")
async def browser() -> AsyncIterator[Any]:
    async with launched_chromium() as launched:
        yield launched


async def signed_in(browser: Any, hub: LocalHub, user: str) -> Any:
    """A page whose browser went through the provider's sign-in as ``user``."""
    context = await browser.new_context()
    page = await context.new_page()
    await page.goto(f"{hub.url}/hub/oauth_login")
    await page.fill("input[name=sub]", user)
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{hub.url}/hub/**")
    return page


def cookie_client(hub: LocalHub, cookies: list[dict[str, Any]]) -> httpx.Client:
    client = httpx.Client(base_url=hub.url, timeout=30)
    for cookie in cookies:
        client.cookies.set(cookie["name"], cookie["value"], path=cookie["path"])
    return client


async def test_groups_from_the_provider_decide_the_cards(stack, browser):
    hub, provider = stack
    alice = await signed_in(browser, hub, "alice")
    await alice.goto(f"{hub.url}/hub/spawn")
    shown = await alice.content()
    assert 'value="team"' in shown and 'value="open"' in shown
    user = hub.api("GET", "/users/alice").json()
    assert user["groups"] == ["ml"] and user["admin"] is False  # "/ml" is the group ml

    bob = await signed_in(browser, hub, "bob")
    await bob.goto(f"{hub.url}/hub/spawn")
    shown = await bob.content()
    assert 'value="open"' in shown and 'value="team"' not in shown
    await bob.goto(f"{hub.url}/hub/spawn?image=team")
    refused = " ".join((await bob.content()).split())
    assert "Team only is not available to your groups" in refused
    by_api = hub.spawn("bob", {"image": "team"})  # the REST API, same answer
    assert by_api.status_code in (400, 403), by_api.text
    assert "not available to" in by_api.json()["message"]
    assert hub.server("bob") is None  # nothing was started
    await bob.context.close()

    # the provider drops alice from ml: her next spawn page, without signing out
    claims = {**USERS["alice"], "groups": []}
    assert httpx.put(f"{provider.url}/users/alice", json=claims).status_code == 204
    await alice.goto(f"{hub.url}/hub/spawn")
    assert 'value="team"' not in await alice.content()
    assert hub.api("GET", "/users/alice").json()["groups"] == []
    await alice.context.close()


def access_token(hub: LocalHub, user: str) -> str:
    model = hub.api("GET", f"/users/{user}").json()  # an admin's token reads auth state
    return str(model["auth_state"]["access_token"])


def userinfo_status(provider: Provider, token: str) -> int:
    headers = {"Authorization": f"Bearer {token}"}
    return httpx.get(f"{provider.url}/userinfo", headers=headers, timeout=10).status_code


async def test_an_expired_access_token_is_renewed_without_signing_in_again(stack, browser):
    hub, provider = stack
    carol = await signed_in(browser, hub, "carol")
    first = access_token(hub, "carol")
    assert userinfo_status(provider, first) == 200
    time.sleep(TOKEN_LIFE + 1)
    assert userinfo_status(provider, first) == 401  # expired at the provider

    # the spawn page renews it with the refresh token: cards, not the sign-in page
    answer = await carol.goto(f"{hub.url}/hub/spawn")
    assert answer.status == 200 and carol.url.startswith(f"{hub.url}/hub/spawn")
    assert 'value="team"' in await carol.content()  # groups read with the new token
    renewed = access_token(hub, "carol")
    assert renewed != first and userinfo_status(provider, renewed) == 200

    # the provider ends carol's session (tokens revoked): she is sent to sign in again
    revoked = httpx.post(f"{provider.url}/users/carol/revoke-tokens", timeout=10)
    assert revoked.status_code == 204
    await carol.goto(f"{hub.url}/hub/spawn")
    assert carol.url.startswith(f"{hub.url}/hub/login?next="), carol.url
    await carol.context.close()


async def test_the_admin_group_makes_hub_and_catalog_admins(stack, browser):
    hub, _ = stack
    boss = await signed_in(browser, hub, "boss")
    admin_page = await boss.goto(f"{hub.url}/hub/admin")
    assert admin_page.status == 200
    assert hub.api("GET", "/users/boss").json()["admin"] is True
    with cookie_client(hub, await boss.context.cookies()) as client:
        xsrf = client.cookies.get("_xsrf", path="/hub/")
        made = client.post("/hub/api/users/boss/tokens", json={"expires_in": 600},
                           headers={"X-XSRFToken": xsrf})  # fmt: skip
        assert made.status_code == 201, made.text
    token = made.json()["token"]
    catalog = f"http://127.0.0.1:{hub.catalog_port}/api/v1/images"
    body = {"name": "by-boss", "kind": "local", "python": sys.executable}
    written = httpx.post(catalog, json=body, headers={"Authorization": f"token {token}"})
    assert written.status_code == 201, written.text
    await boss.context.close()

    bob = await signed_in(browser, hub, "bob")
    assert (await bob.goto(f"{hub.url}/hub/admin")).status == 403
    await bob.context.close()


async def test_a_provider_that_stops_answering_is_said_at_once(stack, browser):
    hub, provider = stack
    alice = await signed_in(browser, hub, "alice")
    assert hub.spawn("alice", {"image": "open"}).status_code in (201, 202)
    hub.wait_ready("alice")
    provider.stop()
    try:
        context = await browser.new_context()
        page = await context.new_page()
        answer = await page.goto(f"{hub.url}/hub/oauth_login", timeout=15_000)
        assert answer.status == 503
        said = " ".join((await page.content()).split())
        assert f"The sign-in service ({provider.url}) cannot be reached right now" in said
        assert hub.api("GET", "/").status_code == 200  # the hub answers
        # the server signs alice in through the hub (not the provider) and serves
        lab = await alice.goto(f"{hub.url}/user/alice/lab")
        assert lab.status == 200 and "/user/alice/lab" in alice.url, await lab.text()
        await context.close()
    finally:
        hub.stop("alice")
        await alice.context.close()
