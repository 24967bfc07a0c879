"""Fixtures for the registry sync tests: a real registry, real images.

- ``builder`` (session): ``Builder``, buildah with vfs storage under a /tmp root;
  ``builder.image(labels, arch=, content=)`` builds a tiny ``FROM scratch`` image
  and returns its local name.
- ``start_registry(auth="none"|"basic"|"token", tls=False)``: starts Debian's
  ``docker-registry`` on 127.0.0.1 (free port, storage in /tmp, deletes enabled)
  and returns a ``Registry`` with ``push``, ``push_index``, ``delete`` and the
  ``RegistrySettings`` to sync it; ``requests()`` reads its access log (what a
  sync really asked for). ``basic`` uses an htpasswd file (bcrypt);
  ``token`` runs a small token server issuing RS256 JWTs the registry verifies
  against a self-signed certificate. All are stopped at the end of the test.
- ``registry`` (module): an anonymous registry shared by a module's tests.
- ``catalog_db``: a fresh SQLite catalog database (migrated) and its sessions.
- ``flaky_server``: a tiny HTTP server answering a scripted sequence of statuses.
- ``hub`` (module): the catalog tests' real JupyterHub (users admin, alice, ...).
- ``serve(app) -> url``: runs the catalog app with uvicorn on 127.0.0.1.
- ``data_dir``: a tkhub data directory under /tmp, removed afterwards.

Missing binaries FAIL with a clear message: the CI installs them.
"""

from __future__ import annotations

import base64
import http.server
import itertools
import json
import re
import secrets
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import bcrypt
import httpx
import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from hubproc import app_servers, catalog_fixtures, free_port
from sqlalchemy.orm import Session, sessionmaker

from tkhub.catalog import db
from tkhub.settings import RegistrySettings

USER, PASSWORD = "ci-bot", "s3cret-pw"
SERVICE, ISSUER = "tkhub-test-registry", "tkhub-test-issuer"
_names = itertools.count()
_ACCESS = re.compile(r'^\S+ - \S+ \[[^]]*\] "(\S+ \S+) HTTP/[\d.]+" (\d+) \S+ "[^"]*" "([^"]*)"')


def need(binary: str, package: str) -> str:
    found = shutil.which(binary)
    if not found:
        pytest.fail(f"{binary} is not installed: apt-get install {package} (the CI installs it)")
    return found


def tmpdir(prefix: str) -> Path:
    path = Path(tempfile.mkdtemp(dir="/tmp", prefix=prefix))
    path.chmod(0o755)
    return path


@dataclass
class Builder:
    root: Path

    def run(self, *args: str) -> str:
        cmd = [
            need("buildah", "buildah"),
            "--storage-driver", "vfs",
            "--root", str(self.root / "root"),
            "--runroot", str(self.root / "run"),
            *args,
        ]  # fmt: skip
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(args[:2])} failed: {done.stderr[-2000:]}")
        return done.stdout.strip()

    def image(
        self, labels: dict[str, str], *, arch: str = "amd64", content: str | None = None
    ) -> str:
        """A tiny image with these labels; ``content`` makes its digest unique."""
        name = f"localhost/tk{next(_names)}-{secrets.token_hex(3)}"
        payload = self.root / f"{name.rsplit('/', 1)[1]}.txt"
        payload.write_text(content or secrets.token_hex(8))
        container = self.run("from", "scratch")
        self.run("copy", container, str(payload), "/payload.txt")
        label_args = [a for k, v in labels.items() for a in ("--label", f"{k}={v}")]
        self.run("config", "--arch", arch, "--os", "linux", *label_args, container)
        self.run("commit", "-q", "--rm", container, name)
        return name


@dataclass
class Registry:
    url: str
    port: int
    root: Path
    builder: Builder
    auth: str
    proc: subprocess.Popen[bytes] | None = None
    stoppers: list[Callable[[], None]] = field(default_factory=list)
    token_scopes: list[str] = field(default_factory=list)  # scopes the token server issued

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def creds(self) -> list[str]:
        return ["--creds", f"{USER}:{PASSWORD}"] if self.auth != "none" else []

    def settings(self, **extra: Any) -> RegistrySettings:
        fields: dict[str, Any] = {"name": f"reg-{self.port}", "url": self.url, **extra}
        if self.auth != "none":
            secret = self.root / "password"
            secret.write_text(PASSWORD)
            secret.chmod(0o600)
            fields.setdefault("username", USER)
            fields.setdefault("password_file", secret)
        return RegistrySettings(**fields)

    def push(self, repository: str, tag: str, labels: dict[str, str], **kw: Any) -> str:
        local = self.builder.image(
            labels, content=f"{repository}:{tag}:{secrets.token_hex(4)}", **kw
        )
        dest = f"docker://{self.host}/{repository}:{tag}"
        self.builder.run("push", "--tls-verify=false", *self.creds(), local, dest)
        return local

    def push_index(
        self, repository: str, tag: str, labels: dict[str, str], arches: list[str]
    ) -> None:
        """An image index with one image per architecture (labels name the arch)."""
        index = f"localhost/index{next(_names)}"
        self.builder.run("manifest", "create", index)
        for arch in arches:
            local = self.builder.image(
                {**labels, "io.thinkube.jupyter.description": f"built for {arch}"}, arch=arch
            )
            self.builder.run("manifest", "add", index, f"containers-storage:{local}")
        dest = f"docker://{self.host}/{repository}:{tag}"
        self.builder.run(
            "manifest", "push", "--all", "--tls-verify=false", *self.creds(), index, dest
        )

    def client(self) -> httpx.Client:
        auth = (USER, PASSWORD) if self.auth == "basic" else None
        return httpx.Client(base_url=self.url, auth=auth, timeout=10, verify=False)

    def delete(self, repository: str, tag: str) -> None:
        """Delete the manifest the tag points to (the registry drops the tag)."""
        assert self.auth in ("none", "basic"), "delete through the API needs no token here"
        accept = {
            "Accept": "application/vnd.oci.image.manifest.v1+json, "
            "application/vnd.oci.image.index.v1+json"
        }
        with self.client() as http:
            head = http.head(f"/v2/{repository}/manifests/{tag}", headers=accept)
            head.raise_for_status()
            digest = head.headers["Docker-Content-Digest"]
            http.delete(f"/v2/{repository}/manifests/{digest}").raise_for_status()

    def requests(self, agent: str = "", *, status: bool = False) -> list[str]:
        """``"METHOD /path"`` (``status``: then the status) of every request in
        the access log so far, in order; ``agent``: only those whose User-Agent
        contains it."""
        lines = (self.root / "registry.log").read_text().splitlines()
        found = (_ACCESS.search(line) for line in lines)
        return [
            f"{m.group(1)} {m.group(2)}" if status else m.group(1)
            for m in found
            if m and agent in m.group(3)
        ]

    def stop(self) -> None:
        for stop in reversed(self.stoppers):
            stop()


REGISTRY_CONFIG = """\
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: {root}/storage
  delete:
    enabled: true
http:
  addr: 127.0.0.1:{port}
{tls}{auth}
"""


def _htpasswd(root: Path) -> str:
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
    (root / "htpasswd").write_text(f"{USER}:{hashed}\n")
    return f"auth:\n  htpasswd:\n    realm: tkhub-test\n    path: {root}/htpasswd\n"


def _wait_http(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    for _ in range(300):
        if proc.poll() is not None:
            pytest.fail(f"docker-registry exited ({proc.returncode}): {log.read_text()[-2000:]}")
        try:
            httpx.get(url, timeout=1, verify=False)
            return
        except httpx.HTTPError:
            time.sleep(0.05)
    pytest.fail(f"docker-registry did not answer at {url}: {log.read_text()[-2000:]}")


def _tls(root: Path) -> str:
    """A self-signed certificate for the registry's own HTTPS."""
    key, cert = _self_signed()
    (root / "tls.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (root / "tls.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    return f"  tls:\n    certificate: {root}/tls.crt\n    key: {root}/tls.key\n"


def launch_registry(builder: Builder, auth: str = "none", *, tls: bool = False) -> Registry:
    binary = need("docker-registry", "docker-registry")
    root, port = tmpdir("tkhub-registry-"), free_port()
    scheme = "https" if tls else "http"
    registry = Registry(f"{scheme}://127.0.0.1:{port}", port, root, builder, auth)
    registry.stoppers.append(lambda: shutil.rmtree(root, ignore_errors=True))
    auth_yaml = ""
    if auth == "basic":
        auth_yaml = _htpasswd(root)
    elif auth == "token":
        auth_yaml = start_token_server(registry)
    (root / "config.yml").write_text(
        REGISTRY_CONFIG.format(root=root, port=port, auth=auth_yaml, tls=_tls(root) if tls else "")
    )
    log = root / "registry.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([binary, "serve", str(root / "config.yml")], stdout=out, stderr=out)
    registry.proc = proc
    registry.stoppers.append(lambda: (proc.terminate(), proc.wait(10)))
    _wait_http(f"{registry.url}/v2/", proc, log)
    return registry


# --- token auth: a token server the registry trusts -------------------------------


def _self_signed() -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ISSUER)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _token_handler(key: rsa.RSAPrivateKey, cert: x509.Certificate, issued: list[str]) -> type:
    x5c = base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()
    expected = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()

    class TokenHandler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            if self.headers.get("Authorization") != expected:
                self.send_response(401)
                self.end_headers()
                return
            query = parse_qs(urlsplit(self.path).query)
            access = []
            for scope in query.get("scope", []):
                kind, name, actions = scope.split(":")
                access.append({"type": kind, "name": name, "actions": actions.split(",")})
            issued.extend(query.get("scope", []))
            now = int(time.time())
            claims = {
                "iss": ISSUER, "sub": USER, "aud": query.get("service", [""])[0],
                "iat": now, "nbf": now - 5, "exp": now + 300, "jti": secrets.token_hex(8),
                "access": access,
            }  # fmt: skip
            token = jwt.encode(claims, key, algorithm="RS256", headers={"x5c": [x5c]})
            body = json.dumps({"token": token, "access_token": token}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    return TokenHandler


def start_token_server(registry: Registry) -> str:
    key, cert = _self_signed()
    (registry.root / "token.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    issued = registry.token_scopes
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _token_handler(key, cert, issued))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    registry.stoppers.append(server.shutdown)
    realm = f"http://127.0.0.1:{server.server_address[1]}/token"
    return (
        f"auth:\n  token:\n    realm: {realm}\n    service: {SERVICE}\n"
        f"    issuer: {ISSUER}\n    rootcertbundle: {registry.root}/token.pem\n"
    )


# --- fixtures ----------------------------------------------------------------------


@pytest.fixture(scope="session")
def builder() -> Iterator[Builder]:
    root = tmpdir("tkhub-buildah-")
    yield Builder(root)
    subprocess.run(
        ["buildah", "--storage-driver", "vfs", "--root", str(root / "root"),
         "--runroot", str(root / "run"), "rm", "--all"],
        capture_output=True, check=False,
    )  # fmt: skip
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def start_registry(builder: Builder) -> Iterator[Callable[..., Registry]]:
    started: list[Registry] = []

    def start(auth: str = "none", *, tls: bool = False) -> Registry:
        registry = launch_registry(builder, auth, tls=tls)
        started.append(registry)
        return registry

    yield start
    for registry in started:
        registry.stop()


@pytest.fixture
def catalog_db() -> Iterator[sessionmaker[Session]]:
    root = tmpdir("tkhub-catalog-db-")
    engine = db.make_engine(f"sqlite:///{root}/catalog.sqlite")
    db.upgrade(engine)
    yield db.session_factory(engine)
    engine.dispose()
    shutil.rmtree(root, ignore_errors=True)


@dataclass
class Flaky:
    """Answers each request with the next scripted (status, headers, body)."""

    url: str
    script: list[tuple[int, dict[str, str], bytes]]
    requests: list[str] = field(default_factory=list)


@pytest.fixture
def flaky_server() -> Iterator[Callable[[list[tuple[int, dict[str, str], bytes]]], Flaky]]:
    servers: list[http.server.ThreadingHTTPServer] = []

    def start(script: list[tuple[int, dict[str, str], bytes]]) -> Flaky:
        flaky = Flaky("", list(script))

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self) -> None:
                flaky.requests.append(f"{self.command} {self.path}")
                status, headers, body = flaky.script.pop(0) if flaky.script else (500, {}, b"")
                self.send_response(status)
                for name, value in {"Content-Length": str(len(body)), **headers}.items():
                    self.send_header(name, value)
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            do_GET = do_HEAD = _answer  # noqa: N815

            def log_message(self, *args: Any) -> None:
                pass

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        flaky.url = f"http://127.0.0.1:{server.server_address[1]}"
        return flaky

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


# --- the catalog service with a real hub -------------------------------------------


hub = catalog_fixtures("tkhub_catalog_test_fixtures").hub


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """A tkhub data directory under /tmp, removed afterwards."""
    root = tmpdir("tkhub-sync-data-")
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def serve() -> Iterator[Callable[[Any], str]]:
    with app_servers() as start:
        yield start
