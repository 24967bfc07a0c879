"""Challenge parsing, credentials, Harbor payloads and the status file."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from tkhub.catalog.registry.bearer import (
    CredentialsError,
    load_credentials,
    parse_challenge,
    scope_for,
)
from tkhub.catalog.registry.report import RegistryReport, Skip, SyncReport, read_status, record
from tkhub.catalog.registry.webhook import WebhookError, harbor_targets
from tkhub.settings import RegistrySettings


def test_parse_bearer_and_basic_challenges() -> None:
    header = (
        'Bearer realm="https://auth.example/token",service="registry",scope="repository:a/b:pull"'
    )
    assert parse_challenge(header) == (
        "bearer",
        {
            "realm": "https://auth.example/token",
            "service": "registry",
            "scope": "repository:a/b:pull",
        },
    )
    assert parse_challenge('Basic realm="x"') == ("basic", {"realm": "x"})
    assert parse_challenge("") is None


@pytest.mark.parametrize(
    ("path", "scope"),
    [
        ("/v2/_catalog", "registry:catalog:*"),
        ("/v2/team/lab/manifests/latest", "repository:team/lab:pull"),
        ("/v2/a/b/c/blobs/sha256:00", "repository:a/b/c:pull"),
        ("/v2/x/tags/list", "repository:x:pull"),
        ("/v2/", ""),
    ],
)
def test_scope_for_paths(path: str, scope: str) -> None:
    assert scope_for(path) == scope


def test_credentials_from_file_or_env_never_shown(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    root = tmp_path
    secret = root / "pw"
    secret.write_text("hunter2\n")
    from_file = load_credentials(
        RegistrySettings(name="r", url="https://r", username="u", password_file=secret)
    )
    assert from_file is not None and from_file.password == "hunter2"
    assert "hunter2" not in repr(from_file)
    monkeypatch.setenv("REG_PW", "from-env")
    from_env = load_credentials(RegistrySettings(name="r", url="https://r", password_env="REG_PW"))
    assert from_env is not None and from_env.password == "from-env"
    assert load_credentials(RegistrySettings(name="r", url="https://r")) is None
    with pytest.raises(CredentialsError, match="cannot read password_file"):
        load_credentials(RegistrySettings(name="r", url="https://r", password_file=root / "no"))
    with pytest.raises(CredentialsError, match="NOPE_PW"):
        load_credentials(RegistrySettings(name="r", url="https://r", password_env="NOPE_PW"))


REGISTRIES = [
    RegistrySettings(name="harbor", url="https://harbor.example.org", prefix="thinkube/"),
    RegistrySettings(name="other", url="https://other.example.org"),
]


def push(repo: str, host: str) -> dict[str, object]:
    return {
        "type": "PUSH_ARTIFACT",
        "event_data": {
            "repository": {"repo_full_name": repo},
            "resources": [{"resource_url": f"{host}/{repo}:latest"}],
        },
    }


def test_harbor_targets_by_host_then_by_prefix() -> None:
    assert harbor_targets(REGISTRIES, push("thinkube/lab", "harbor.example.org")) == [
        ("harbor", "thinkube/lab")
    ]
    assert harbor_targets(REGISTRIES, push("x/lab", "other.example.org")) == [("other", "x/lab")]
    assert harbor_targets(REGISTRIES, push("x/lab", "unknown.example")) == [("other", "x/lab")]


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"type": "SCANNING_COMPLETED"}, "type"),
        ({"type": "PUSH_ARTIFACT", "event_data": {}}, "repo_full_name"),
        ({"type": "PUSH_ARTIFACT", "event_data": {"repository": {"repo_full_name": 3}}}, "repo"),
    ],
)
def test_bad_harbor_payloads(payload: dict[str, object], field: str) -> None:
    with pytest.raises(WebhookError, match=field):
        harbor_targets(REGISTRIES, payload)


def test_status_keeps_the_last_success_through_failures(tmp_path: Path) -> None:
    state = tmp_path
    t0, t1 = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC)
    good = RegistryReport(registry="r", started_at=t0, finished_at=t0)
    bad = RegistryReport(
        registry="r",
        started_at=t1,
        finished_at=t1,
        ok=False,
        errors=["listing repositories: down"],
        skipped=[Skip(repository="a", reason="HTTP 500")],
    )
    record(state, SyncReport(registries=[good]))
    record(state, SyncReport(registries=[bad]))
    status = read_status(state)["r"]
    assert (status.last_attempt, status.last_success, status.ok) == (t1, t0, False)
    assert status.errors == ["listing repositories: down"] and status.counts["skipped"] == 1


def test_label_cache_keeps_the_most_recently_used() -> None:
    from tkhub.catalog.registry.client import LabelCache

    cache = LabelCache(size=2)
    cache.put(("r", "sha256:a"), {"a": "1"})
    cache.put(("r", "sha256:b"), {"b": "1"})
    assert cache.get(("r", "sha256:a")) == {"a": "1"}  # a is now the most recent
    cache.put(("r", "sha256:c"), {"c": "1"})
    assert cache.get(("r", "sha256:b")) is None
    assert cache.get(("r", "sha256:a")) == {"a": "1"}
    assert cache.get(("other", "sha256:a")) is None  # per registry


def test_proxy_from_the_environment_unless_no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    from tkhub.catalog.registry import wire

    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        for variant in (name, name.upper()):
            monkeypatch.delenv(variant, raising=False)
    monkeypatch.setenv("https_proxy", "http://proxy.example:3128")
    monkeypatch.setenv("no_proxy", "registry.internal")
    wire.proxy_for.cache_clear()
    try:
        assert wire.proxy_for("https", "ghcr.io") == "http://proxy.example:3128"
        assert wire.proxy_for("https", "registry.internal") is None
        assert wire.proxy_for("http", "ghcr.io") is None
    finally:
        wire.proxy_for.cache_clear()


def test_pipelined_response_heads_are_parsed_or_refused() -> None:
    from tkhub.catalog.registry.pipelined_heads import _parse_head

    digest = "sha256:" + "a" * 64
    ok = f"HTTP/1.1 200 OK\r\ndocker-content-digest: {digest}\r\nContent-Length: 9\r\n\r\n"
    assert _parse_head(ok.encode()) == (200, digest, False)
    assert _parse_head(b"HTTP/1.1 304 Not Modified\r\n\r\n") == (304, None, False)
    assert _parse_head(b"HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n") == (404, None, True)
    assert _parse_head(b"HTTP/1.0 200 OK\r\n\r\n") == (200, None, True)
    assert _parse_head(b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\n")[2] is False
    for bad in (b"HTTP/1.1 100 Continue\r\n\r\n", b'{"tags": []}\r\n\r\n', b"HTTP/1.1 OK\r\n\r\n"):
        with pytest.raises(ValueError):
            _parse_head(bad)
