"""Tag policy and entry names: pure functions."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tkhub.catalog.registry.naming import entry_names
from tkhub.catalog.registry.policy import PolicyError, newest_semver, parse_policy
from tkhub.catalog.schemas import is_slug

CI_TAGS = [f"ci-{i:04d}" for i in range(500)]


def test_default_policy_is_latest_plus_newest_release() -> None:
    policy = parse_policy(None)
    assert policy(["latest", "1.2", "1.10", "v1.9.9", "1.11-rc1", *CI_TAGS]) == ["1.10", "latest"]
    assert policy(CI_TAGS) == []
    assert policy(["2.0-rc1", "2.0-rc2"]) == ["2.0-rc2"]  # only pre-releases: the newest
    assert policy(["2024.05.1", "2023.12.9", "latest"]) == ["2024.05.1", "latest"]


def test_glob_and_regex_policies() -> None:
    assert parse_policy("glob:v*")(["v1", "v2", "latest", "x-v3"]) == ["v1", "v2"]
    assert parse_policy(r"regex:\d+\.\d+")(["1.2", "1.2.3", "latest", "11.0"]) == ["1.2", "11.0"]


@pytest.mark.parametrize("spec", ["glob:", "regex:(", "newest", "policy:everything"])
def test_bad_policies_say_what_is_allowed(spec: str) -> None:
    with pytest.raises(PolicyError, match="tags: "):
        parse_policy(spec)


def test_newest_semver_ignores_non_versions() -> None:
    assert newest_semver(["main", "sha-abc"]) is None
    assert newest_semver(["0.9", "0.10.0"]) == "0.10.0"


def test_names_are_readable_and_strip_the_prefix() -> None:
    names = entry_names(
        [
            ("thinkube/pytorch", "latest"),
            ("thinkube/pytorch", "2.1"),
            ("thinkube/Tensor_Flow", "latest"),
        ],
        prefix="thinkube/",
    )
    assert names == {
        ("thinkube/pytorch", "latest"): "pytorch",
        ("thinkube/pytorch", "2.1"): "pytorch-2.1",
        ("thinkube/Tensor_Flow", "latest"): "tensor_flow",
    }


def test_colliding_names_get_a_stable_hash() -> None:
    keys = [("a/b", "latest"), ("a-b", "latest")]
    names = entry_names(keys)
    assert names[("a-b", "latest")] == "a-b"
    assert names[("a/b", "latest")].startswith("a-b-") and len(set(names.values())) == 2
    assert entry_names(reversed(keys)) == names


repo = st.from_regex(r"[a-zA-Z0-9][a-zA-Z0-9._/-]{0,120}", fullmatch=True)
tag = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}", fullmatch=True)


@given(st.lists(st.tuples(repo, tag), max_size=20))
def test_names_are_always_distinct_valid_slugs(keys: list[tuple[str, str]]) -> None:
    names = entry_names(keys)
    assert all(is_slug(n) for n in names.values())
    assert len(set(names.values())) == len(names)
