"""A user's system account and file tree, made ready before a server or a job runs."""

from __future__ import annotations

from pathlib import Path

from tkhub.layout import UserLayout, ensure_layout, ensure_shared
from tkhub.local.accounts import Account, ensure_account, ensure_group, install_marker


def prepare_home(
    data_dir: Path, layout: UserLayout, account_name: str, shared_group: str, as_system_user: bool
) -> Account | None:
    """The user's account (as root) and home tree; idempotent. Raises ``AccountError``."""
    if not as_system_user:
        ensure_shared(layout.shared)
        ensure_layout(layout)
        return None
    gid = ensure_group(shared_group)
    ensure_shared(layout.shared, gid)
    account = ensure_account(account_name, layout.home, install_marker(data_dir), shared_group)
    ensure_layout(layout, account.uid, account.gid)
    return account
