"""Group names as tkhub compares them: ``/team/sub``, ``team/sub`` and ``team/sub/`` are one.

Keycloak's Group Membership mapper sends full paths (``/team/sub``) when "Full group
path" is on and bare names otherwise; catalog entries, service settings and the hub's
groups may use either. Only the slashes around a name are dropped: ``team/sub`` and
``sub`` stay different groups.
"""

from __future__ import annotations

from collections.abc import Iterable


def normalize_group(name: str) -> str:
    return name.strip().strip("/")


def normalize_groups(names: Iterable[str]) -> set[str]:
    return {n for n in (normalize_group(str(name)) for name in names) if n}


def in_any_group(user_groups: Iterable[str], allowed: Iterable[str]) -> bool:
    """True when ``allowed`` is empty (everyone) or shares a group with the user."""
    wanted = normalize_groups(allowed)
    return not wanted or bool(wanted & normalize_groups(user_groups))
