"""``tkhub up`` refuses service settings that could not work, before anything starts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "local"))
from local_hub import TKHUB  # noqa: E402


def up(data: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([TKHUB, "up", "--data-dir", str(data), "--port", "9"],
                          capture_output=True, text=True, timeout=60)  # fmt: skip


def test_a_secret_file_others_can_read_is_refused_and_nothing_is_written(tmp_path):
    key = tmp_path / "gateway-key"
    key.write_text("sk-not-private\n")
    key.chmod(0o644)
    data = tmp_path / "data"
    data.mkdir()
    (data / "tkhub.yaml").write_text(json.dumps({"services": [
        {"name": "LLM gateway", "secrets": {"OPENAI_API_KEY": str(key)}}]}))  # fmt: skip

    done = up(data)

    said = done.stdout + done.stderr
    assert done.returncode == 1, said
    assert "services: LLM gateway: OPENAI_API_KEY:" in said
    assert "readable by other users (mode 0644); chmod 600 it" in " ".join(said.split())
    assert "Traceback" not in said and "sk-not-private" not in said
    assert sorted(p.name for p in data.iterdir()) == ["tkhub.yaml"]  # nothing started


def test_a_variable_tkhub_sets_itself_is_refused(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "tkhub.yaml").write_text(json.dumps({"services": [
        {"name": "Bad", "env": {"CUDA_VISIBLE_DEVICES": "0"}}]}))  # fmt: skip
    done = up(data)
    said = " ".join((done.stdout + done.stderr).split())
    assert done.returncode == 2 and "Traceback" not in said
    assert "CUDA_VISIBLE_DEVICES is set by tkhub itself" in said
