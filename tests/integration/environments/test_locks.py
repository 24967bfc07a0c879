"""Every curated lock resolves for its platform against the package index (metadata
only; no heavy wheel is downloaded), so a yanked or clashing pin fails here."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tkhub.environments.definition import load_definitions
from tkhub.environments.locks import LockError, check_lock_resolves

CURATED = Path(__file__).resolve().parents[3] / "environments"
KNOWN = load_definitions(CURATED)


@pytest.mark.parametrize("name", sorted(KNOWN))
def test_curated_lock_resolves(name):
    check_lock_resolves(KNOWN[name])


def test_a_broken_pin_is_caught(tmp_path):
    broken = tmp_path / "scipy"
    shutil.copytree(CURATED / "scipy", broken)
    lock = broken / "requirements.lock"
    lock.write_text(lock.read_text().replace("\nnumpy==", "\nnumpy==0.0.0.dev0+nope  # was "))
    definition = load_definitions(tmp_path)["scipy"]
    with pytest.raises(LockError, match="numpy"):
        check_lock_resolves(definition)
