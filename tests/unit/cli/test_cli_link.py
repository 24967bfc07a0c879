"""``tkhub link`` prints launch links; values the hub would refuse are refused here."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from typer.testing import CliRunner

from tkhub.cli import app
from tkhub.cli.link import LinkError, launch_link


def test_link_defaults_to_auto_on_the_configured_hub(tmp_path):
    result = CliRunner().invoke(app, ["link", "--image", "pytorch", "--data-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "http://127.0.0.1:8000/hub/spawn?image=pytorch&gpu=auto"


def test_named_server_link_with_count():
    url = launch_link(
        "https://hub.example.org/",
        image="jax",
        gpu="model:NVIDIA H100 80GB HBM3",
        count=2,
        user="alice@lab",
        server="train",
    )
    parts = urlsplit(url)
    assert parts.path == "/hub/spawn/alice%40lab/train"
    assert parse_qs(parts.query) == {
        "image": ["jax"],
        "gpu": ["model:NVIDIA H100 80GB HBM3"],
        "count": ["2"],
    }


def test_cpu_link_has_no_count():
    assert launch_link("http://h", image="x", gpu="none", count=3).endswith("?image=x&gpu=none")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"image": "Bad Name"}, "--image"),
        ({"image": "x", "gpu": " "}, "--gpu"),
        ({"image": "x", "count": 0}, "--count"),
        ({"image": "x", "server": "s"}, "needs --user"),
        ({"image": "x", "server": "Bad/Name", "user": "u"}, "not a valid server name"),
    ],
)
def test_refused_values(kwargs, message):
    with pytest.raises(LinkError, match=message):
        launch_link("http://h", **kwargs)


def test_cli_error_is_one_line_without_traceback(tmp_path):
    result = CliRunner().invoke(
        app, ["link", "--image", "x", "--server", "s", "--data-dir", str(tmp_path)]
    )
    assert result.exit_code == 2
    assert "needs --user" in result.output and "Traceback" not in result.output
