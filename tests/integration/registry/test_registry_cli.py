"""``tkhub catalog sync`` / ``list`` as a user runs them, against a real registry."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.registry
JUPYTER = {"io.thinkube.jupyter.compatible": "true"}


def tkhub(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-c", "from tkhub.cli import main; main()", *args]
    env = {**os.environ, "COLUMNS": "200"}  # one table row per line
    return subprocess.run(
        command, capture_output=True, text=True, timeout=120, check=False, env=env
    )


def configure(data_dir: Path, registries: list[dict[str, Any]]) -> None:
    (data_dir / "tkhub.yaml").write_text(yaml.safe_dump({"registries": registries}))


def test_sync_prints_a_table_with_reasons(
    start_registry: Callable[..., Any], data_dir: Path
) -> None:
    registry = start_registry()
    registry.push("cli/lab", "latest", {**JUPYTER, "io.thinkube.jupyter.display-name": "CLI Lab"})
    registry.push("cli/broken", "latest", {**JUPYTER, "io.thinkube.jupyter.gpu": "maybe"})
    configure(data_dir, [{"name": "local", "url": registry.url}])

    done = tkhub("catalog", "sync", "--data-dir", str(data_dir))

    assert done.returncode == 0, done.stderr
    out = " ".join(done.stdout.split())
    assert "Registry local: ok" in out
    assert "added │ cli-lab │ cli/lab:latest" in out
    assert "skipped │ │ cli/broken:latest │ label io.thinkube.jupyter.gpu: 'maybe'" in out
    assert "1 added, 0 updated, 0 unchanged, 0 removed, 1 skipped" in out
    listed = tkhub("catalog", "list", "--data-dir", str(data_dir))
    assert "cli-lab" in listed.stdout and "CLI Lab" in listed.stdout


def test_errors_are_one_line_without_traceback(data_dir: Path) -> None:
    configure(data_dir, [{"name": "gone", "url": "http://127.0.0.1:9"}])

    unknown = tkhub("catalog", "sync", "--data-dir", str(data_dir), "--registry", "nope")
    assert unknown.returncode == 2
    assert "no registry named 'nope' (configured: gone)" in unknown.stderr

    down = tkhub("catalog", "sync", "--data-dir", str(data_dir))
    assert down.returncode == 1
    assert "Traceback" not in down.stderr + down.stdout
    assert "did not answer" in " ".join(down.stdout.split())
