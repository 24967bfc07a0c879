"""The CLI's shared helpers and ``tkhub status``'s formatting, without a hub."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tkhub.cli import app
from tkhub.cli.common import describe_detail
from tkhub.cli.status import _ago, _state, servers_table
from tkhub.settings import load_settings


def test_validation_detail_becomes_one_readable_line() -> None:
    detail = [
        {"loc": ["body", "name"], "msg": "String should match pattern"},
        {"loc": ["body"], "msg": "kind 'local' needs 'python'"},
    ]
    assert describe_detail(detail) == (
        "name: String should match pattern; kind 'local' needs 'python'"
    )
    assert describe_detail("name: no image named 'x'") == "name: no image named 'x'"


@pytest.mark.parametrize(
    ("ip", "url"),
    [
        ("0.0.0.0", "http://127.0.0.1:8000"),
        ("", "http://127.0.0.1:8000"),
        ("10.1.2.3", "http://10.1.2.3:8000"),
    ],
)
def test_hub_url_reaches_a_wildcard_address_locally(tmp_path: Path, ip: str, url: str) -> None:
    assert load_settings(data_dir=tmp_path, ip=ip, port=8000).reachable_hub_url == url


def test_times_and_states() -> None:
    now = datetime.now(UTC)
    assert _ago((now - timedelta(seconds=5)).isoformat()) == "just now"
    assert _ago((now - timedelta(minutes=7, seconds=3)).isoformat()) == "7 min ago"
    assert _ago((now - timedelta(days=2, hours=1)).isoformat()) == "2 d ago"
    assert _ago(None) == "-"
    assert _state({"ready": True, "pending": None}) == "ready"
    assert _state({"ready": False, "pending": "spawn"}) == "starting"


def test_servers_table_when_the_ledger_is_unreadable() -> None:
    table = servers_table([("bob", {"name": "gpu", "ready": True, "user_options": {}})], None)
    cells = [list(column.cells) for column in table.columns]
    assert [c[0] for c in cells] == ["bob", "gpu", "ready", "-", "-", "-", "?"]


def test_bad_settings_file_is_exit_2_one_line(tmp_path: Path) -> None:
    (tmp_path / "tkhub.yaml").write_text("port: [not, a, port]\n")
    result = CliRunner().invoke(app, ["users", "list", "--data-dir", str(tmp_path)])
    assert result.exit_code == 2, result.output
    assert "settings are not valid" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_env_without_a_token_says_run_up_first(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["env", "list", "--data-dir", str(tmp_path)])
    assert result.exit_code == 1, result.output
    message = " ".join(result.stderr.split())
    assert f"cannot read the CLI token {tmp_path}/secrets/cli-token" in message
    assert "run `tkhub up` first, or run this command as the user that runs the hub" in message
