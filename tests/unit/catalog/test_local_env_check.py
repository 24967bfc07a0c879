"""check_local_environment runs the interpreter it is given."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import jupyterhub
import pytest

from tkhub.catalog.local_env_check import EnvironmentCheckError, check_local_environment


def test_this_environment_is_compatible() -> None:
    info = check_local_environment(sys.executable)
    assert info.jupyterhub_version == jupyterhub.__version__
    assert info.singleuser and info.singleuser.endswith("jupyterhub-singleuser")


def test_python_without_jupyterhub() -> None:
    if not Path("/usr/bin/python3").exists():
        pytest.fail("Debian's /usr/bin/python3 is expected on this machine")
    with pytest.raises(EnvironmentCheckError, match="no usable jupyterhub-singleuser"):
        check_local_environment("/usr/bin/python3")


@pytest.mark.parametrize(
    ("python", "reason"),
    [("/nonexistent/bin/python", "does not exist"), ("python3", "not an absolute path")],
)
def test_missing_or_relative(python: str, reason: str) -> None:
    with pytest.raises(EnvironmentCheckError, match=reason):
        check_local_environment(python)


def _script(body: str) -> str:
    root = tempfile.mkdtemp(dir="/tmp")
    path = Path(root) / "python"
    path.write_text(f"#!/bin/sh\n{body}\n")
    os.chmod(path, 0o755)
    return str(path)


def test_other_major_version_is_refused() -> None:
    python = _script("""echo '{"python": "3.11.2", "jupyterhub": "1.5.0", "singleuser": null}'""")
    with pytest.raises(EnvironmentCheckError, match="major versions must match"):
        check_local_environment(python)


def test_interpreter_that_hangs_times_out() -> None:
    with pytest.raises(EnvironmentCheckError, match="did not answer within 0.5 s"):
        check_local_environment(_script("sleep 5"), timeout=0.5)
