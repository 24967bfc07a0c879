"""``tkhub env add|list|remove`` against a real catalog service checking tokens with a
real hub; the interpreters are real too (this test run's own, and a bare venv)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import Result

Tkhub = Callable[..., Result]


def flat(text: str) -> str:
    return " ".join(text.split())


def catalog_names(stack: Any) -> list[str]:
    response = httpx.get(
        f"{stack.catalog_url}/api/v1/images/jupyter",
        params={"include_hidden": "true"},
        headers={"Authorization": f"token {stack.hub.tokens['admin']}"},
    )
    response.raise_for_status()
    return [entry["name"] for entry in response.json()]


def one_line_error(result: Result, message: str) -> None:
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert message in lines[0]


@pytest.fixture(scope="module")
def bare_python() -> Path:
    """A virtualenv without jupyterhub: a real interpreter that cannot serve."""
    import tempfile

    root = Path(tempfile.mkdtemp(dir="/tmp", prefix="tkhub-bare-venv-"))
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True)
    return root / "bin" / "python"


def test_add_list_remove(stack, tkhub: Tkhub) -> None:
    added = tkhub(
        stack.data_dir, "env", "add", "lab-here", "--python", sys.executable,
        "--display-name", "Lab (this venv)", "--gpu", "none", "--default",
    )  # fmt: skip

    assert added.exit_code == 0, added.output
    assert f"Checked {sys.executable}: Python" in added.stdout
    assert f"Added lab-here to the catalog at {stack.catalog_url} as the default." in added.stdout
    assert catalog_names(stack) == ["lab-here"]

    listed = tkhub(stack.data_dir, "env", "list")
    assert listed.exit_code == 0, listed.output
    row = flat(listed.stdout)
    assert f"lab-here │ Lab (this venv) │ local │ {sys.executable} │ none │ yes │" in row

    removed = tkhub(stack.data_dir, "env", "remove", "lab-here")
    assert removed.exit_code == 0 and "Removed lab-here" in removed.stdout
    assert catalog_names(stack) == []
    one_line_error(tkhub(stack.data_dir, "env", "remove", "lab-here"), "refused (404)")


def post_entry(stack: Any, **body: Any) -> None:
    """An entry written straight through the catalog API (an OCI one needs no check)."""
    headers = {"Authorization": f"token {stack.hub.tokens['admin']}"}
    httpx.post(f"{stack.catalog_url}/api/v1/images", json=body, headers=headers).raise_for_status()


def test_list_marks_hidden_entries_and_shows_images(stack, tkhub: Tkhub) -> None:
    post_entry(stack, name="secret-lab", kind="oci", image="example.org/lab:1", hidden=True)

    listed = tkhub(stack.data_dir, "env", "list")

    assert listed.exit_code == 0, listed.output
    assert "secret-lab (hidden) │ │ oci │ example.org/lab:1 │ optional │ │ api" in flat(
        listed.stdout
    )


def test_python_without_jupyterhub_is_refused_here(stack, tkhub: Tkhub, bare_python: Path) -> None:
    result = tkhub(stack.data_dir, "env", "add", "bare", "--python", str(bare_python))

    one_line_error(result, f"python: {bare_python} has no usable jupyterhub-singleuser")
    assert "install jupyterhub==" in result.stderr
    assert catalog_names(stack) == []


def test_missing_interpreter(stack, tkhub: Tkhub, tmp_path: Path) -> None:
    result = tkhub(stack.data_dir, "env", "add", "gone", "--python", str(tmp_path / "python"))
    one_line_error(result, "does not exist or is not executable")


def test_duplicate_name_shows_the_catalogs_reason(stack, tkhub: Tkhub) -> None:
    post_entry(stack, name="twice", kind="oci", image="example.org/twice:1")

    again = tkhub(stack.data_dir, "env", "add", "twice", "--python", sys.executable)

    one_line_error(again, "the catalog refused (409): name: an image named 'twice' already exists")
    assert catalog_names(stack) == ["twice"]


def test_bad_name_is_refused_before_anything_runs(stack, tkhub: Tkhub) -> None:
    result = tkhub(stack.data_dir, "env", "add", "Not A Slug", "--python", sys.executable)
    assert result.exit_code == 2, result.output
    assert "name: String should match pattern" in flat(result.stderr)


def test_catalog_down_says_what_to_do(stack, tkhub: Tkhub) -> None:
    port = stack.unused_port()
    stack.configure(catalog_port=port)

    for args in (["env", "list"], ["env", "remove", "x"]):
        one_line_error(
            tkhub(stack.data_dir, *args),
            f"the catalog at http://127.0.0.1:{port} does not answer: is `tkhub up` running?",
        )


def test_unreadable_token_says_run_up_first(stack, tkhub: Tkhub) -> None:
    (stack.data_dir / "secrets" / "cli-token").unlink()

    one_line_error(tkhub(stack.data_dir, "env", "list"), "run `tkhub up` first")


def test_a_token_the_hub_does_not_know(stack, tkhub: Tkhub) -> None:
    (stack.data_dir / "secrets" / "cli-token").write_text("not-a-token\n")

    one_line_error(tkhub(stack.data_dir, "env", "list"), "the hub does not know this token")
