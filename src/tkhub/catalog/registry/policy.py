"""Tag policy: which tags of a repository become catalog entries.

``RegistrySettings.tags`` holds one of:

- ``policy:latest+semver`` (the default): ``latest`` plus the newest semver-like
  tag (``1.2``, ``v2.0.1``, ``2024.05.1``) of each repository; a tag with a suffix
  (``1.3-rc1``, ``2.1-cuda12``) counts as a pre-release, chosen only when the
  repository has no plain version;
- ``glob:<pattern>``: every tag matching the shell pattern (``glob:v*``);
- ``regex:<pattern>``: every tag the regular expression matches in full.

So a repository with 500 CI tags offers one or two entries, not 500.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

DEFAULT_POLICY = "policy:latest+semver"
_SEMVER = re.compile(r"^v?(\d+)(?:\.(\d+))?(?:\.(\d+))?(?:[-+._]?([0-9A-Za-z.-]+))?$")


class PolicyError(ValueError):
    """A tag policy setting that cannot be understood."""


def semver_key(tag: str) -> tuple[int, int, int, int, str] | None:
    """A sort key for semver-like tags; None for tags that are not versions."""
    match = _SEMVER.match(tag)
    if not match:
        return None
    major, minor, patch, pre = match.groups()
    # A release sorts above its pre-releases: (1) for releases, (0) for "-rc1" etc.
    return (int(major), int(minor or 0), int(patch or 0), 0 if pre else 1, pre or "")


def newest_semver(tags: Iterable[str]) -> str | None:
    """The newest release; the newest pre-release only when there is no release."""
    versions = [(key, tag) for tag in tags if (key := semver_key(tag)) is not None]
    releases = [v for v in versions if v[0][3] == 1]
    return max(releases or versions)[1] if versions else None


@dataclass(frozen=True)
class TagPolicy:
    spec: str
    select: Callable[[list[str]], list[str]]

    def __call__(self, tags: Iterable[str]) -> list[str]:
        return sorted(set(self.select(sorted(set(tags)))))


def _latest_and_semver(tags: list[str]) -> list[str]:
    chosen = ["latest"] if "latest" in tags else []
    newest = newest_semver(tags)
    return [*chosen, newest] if newest else chosen


def parse_policy(spec: str | None) -> TagPolicy:
    """``policy:latest+semver`` | ``glob:<pattern>`` | ``regex:<pattern>``."""
    spec = (spec or DEFAULT_POLICY).strip()
    kind, _, pattern = spec.partition(":")
    if kind == "policy" and pattern == "latest+semver":
        return TagPolicy(spec, _latest_and_semver)
    if kind == "glob" and pattern:
        return TagPolicy(spec, lambda tags: [t for t in tags if fnmatch.fnmatchcase(t, pattern)])
    if kind == "regex" and pattern:
        try:
            compiled = re.compile(pattern)
        except re.error as e:
            raise PolicyError(f"tags: {spec!r} is not a valid regular expression: {e}") from e
        return TagPolicy(spec, lambda tags: [t for t in tags if compiled.fullmatch(t)])
    raise PolicyError(
        f"tags: {spec!r} is not a tag policy; use 'policy:latest+semver', "
        "'glob:<pattern>' or 'regex:<pattern>'"
    )
