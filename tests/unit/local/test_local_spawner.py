"""LocalSpawner and the shared mixin, in the style of JupyterHub's own spawner tests.

A spawner is built with a user and a hub stand-in and its hooks are called
directly: no server process, no system account (``run_as_system_users`` off), the
catalog replaced by a list and NVML by a fixed inventory.
"""

from __future__ import annotations

import subprocess
import sys
import types
from pathlib import Path

import pytest
from traitlets import TraitError
from traitlets.config import Config

from tkhub.catalog.schemas import ImagePublic
from tkhub.errors import SpawnRefused
from tkhub.gpu.model import GpuDevice, Inventory, Placement
from tkhub.local.inventory import local_node
from tkhub.local.processes import start_time
from tkhub.local.spawner import LocalSpawner
from tkhub.selection import Selection
from tkhub.spawnpage.http_errors import BadSelection

H100 = "NVIDIA H100 80GB HBM3"
HERE = ImagePublic(name="here", kind="local", python=sys.executable, default=True)
TEAM = ImagePublic(
    name="team", kind="local", python=sys.executable, allowed_groups=["ml"], display_name="Team"
)
IMAGE = ImagePublic(name="img", kind="oci", image="reg/img:1", display_name="An image")


class Spawner(LocalSpawner):
    """LocalSpawner with the catalog and NVML replaced at their boundaries; counts reads."""

    catalog_reads = 0

    async def fetch_catalog(self) -> list[ImagePublic]:
        self.catalog_reads += 1
        return [HERE, TEAM, IMAGE]

    async def inventory_for_start(self) -> Inventory:
        devices = [GpuDevice("0", "GPU-0", H100, 81559), GpuDevice("1", "GPU-1", H100, 81559)]
        return Inventory(mode="local", nodes=(local_node(devices),))

    fetch_inventory = inventory_for_start


def new_spawner(home: Path, groups: tuple[str, ...] = (), **traits) -> Spawner:
    config = Config()
    config.LocalSpawner.data_dir = str(home)
    config.LocalSpawner.catalog_url = "http://127.0.0.1:9"
    config.LocalSpawner.run_as_system_users = False
    for name, value in traits.items():
        setattr(config.LocalSpawner, name, value)
    user = types.SimpleNamespace(
        name="alice", id=1, url="/user/alice/", admin=False,
        groups=[types.SimpleNamespace(name=g) for g in groups],
    )  # fmt: skip
    hub = types.SimpleNamespace(
        api_url="http://127.0.0.1:8081/hub/api", base_url="/hub/", public_host=""
    )
    return Spawner(user=user, hub=hub, config=config)


def services(secrets_dir: Path) -> list[dict]:
    token = secrets_dir / "gw-key"
    token.write_text("sk-gateway-secret\n")
    token.chmod(0o600)
    return [
        {"name": "MLflow", "env": {"MLFLOW_TRACKING_URI": "http://127.0.0.1:5000"}},
        {"name": "LLM gateway", "env": {"OPENAI_BASE_URL": "http://127.0.0.1:4000/v1"},
         "secrets": {"OPENAI_API_KEY": str(token)}, "groups": ["/ml"]},
    ]  # fmt: skip


async def test_services_reach_the_server_by_group_secrets_read_at_start(tmp_path, caplog):
    secrets_dir = tmp_path / "secrets"
    secrets_dir.mkdir()
    configured = services(secrets_dir)
    member = new_spawner(tmp_path, groups=("ml",), platform_services=configured)
    await member.apply_selection(Selection(HERE, Placement("cpu")), Inventory("local"))
    env = member.get_env()
    assert env["MLFLOW_TRACKING_URI"] == "http://127.0.0.1:5000"
    assert env["OPENAI_BASE_URL"] == "http://127.0.0.1:4000/v1"
    assert env["OPENAI_API_KEY"] == "sk-gateway-secret"
    page = await member.render_spawn_page()
    assert "MLflow" in page and "LLM gateway" in page and "sk-gateway" not in page

    other = new_spawner(tmp_path, platform_services=configured)
    await other.apply_selection(Selection(HERE, Placement("cpu")), Inventory("local"))
    env = other.get_env()
    assert "MLFLOW_TRACKING_URI" in env
    assert "OPENAI_BASE_URL" not in env and "OPENAI_API_KEY" not in env
    assert "LLM gateway" not in await other.render_spawn_page()

    (secrets_dir / "gw-key").chmod(0o644)  # loosened later: left out, the spawn goes on
    env = member.get_env()
    assert "OPENAI_API_KEY" not in env and env["OPENAI_BASE_URL"]
    assert "OPENAI_API_KEY not set" in caplog.text and "chmod 600" in caplog.text
    assert "sk-gateway" not in caplog.text


async def test_apply_selection_sets_command_notebook_dir_and_gpu_environment(tmp_path):
    spawner = new_spawner(tmp_path)
    inventory = await spawner.inventory_for_start()
    await spawner.apply_selection(Selection(HERE, Placement("device", "1", 1)), inventory)
    assert spawner.cmd == [sys.executable, "-m", "jupyterhub.singleuser"]
    # JupyterLab's root reaches datasets and models; it opens in notebooks (default_url)
    assert spawner.notebook_dir == str(spawner.layout.root)
    assert spawner.layout.notebooks.is_dir()
    env = spawner.get_env()
    assert env["CUDA_VISIBLE_DEVICES"] == "GPU-1" and env["TKHUB_ENVIRONMENT"] == "here"
    assert spawner.ledger.held_by("alice/") == ["GPU-1"]
    assert spawner.get_state()["gpus"] == ["GPU-1"]
    spawner._release()
    assert spawner.ledger.held_by("alice/") == []


async def test_state_survives_a_hub_restart(tmp_path):
    spawner = new_spawner(tmp_path)
    state = {"gpus": ["GPU-0"], "environment": "here", "pid": 4242, "pid_started": 1.5e9}
    spawner.load_state(state)
    assert spawner.get_state() == state
    spawner.clear_state()
    assert "gpus" not in spawner.get_state() and "environment" not in spawner.get_state()
    assert "pid_started" not in spawner.get_state()


@pytest.fixture
def unrelated_process():
    """A process that is not the server: it got the number of one that died."""
    proc = subprocess.Popen(["sleep", "60"])
    yield proc
    proc.kill()
    proc.wait()


async def resumed_holding_a_gpu(tmp_path: Path, pid: int, started: float | None) -> Spawner:
    """A spawner as the hub loads it after a restart, its server's GPU in the ledger."""
    spawner = new_spawner(tmp_path)
    inventory = await spawner.inventory_for_start()
    spawner.ledger.allocate(spawner.server_key, Placement("device", "0", 1), inventory)
    spawner.load_state({"pid": pid, "pid_started": started, "gpus": ["GPU-0"]})
    return spawner


async def test_a_reused_pid_is_neither_kept_running_nor_signalled(tmp_path, unrelated_process):
    pid = unrelated_process.pid
    spawner = await resumed_holding_a_gpu(tmp_path, pid, start_time(pid) - 3600)
    assert await spawner.poll() == 0  # the server is gone, whatever holds its pid now
    assert spawner.ledger.held_by("alice/") == []
    await spawner.stop(now=True)
    assert unrelated_process.poll() is None  # not killed by the stop meant for the server


async def test_the_same_process_is_still_the_server(tmp_path, unrelated_process):
    pid = unrelated_process.pid
    spawner = await resumed_holding_a_gpu(tmp_path, pid, start_time(pid))
    assert await spawner.poll() is None
    assert spawner.ledger.held_by("alice/") == ["GPU-0"]


async def test_an_image_environment_is_refused_on_this_machine(tmp_path):
    spawner = new_spawner(tmp_path)
    with pytest.raises(SpawnRefused, match="container image"):
        await spawner.apply_selection(Selection(IMAGE, Placement("cpu")), Inventory("local"))


async def test_a_missing_interpreter_is_refused_with_the_fix(tmp_path):
    spawner = new_spawner(tmp_path)
    gone = HERE.model_copy(update={"python": str(tmp_path / "nope" / "python")})
    with pytest.raises(SpawnRefused, match="tkhub env remove here"):
        await spawner.apply_selection(Selection(gone, Placement("cpu")), Inventory("local"))


def test_one_ledger_per_hub_process(tmp_path):
    first, second = new_spawner(tmp_path), new_spawner(tmp_path)
    assert first.ledger is second.ledger  # its thread lock protects something


@pytest.mark.parametrize(
    ("traits", "words"),
    [
        ({"data_dir": ""}, "LocalSpawner.data_dir: not set"),
        ({"data_dir": "relative"}, "LocalSpawner.data_dir: 'relative' is not an absolute path"),
        ({"catalog_url": ""}, "LocalSpawner.catalog_url: not set"),
        ({"catalog_url": "catalog:8011"}, "LocalSpawner.catalog_url: 'catalog:8011' is not"),
        ({"max_servers_per_gpu": 0}, "LocalSpawner.max_servers_per_gpu: 0 must be at least 1"),
        ({"catalog_timeout": 0}, "LocalSpawner.catalog_timeout: must be more than 0"),
        (
            {"platform_services": [{"name": "M", "env": {"HOME": "/x"}}]},
            r"LocalSpawner.platform_services\[0\]: .*HOME is set by tkhub itself",
        ),
        (
            {"platform_services": [{"name": "M", "secrets": {"K": {"name": "s", "key": "k"}}}]},
            r"LocalSpawner.platform_services\[0\].secrets.K: ",  # a file on one machine
        ),
    ],
)
def test_bad_configuration_names_the_trait(tmp_path, traits, words):
    with pytest.raises(TraitError, match=words):
        new_spawner(tmp_path, **traits).check_config()


# --- the mixin's one parse per request --------------------------------------------------


async def test_a_submitted_selection_is_kept_for_the_start(tmp_path):
    spawner = new_spawner(tmp_path)
    spawner.user_options = await spawner.options_from_form({"image": ["here"], "gpu": ["auto"]})
    assert spawner.catalog_reads == 1 and spawner.selection is not None
    selection = await spawner.selection_for_start(await spawner.inventory_for_start())
    assert spawner.catalog_reads == 1  # the start re-checks availability, not the catalog
    assert selection.image.name == "here" and selection.placement == Placement("auto", count=1)
    assert spawner.selection is None  # used once


async def test_a_rest_body_is_parsed_at_start_and_typos_refused(tmp_path):
    spawner = new_spawner(tmp_path)
    spawner.user_options = {"image": "here", "imgae": "x"}
    with pytest.raises(BadSelection) as info:
        await spawner.selection_for_start(await spawner.inventory_for_start())
    assert info.value.status_code == 400 and "unknown option 'imgae'" in info.value.reason_text
    spawner.user_options = {"image": "here", "gpu": "device:0"}
    selection = await spawner.selection_for_start(await spawner.inventory_for_start())
    assert selection.placement == Placement("device", "0", 1)


async def test_an_environment_of_another_group_is_a_403(tmp_path):
    spawner = new_spawner(tmp_path)
    spawner.user_options = {"image": "team"}
    with pytest.raises(BadSelection) as info:
        await spawner.selection_for_start(await spawner.inventory_for_start())
    assert info.value.status_code == 403
    assert info.value.reason_text == "Team is not available to your groups"
