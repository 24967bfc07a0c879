"""Registry authentication: anonymous, basic, and the bearer-token challenge flow.

The distribution spec's flow: a request without credentials gets ``401`` with
``WWW-Authenticate``. ``Basic realm=...`` means: send the user and password.
``Bearer realm=URL,service=S,scope=X`` means: get a token from ``URL`` (with the
user and password, if any) for that service and scope, then retry with
``Authorization: Bearer <token>``. Tokens are kept per scope, so the next request
for the same repository carries its token at once.

``RegistryAuth`` is an ``httpx.Auth`` flow: the token request is yielded from the
flow, so it goes out through the same client (same TLS settings). Secrets are
never logged and never put in error messages.
"""

from __future__ import annotations

import base64
import logging
import os
import re
from collections.abc import Generator
from dataclasses import dataclass

import httpx

from tkhub.config import RegistrySettings

log = logging.getLogger(__name__)
_PARAM = re.compile(r'(\w+)\s*=\s*(?:"([^"]*)"|([^\s,]+))')
_REPO_PATH = re.compile(r"^/v2/(.+?)/(?:manifests|blobs|tags)/")


class CredentialsError(ValueError):
    """The registry settings name a password file or variable that is not there."""


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str

    def __repr__(self) -> str:  # keep the password out of logs and tracebacks
        return f"Credentials(username={self.username!r}, password=***)"

    def basic_header(self) -> str:
        raw = f"{self.username}:{self.password}".encode()
        return "Basic " + base64.b64encode(raw).decode()


def load_credentials(registry: RegistrySettings) -> Credentials | None:
    """User + password from ``password_file`` or ``password_env``; None: anonymous."""
    if registry.password_file is not None:
        try:
            password = registry.password_file.read_text().strip()
        except OSError as e:
            raise CredentialsError(
                f"registry {registry.name}: cannot read password_file "
                f"{registry.password_file}: {e.strerror}"
            ) from e
    elif registry.password_env:
        if registry.password_env not in os.environ:
            raise CredentialsError(
                f"registry {registry.name}: environment variable "
                f"{registry.password_env} (password_env) is not set"
            )
        password = os.environ[registry.password_env]
    else:
        return None
    return Credentials(registry.username or "", password)


def parse_challenge(header: str) -> tuple[str, dict[str, str]] | None:
    """``Bearer realm="x",service="y"`` -> ("bearer", {"realm": "x", ...})."""
    scheme, _, rest = header.strip().partition(" ")
    if not scheme:
        return None
    params = {m.group(1).lower(): m.group(2) or m.group(3) or "" for m in _PARAM.finditer(rest)}
    return scheme.lower(), params


def scope_for(path: str) -> str:
    """The token scope a request path needs (pull only: the sync never writes)."""
    if path.startswith("/v2/_catalog"):
        return "registry:catalog:*"
    match = _REPO_PATH.match(path)
    return f"repository:{match.group(1)}:pull" if match else ""


class RegistryAuth(httpx.Auth):
    """Answers 401 challenges; remembers basic auth and tokens per scope."""

    requires_response_body = True

    def __init__(self, credentials: Credentials | None) -> None:
        self._credentials = credentials
        self._basic = False
        self._tokens: dict[str, str] = {}

    def _authorize(self, request: httpx.Request, scope: str) -> None:
        if scope in self._tokens:
            request.headers["Authorization"] = f"Bearer {self._tokens[scope]}"
        elif self._basic and self._credentials is not None:
            request.headers["Authorization"] = self._credentials.basic_header()

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        scope = scope_for(request.url.path)
        self._authorize(request, scope)
        response = yield request
        if response.status_code != 401:
            return
        challenge = parse_challenge(response.headers.get("WWW-Authenticate", ""))
        if challenge is None:
            return
        scheme, params = challenge
        if scheme == "basic" and self._credentials is not None:
            self._basic = True
            request.headers["Authorization"] = self._credentials.basic_header()
            yield request
        elif scheme == "bearer" and params.get("realm"):
            token_response = yield self._token_request(params, scope)
            token = _token_from(token_response)
            if token is None:
                log.warning(
                    "token server %s refused a token for %r (HTTP %s)",
                    params["realm"],
                    params.get("scope") or scope,
                    token_response.status_code,
                )
                return
            self._tokens[scope] = token
            request.headers["Authorization"] = f"Bearer {token}"
            yield request

    def _token_request(self, params: dict[str, str], scope: str) -> httpx.Request:
        query = {"service": params.get("service", "")}
        if params.get("scope") or scope:
            query["scope"] = params.get("scope") or scope
        headers = {}
        if self._credentials is not None:
            headers["Authorization"] = self._credentials.basic_header()
        return httpx.Request("GET", params["realm"], params=query, headers=headers)


def _token_from(response: httpx.Response) -> str | None:
    if response.status_code != 200:
        return None
    try:
        body = response.json()
    except ValueError:
        return None
    token = body.get("token") or body.get("access_token") if isinstance(body, dict) else None
    return str(token) if token else None
