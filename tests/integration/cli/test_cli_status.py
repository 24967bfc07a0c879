"""``tkhub status`` against a real hub running a real single-user server."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from typer.testing import Result

from tkhub.gpu.model import GpuDevice, Inventory, Placement
from tkhub.local.inventory import local_node
from tkhub.local.ledger import ledger_for
from tkhub.settings import load_settings

Tkhub = Callable[..., Result]
FAKE_UUID = "GPU-00000000-test-0000-0000-000000000001"  # no such device: shown by UUID


def flat(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture
def alice_server(stack: Any) -> Iterator[None]:
    """alice's default server, started with the user_options the spawn page would keep."""
    api = stack.hub.api_url
    headers = {"Authorization": f"token {stack.hub.tokens['admin']}"}
    started = httpx.post(
        f"{api}/users/alice/server", json={"image": "cli-lab"}, headers=headers, timeout=90
    )
    assert started.status_code in (201, 202), started.text
    for _ in range(600):
        model = httpx.get(f"{api}/users/alice", headers=headers).json()
        if model["servers"].get("", {}).get("ready"):
            break
        time.sleep(0.1)
    else:
        pytest.fail("alice's server did not become ready")
    yield
    httpx.delete(f"{api}/users/alice/server", headers=headers, timeout=60)
    for _ in range(300):
        if not httpx.get(f"{api}/users/alice", headers=headers).json()["servers"]:
            return
        time.sleep(0.1)


def test_hub_up_with_a_running_server(stack: Any, tkhub: Tkhub, alice_server: None) -> None:
    settings = load_settings(data_dir=stack.data_dir)
    device = GpuDevice(
        index="0", uuid=FAKE_UUID, model="Test GPU", memory_total_mib=1024, memory_used_mib=0,
        utilization_pct=0,
    )  # fmt: skip
    inventory = Inventory(mode="local", nodes=(local_node([device]),))
    ledger_for(settings).allocate("alice/", Placement("device", "0", 1), inventory)

    result = tkhub(stack.data_dir, "status")

    assert result.exit_code == 0, result.output
    out = flat(result.stdout)
    assert f"Hub: ok answering at {stack.hub.url} (JupyterHub" in out
    assert f"Catalog: ok healthy at {stack.catalog_url} (database ok)" in out
    assert "Running servers: 1" in out
    assert "alice │ (default) │ ready │" in out
    assert f"│ cli-lab │ {FAKE_UUID} │" in out


def test_hub_up_without_servers(stack: Any, tkhub: Tkhub) -> None:
    result = tkhub(stack.data_dir, "status")

    assert result.exit_code == 0, result.output
    assert "No servers running." in result.stdout


def test_hub_down(stack: Any, tkhub: Tkhub) -> None:
    port = stack.unused_port()
    stack.configure(port=port)

    result = tkhub(stack.data_dir, "status")

    assert result.exit_code == 1, result.output
    out = flat(result.stdout)
    assert f"Hub: FAIL does not answer at http://127.0.0.1:{port} (ConnectError)" in out
    assert "Catalog: ok" in out and "Start it with `tkhub up`." in out
    assert "Traceback" not in result.output


def test_catalog_down_fails_the_check(stack: Any, tkhub: Tkhub) -> None:
    port = stack.unused_port()
    stack.configure(catalog_port=port)

    result = tkhub(stack.data_dir, "status")

    assert result.exit_code == 1, result.output
    out = flat(result.stdout)
    assert "Hub: ok" in out
    assert f"Catalog: FAIL does not answer at http://127.0.0.1:{port}" in out


def test_a_token_the_hub_refuses(stack: Any, tkhub: Tkhub) -> None:
    (stack.data_dir / "secrets" / "cli-token").write_text(stack.hub.tokens["bob"] + "\n")

    result = tkhub(stack.data_dir, "status")

    assert result.exit_code == 1, result.output
    assert "Servers: the hub refused to list servers (403)" in flat(result.stdout)
