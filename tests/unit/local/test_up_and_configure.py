"""``tkhub up``'s preparation and ``tkhub.hub.configure``: real files, ports and SQLite."""

from __future__ import annotations

import os
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from traitlets.config import Config

from tkhub.gpu.model import GpuDevice, Inventory, Placement
from tkhub.local import up
from tkhub.local.hub_config import configure
from tkhub.local.inventory import local_node
from tkhub.local.ledger import ledger_for
from tkhub.local.password_auth import UserStore, users_file
from tkhub.local.processes import start_time
from tkhub.local.secrets import CLI_TOKEN, ensure_secret
from tkhub.settings import load_settings


@pytest.fixture
def settings(tmp_path: Path):
    return load_settings(data_dir=tmp_path / "data", max_servers_per_gpu=1)


@pytest.fixture
def fake_gpu_inventory() -> Inventory:
    devices = [GpuDevice(str(i), f"GPU-{i}", "NVIDIA L4", 23034, 0, 0) for i in range(4)]
    return Inventory(mode="local", nodes=(local_node(devices),))


def test_configure_binds_loopback_and_wires_services(settings):
    c = Config()
    configure(c, settings)
    assert c.JupyterHub.ip == "127.0.0.1" and c.JupyterHub.hub_ip == "127.0.0.1"
    assert c.JupyterHub.spawner_class == "tkhub-local"
    assert c.JupyterHub.authenticator_class == "tkhub-password"
    services = {s["name"]: s for s in c.JupyterHub.services}
    assert services["catalog"]["url"] == settings.catalog_url
    assert services["catalog"]["environment"]["TKHUB_DATA_DIR"] == str(settings.data_dir)
    assert "--timeout=3600" in services["idle-culler"]["command"]
    assert c.LocalSpawner.catalog_token == services["catalog"]["api_token"]
    roles = {r["name"]: r for r in c.JupyterHub.load_roles}
    assert "delete:servers" in roles["idle-culler"]["scopes"]
    for path, mode in ((settings.state_dir, 0o700), (settings.secrets_dir, 0o700),
                       (settings.users_dir, 0o711)):  # fmt: skip
        assert stat.S_IMODE(path.stat().st_mode) == mode, path


def test_configure_without_culler_and_secrets_kept(settings):
    token = ensure_secret(settings, CLI_TOKEN)
    c = Config()
    configure(c, settings.model_copy(update={"cull_idle_timeout": 0}))
    assert "idle-culler" not in {s["name"] for s in c.JupyterHub.services}
    assert ensure_secret(settings, CLI_TOKEN) == token  # reused, not regenerated


def test_the_generated_config_loads_in_jupyterhub(settings, tmp_path: Path):
    """The file `tkhub up` writes, loaded by JupyterHub's own config loader."""
    config_file = tmp_path / "jupyterhub_config.py"
    config_file.write_text(up.HUB_CONFIG)
    code = (
        "from jupyterhub.app import JupyterHub; app = JupyterHub(); "
        f"app.load_config_file({str(config_file)!r}); "
        "print(app.config.JupyterHub.spawner_class)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "TKHUB_DATA_DIR": str(settings.data_dir)},
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "tkhub-local"


def test_first_admin_once(settings):
    first = up.ensure_first_admin(settings)
    assert first is not None and first.name == "admin"
    assert UserStore(users_file(settings)).verify("admin", first.password)
    assert stat.S_IMODE(first.password_file.stat().st_mode) == 0o600
    assert up.ensure_first_admin(settings) is None  # never a second time


def test_busy_port_is_one_clear_line(settings):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        busy = s.getsockname()[1]
        with pytest.raises(up.UpError, match=f"port {busy} on 127.0.0.1 is in use.*--port"):
            up.check_ports(settings.model_copy(update={"port": busy}))


def test_restart_frees_gpus_of_servers_that_died(settings, fake_gpu_inventory):
    """From the ledger alone: never the hub's database (a private schema)."""
    settings.state_dir.mkdir(parents=True)
    ledger = ledger_for(settings)
    dead = subprocess.Popen(["true"])
    dead.wait()
    for key in ("alive/", "dead/", "unbound/gpu", "reused/"):
        ledger.allocate(key, Placement("auto", count=1), fake_gpu_inventory)
    started = start_time(os.getpid())
    assert started is not None
    ledger.bind("alive/", os.getpid(), started)
    ledger.bind("dead/", dead.pid, started)
    # "reused": its pid is this test's process now, which started at another time
    ledger.bind("reused/", os.getpid(), started - 3600)
    # "unbound/gpu": allocated, but its start never finished (no process was bound)
    assert not (settings.state_dir / "jupyterhub.sqlite").exists()
    assert up.reconcile_gpus(settings) == ["dead/", "reused/", "unbound/gpu"]
    holders = [k for keys in ledger.holders().values() for k in keys]
    assert holders == ["alive/"]


@pytest.mark.skipif(os.geteuid() != 0, reason="per-user accounts exist only for a root hub")
def test_a_data_dir_users_cannot_enter_is_refused_and_nothing_created():
    root = Path(tempfile.mkdtemp(dir="/tmp"))  # pytest's own tmp_path is private itself
    root.chmod(0o755)
    private = root / "private"
    private.mkdir(mode=0o700)
    private.chmod(0o700)
    settings = load_settings(data_dir=private / "data")
    with pytest.raises(up.UpError, match=f"{private} is private"):
        ports = {"port": 0, "hub_api_port": 0, "proxy_api_port": 0, "catalog_port": 0}
        up.prepare(settings.model_copy(update=ports))
    assert not (private / "data").exists()
    shutil.rmtree(root)
