"""Reading a kubeconfig: server, token, CA and client certificate; paths of objects."""

from __future__ import annotations

import base64
import datetime
import ssl
import tempfile
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tkhub.kube.deploy.kubeapi import KubeError, load_connection, object_path


def self_signed() -> tuple[bytes, bytes]:
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
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def write(path: Path, cluster: dict, user: dict) -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "clusters": [{"name": "c", "cluster": cluster}],
                "users": [{"name": "u", "user": user}],
                "contexts": [{"name": "ctx", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "ctx",
            }
        )
    )
    return path


def test_token_and_plain_http(tmp_path):
    conn = load_connection(
        write(tmp_path / "k", {"server": "http://127.0.0.1:6443"}, {"token": "abc"})
    )
    assert conn.server == "http://127.0.0.1:6443" and conn.token == "abc" and conn.verify is True


def test_ca_and_client_certificate_data_leave_no_files(tmp_path):
    cert, key = self_signed()
    b64 = lambda b: base64.b64encode(b).decode()  # noqa: E731
    before = set(Path(tempfile.gettempdir()).glob("tkhub-kube-*"))
    conn = load_connection(
        write(
            tmp_path / "k",
            {"server": "https://10.0.0.1:6443", "certificate-authority-data": b64(cert)},
            {"client-certificate-data": b64(cert), "client-key-data": b64(key)},
        )
    )
    assert isinstance(conn.verify, ssl.SSLContext)
    assert conn.verify.verify_mode == ssl.CERT_REQUIRED
    assert set(Path(tempfile.gettempdir()).glob("tkhub-kube-*")) == before  # key not left behind


def test_insecure_skip_verify(tmp_path):
    conn = load_connection(
        write(tmp_path / "k", {"server": "https://x:6443", "insecure-skip-tls-verify": True}, {})
    )
    assert isinstance(conn.verify, ssl.SSLContext) and conn.verify.verify_mode == ssl.CERT_NONE


def test_missing_kubeconfig_is_one_line(tmp_path):
    with pytest.raises(KubeError, match="no kubeconfig at .* set KUBECONFIG"):
        load_connection(tmp_path / "absent")


def test_unknown_context(tmp_path):
    path = tmp_path / "k"
    path.write_text(yaml.safe_dump({"current-context": "nope", "contexts": []}))
    with pytest.raises(KubeError, match="current-context 'nope'"):
        load_connection(path)


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
