"""The sync routes of the real catalog service, authenticated by a real JupyterHub."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tkhub.catalog.app import create_app
from tkhub.catalog.hub_tokens import make_hub_auth
from tkhub.settings import Settings

pytestmark = pytest.mark.registry
JUPYTER = {"io.thinkube.jupyter.compatible": "true"}
SECRET = "harbor-shared-secret"


def harbor_push(registry: Any, repository: str, tag: str) -> dict[str, Any]:
    return {
        "type": "PUSH_ARTIFACT",
        "event_data": {
            "repository": {"repo_full_name": repository, "name": repository.split("/")[-1]},
            "resources": [{"tag": tag, "resource_url": f"{registry.host}/{repository}:{tag}"}],
        },
    }


@pytest.fixture
def catalog(
    hub: Any, start_registry: Callable[..., Any], serve: Callable[[Any], str], data_dir: Path
) -> Any:
    registry = start_registry()
    data = data_dir
    secret = Path(data, "harbor-secret")
    secret.write_text(SECRET)
    secret.chmod(0o600)
    settings = Settings(
        data_dir=data,
        registries=[registry.settings(name="local", tags="glob:*")],
        harbor_webhook_secret_file=secret,
        catalog_sync_interval=0,
    )
    app = create_app(
        settings, hub_auth=make_hub_auth(hub.api_url, hub.service_token), service_prefix=""
    )
    url = serve(app)

    def call(method: str, path: str, user: str | None = "admin", **kw: Any) -> httpx.Response:
        headers = kw.pop("headers", {})
        if user:
            headers["Authorization"] = f"token {hub.tokens[user]}"
        return httpx.request(method, url + path, headers=headers, timeout=60, **kw)

    return registry, call


def names(call: Callable[..., httpx.Response]) -> list[str]:
    return [i["name"] for i in call("GET", "/api/v1/images/jupyter").json()]


def test_sync_route_needs_an_admin_and_updates_the_served_list(catalog: Any) -> None:
    registry, call = catalog
    registry.push("team/lab", "latest", JUPYTER)

    assert call("POST", "/api/v1/sync", user=None).status_code == 401
    refused = call("POST", "/api/v1/sync", user="alice")
    assert refused.status_code == 403 and "admin" in refused.json()["detail"]
    assert call("POST", "/api/v1/sync", params={"registry": "nope"}).status_code == 400

    done = call("POST", "/api/v1/sync")
    assert done.status_code == 200
    (run,) = done.json()["registries"]
    assert [c["name"] for c in run["added"]] == ["team-lab"]
    assert names(call) == ["team-lab"]  # the cache was invalidated

    status = call("GET", "/api/v1/sync/status", user="alice").json()
    (local,) = status["registries"]
    assert local["registry"] == "local" and local["ok"] is True
    assert local["last_success"] and local["counts"]["added"] == 1


def test_status_reports_a_registry_that_is_down(catalog: Any) -> None:
    registry, call = catalog
    registry.push("team/lab", "latest", JUPYTER)
    call("POST", "/api/v1/sync")
    registry.stop()

    run = call("POST", "/api/v1/sync").json()["registries"][0]

    assert run["ok"] is False and run["removed"] == []
    assert names(call) == ["team-lab"]  # last good entries keep being served
    local = call("GET", "/api/v1/sync/status").json()["registries"][0]
    assert local["ok"] is False and "did not answer" in local["errors"][0]
    assert local["last_success"] is not None


def test_harbor_webhook_syncs_just_that_repository(catalog: Any) -> None:
    registry, call = catalog
    registry.push("proj/one", "latest", JUPYTER)
    registry.push("proj/two", "latest", JUPYTER)
    payload = harbor_push(registry, "proj/one", "latest")

    assert call("POST", "/api/v1/webhooks/harbor", user=None, json=payload).status_code == 403
    wrong = {"X-Harbor-Secret": "guess"}
    assert (
        call("POST", "/api/v1/webhooks/harbor", None, json=payload, headers=wrong).status_code
        == 403
    )
    bad = call(
        "POST",
        "/api/v1/webhooks/harbor",
        None,
        json={"type": "PING"},
        headers={"X-Harbor-Secret": SECRET},
    )
    assert bad.status_code == 400 and "type" in bad.json()["detail"]

    done = call(
        "POST", "/api/v1/webhooks/harbor", None, json=payload, headers={"Authorization": SECRET}
    )

    assert done.status_code == 200
    (run,) = done.json()["registries"]
    assert run["repository"] == "proj/one"
    assert [c["name"] for c in run["added"]] == ["proj-one"]
    assert names(call) == ["proj-one"]
    call("POST", "/api/v1/sync")
    registry.delete("proj/two", "latest")
    again = call(
        "POST", "/api/v1/webhooks/harbor", None, json=payload, headers={"X-Harbor-Secret": SECRET}
    ).json()["registries"][0]
    assert again["removed"] == []  # proj/two is another repository's business
    assert sorted(names(call)) == ["proj-one", "proj-two"]


def test_periodic_sync_picks_up_a_push(
    hub: Any, start_registry: Callable[..., Any], serve: Callable[[Any], str], data_dir: Path
) -> None:
    registry = start_registry()
    settings = Settings(
        data_dir=data_dir,
        registries=[registry.settings(name="local")],
        catalog_sync_interval=1,
    )
    app = create_app(
        settings, hub_auth=make_hub_auth(hub.api_url, hub.service_token), service_prefix=""
    )
    url = serve(app)
    registry.push("auto/lab", "latest", JUPYTER)
    headers = {"Authorization": f"token {hub.tokens['alice']}"}
    for _ in range(200):
        listed = httpx.get(f"{url}/api/v1/images/jupyter", headers=headers).json()
        if [i["name"] for i in listed] == ["auto-lab"]:
            return
        time.sleep(0.1)
    pytest.fail(f"the periodic sync did not add auto/lab: {listed}")
