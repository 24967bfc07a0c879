"""``tkhub gpu`` against a faked NVML and a real ledger file."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from tkhub.cli import app
from tkhub.gpu import nvml
from tkhub.gpu.model import Placement
from tkhub.local.inventory import local_inventory
from tkhub.local.ledger import GpuLedger

DEVICES = [nvml.NvmlDevice(str(i), f"GPU-{i}", "NVIDIA L4", 23034, 0, 5) for i in range(2)]


def test_table_shows_holders_and_release(fake_nvml, tmp_path):
    fake_nvml(DEVICES)
    ledger = GpuLedger(tmp_path / "state" / "gpu-ledger.json")
    ledger.allocate("alice/", Placement("device", "1", 1), local_inventory(ledger))
    runner = CliRunner()
    shown = runner.invoke(app, ["gpu", "--data-dir", str(tmp_path)], terminal_width=200)
    assert shown.exit_code == 0, shown.output
    assert "GPUs: 1 of 2 free" in shown.output and "alice/" in shown.output
    body = json.loads(runner.invoke(app, ["gpu", "--data-dir", str(tmp_path), "--json"]).output)
    assert body["free"] == 1 and body["total"] == 2
    freed = runner.invoke(app, ["gpu", "release", "alice/", "--data-dir", str(tmp_path)])
    assert freed.exit_code == 0 and "Released 1 GPU(s)" in freed.output
    again = runner.invoke(app, ["gpu", "release", "alice/", "--data-dir", str(tmp_path)])
    assert again.exit_code == 1 and "Traceback" not in again.output


def test_no_gpu_message(fake_nvml, tmp_path):
    fake_nvml(nvml.NvmlUnavailable("no NVIDIA driver on this machine"))
    result = CliRunner().invoke(app, ["gpu", "--data-dir", str(tmp_path)])
    assert result.exit_code == 0 and "No GPUs: no NVIDIA driver" in result.output
