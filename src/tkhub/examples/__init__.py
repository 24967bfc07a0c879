"""Examples: a synced repository (``repository``) and per-user, per-environment
copies that never overwrite a user's work (``delivery``). See docs/examples.md."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

# Nothing heavy at import: ``python -m tkhub.examples.delivery`` runs before every
# spawn, and nbformat (jsonschema) alone takes seconds to import on a small machine.
if TYPE_CHECKING:
    from tkhub.examples.repository import SyncStatus
    from tkhub.settings import Settings


COMMON = "common"  # the examples every environment gets


def examples_folder(own: str | None) -> str:
    """The folder a server's examples come from: the environment's own (delivered with
    ``common/``), or ``common/`` alone for an environment that names none."""
    return own or COMMON


def shipped_examples() -> Path:
    """The examples shipped with tkhub: in the installed package, or in this checkout."""
    packaged = Path(__file__).with_name("shipped")
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[3] / "examples" / "notebooks"


def sync_examples(settings: Settings) -> SyncStatus:
    """Sync the configured source (a git URL, or the shipped examples) into place."""
    from tkhub.examples.repository import sync

    return sync(
        settings.examples_dir,
        shipped=shipped_examples(),
        git_url=settings.examples_git_url,
        ref=settings.examples_git_ref,
    )
