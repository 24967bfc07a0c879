"""Local inventory with NVML faked at its boundary (``tkhub.gpu.nvml.read_devices``)."""

from __future__ import annotations

from tkhub.gpu import nvml
from tkhub.gpu.model import Placement
from tkhub.local.gpu_env import gpu_environment
from tkhub.local.inventory import local_inventory
from tkhub.local.ledger import GpuLedger

H100 = "NVIDIA H100 80GB HBM3"
DEVICES = [
    nvml.NvmlDevice("0", "GPU-aaaa", H100, 81559, 500, 3),
    nvml.NvmlDevice("1", "GPU-bbbb", H100, 81559, 0, 0),
    nvml.NvmlDevice("2:0", "MIG-cccc", "NVIDIA A100 MIG 3g.20gb", 19968, 0, None),
]


def test_no_driver_is_zero_gpus_with_a_note(fake_nvml):
    fake_nvml(nvml.NvmlUnavailable("no NVIDIA driver on this machine"))
    inv = local_inventory()
    assert inv.total == 0 and inv.free == 0
    assert inv.note == "no NVIDIA driver on this machine"
    assert not inv.to_dict()["nodes"][0]["pools"]


def test_real_nvml_without_driver_is_not_an_error():
    # on CPU-only CI this exercises pynvml itself; on a GPU machine it lists the GPUs
    inv = local_inventory()
    assert inv.mode == "local"
    assert inv.total == 0 or inv.note == ""


def test_devices_grouped_by_model_with_holders(fake_nvml, tmp_path):
    fake_nvml(DEVICES)
    ledger = GpuLedger(tmp_path / "gpu-ledger.json")
    inv = local_inventory(ledger)
    ledger.allocate("alice/", Placement("device", "1", 1), inv)
    inv = local_inventory(ledger)
    pools = {p.model: p for p in inv.nodes[0].pools}
    assert (pools[H100].total, pools[H100].free) == (2, 1)
    assert pools[H100].devices[1].holders == ("alice/",)
    assert pools["NVIDIA A100 MIG 3g.20gb"].devices[0].index == "2:0"
    assert inv.total == 3 and inv.free == 2


def test_gpu_environment_uses_uuids(fake_nvml):
    fake_nvml(DEVICES)
    devices = local_inventory().nodes[0].pools[0].devices
    assert gpu_environment(devices)["CUDA_VISIBLE_DEVICES"] == "GPU-aaaa,GPU-bbbb"
    assert gpu_environment(devices)["NVIDIA_VISIBLE_DEVICES"] == "GPU-aaaa,GPU-bbbb"
    assert gpu_environment(())["CUDA_VISIBLE_DEVICES"] == ""
    assert gpu_environment(())["NVIDIA_VISIBLE_DEVICES"] == "void"
