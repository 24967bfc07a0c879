"""Reading a kubeconfig as kubectl does: server, token, CA, client certificate, exec
credential plugins, the context's namespace; paths of objects."""

from __future__ import annotations

import base64
import datetime
import json
import ssl
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, HTTPServer
from ipaddress import ip_address
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tkhub.kube.deploy.kubeapi import KubeApi, KubeError, load_connection, object_path


def self_signed() -> tuple[bytes, bytes]:
    """A certificate for 127.0.0.1 that is its own CA: server, client and trust anchor."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ip_address("127.0.0.1"))]), critical=False
        )  # fmt: skip
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


@contextmanager
def tls_apiserver(tmp_path: Path, cert: bytes, key: bytes) -> Iterator[str]:
    """An HTTPS server on 127.0.0.1 that, like kube-apiserver, requires a client
    certificate signed by its CA, and answers ``GET /version``."""
    (tmp_path / "srv.crt").write_bytes(cert)
    (tmp_path / "srv.key").write_bytes(key)

    class Version(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            body = json.dumps({"gitVersion": "v-test", "path": self.path}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(tmp_path / "srv.crt", tmp_path / "srv.key")
    tls.load_verify_locations(tmp_path / "srv.crt")
    tls.verify_mode = ssl.CERT_REQUIRED
    server = HTTPServer(("127.0.0.1", 0), Version)
    server.socket = tls.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def write(path: Path, cluster: dict, user: dict, namespace: str | None = None) -> Path:
    context = {"cluster": "c", "user": "u", **({"namespace": namespace} if namespace else {})}
    path.write_text(
        yaml.safe_dump(
            {
                "clusters": [{"name": "c", "cluster": cluster}],
                "users": [{"name": "u", "user": user}],
                "contexts": [{"name": "ctx", "context": context}],
                "current-context": "ctx",
            }
        )
    )
    return path


async def test_token_and_plain_http(tmp_path):
    conn = await load_connection(
        write(tmp_path / "k", {"server": "http://127.0.0.1:6443"}, {"token": "abc"})
    )
    assert conn.server == "http://127.0.0.1:6443" and conn.token == "abc"
    await conn.client.close()


async def test_ca_and_client_certificate_data_are_used_and_leave_no_files(tmp_path):
    """Inline certificates become files only while the client's TLS context is made;
    the client then proves itself to a server that asks for its certificate."""
    cert, key = self_signed()
    b64 = lambda b: base64.b64encode(b).decode()  # noqa: E731
    before = set(Path(tempfile.gettempdir()).glob("tkhub-kube-*"))
    with tls_apiserver(tmp_path, cert, key) as server:
        conn = await load_connection(
            write(
                tmp_path / "k",
                {"server": server, "certificate-authority-data": b64(cert)},
                {"client-certificate-data": b64(cert), "client-key-data": b64(key)},
            )
        )
        assert set(Path(tempfile.gettempdir()).glob("tkhub-kube-*")) == before  # no key left
        async with KubeApi(conn) as api:
            assert (await api.get_json("/version"))["gitVersion"] == "v-test"


async def test_a_server_the_ca_did_not_sign_is_refused(tmp_path):
    ours, _ = self_signed()
    theirs, their_key = self_signed()
    b64 = lambda b: base64.b64encode(b).decode()  # noqa: E731
    with tls_apiserver(tmp_path, theirs, their_key) as server:
        conn = await load_connection(
            write(
                tmp_path / "k",
                {"server": server, "certificate-authority-data": b64(ours)},
                {"token": "t"},
            )  # fmt: skip
        )
        async with KubeApi(conn) as api:
            with pytest.raises(KubeError, match=f"the Kubernetes API at {server} did not answer"):
                await api.get_json("/version")


async def test_insecure_skip_verify(tmp_path):
    conn = await load_connection(
        write(tmp_path / "k", {"server": "https://x:6443", "insecure-skip-tls-verify": True}, {})
    )
    assert conn.configuration.verify_ssl is False
    await conn.client.close()


async def test_missing_kubeconfig_is_one_line(tmp_path):
    with pytest.raises(KubeError, match="no kubeconfig at .*; set KUBECONFIG"):
        await load_connection(tmp_path / "absent")


async def test_unknown_context(tmp_path):
    path = tmp_path / "k"
    path.write_text(yaml.safe_dump({"current-context": "nope", "contexts": []}))
    with pytest.raises(KubeError, match="the kubeconfig cannot be used: .*nope"):
        await load_connection(path)


def exec_plugin(tmp_path: Path, token: str) -> dict:
    """A user entry whose token comes from a credential plugin, as EKS and GKE use."""
    plugin = tmp_path / "get-token"
    plugin.write_text(
        "#!/bin/sh\n"
        'echo "$1" > "$(dirname "$0")/called-with"\n'
        "printf '%s' '" + json.dumps(
            {"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential",
             "status": {"token": token}}
        ) + "'\n"
    )  # fmt: skip
    plugin.chmod(0o755)
    return {"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": str(plugin),
                     "args": ["--cluster=prod"], "interactiveMode": "Never"}}  # fmt: skip


async def test_an_exec_credential_plugin_gives_the_token(tmp_path):
    user = exec_plugin(tmp_path, "from-the-plugin")
    conn = await load_connection(write(tmp_path / "k", {"server": "http://127.0.0.1:6443"}, user))
    assert conn.token == "from-the-plugin"
    await conn.client.close()
    assert (tmp_path / "called-with").read_text().strip() == "--cluster=prod"


async def test_the_contexts_namespace_is_read(tmp_path):
    path = write(tmp_path / "k", {"server": "http://x:6443"}, {"token": "t"}, namespace="team-a")
    assert (await load_connection(path)).namespace == "team-a"
    plain = write(tmp_path / "k2", {"server": "http://x:6443"}, {"token": "t"})
    assert (await load_connection(plain)).namespace is None


async def test_a_kubeconfig_list_is_merged(tmp_path, monkeypatch):
    """KUBECONFIG=a:b as kubectl reads it: the context in one file, its user in another."""
    first = tmp_path / "a"
    first.write_text(yaml.safe_dump({
        "clusters": [{"name": "c", "cluster": {"server": "http://x:6443"}}],
        "contexts": [{"name": "ctx", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "ctx",
    }))  # fmt: skip
    second = tmp_path / "b"
    second.write_text(yaml.safe_dump({"users": [{"name": "u", "user": {"token": "merged"}}]}))
    monkeypatch.setenv("KUBECONFIG", f"{first}:{second}")
    assert (await load_connection()).token == "merged"


async def test_a_failing_plugin_is_one_line(tmp_path):
    user = {"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": "false",
                     "interactiveMode": "Never"}}  # fmt: skip
    path = write(tmp_path / "k", {"server": "http://x:6443"}, user)
    with pytest.raises(KubeError, match="the kubeconfig cannot be used"):
        await load_connection(path)


@pytest.mark.parametrize(
    ("args", "path"),
    [
        (("Namespace", "tkhub"), "/api/v1/namespaces/tkhub"),
        (("PersistentVolumeClaim", "n", "ns"), "/api/v1/namespaces/ns/persistentvolumeclaims/n"),
        (("Deployment", None, "ns"), "/apis/apps/v1/namespaces/ns/deployments"),
        (("ClusterRole", "r"), "/apis/rbac.authorization.k8s.io/v1/clusterroles/r"),
        (("Node",), "/api/v1/nodes"),
    ],
)
def test_object_path(args, path):
    assert object_path(*args) == path
