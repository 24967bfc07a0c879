"""Certificates and keys for the test cluster, made with the openssl command line.

One CA signs the apiserver's serving certificate and every client certificate
(admin, controller-manager, scheduler, kwok, Kueue's webhook server); a separate
RSA key pair signs service-account tokens. Keys are written mode 0600.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

DAYS = "3650"


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def _key(path: Path) -> None:
    _openssl("genrsa", "-out", str(path), "2048")
    path.chmod(0o600)


def ensure_ca(pki: Path) -> None:
    if (pki / "ca.crt").exists():
        return
    pki.mkdir(parents=True, exist_ok=True)
    _key(pki / "ca.key")
    _openssl(
        "req", "-x509", "-new", "-key", str(pki / "ca.key"), "-days", DAYS,
        "-subj", "/CN=tkhub-test-cluster-ca", "-out", str(pki / "ca.crt"),
    )  # fmt: skip


def ensure_cert(
    pki: Path, name: str, *, cn: str, org: str = "", dns: tuple[str, ...] = (),
    ips: tuple[str, ...] = (),
) -> tuple[Path, Path]:  # fmt: skip
    """A key and a CA-signed certificate ``name.crt``; client and server usage."""
    crt, key = pki / f"{name}.crt", pki / f"{name}.key"
    if crt.exists() and key.exists():
        return crt, key
    _key(key)
    subject = f"/CN={cn}" + (f"/O={org}" if org else "")
    alt = ",".join([f"DNS:{d}" for d in dns] + [f"IP:{i}" for i in ips])
    ext = "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n"
    ext += "extendedKeyUsage=serverAuth,clientAuth\n"
    if alt:
        ext += f"subjectAltName={alt}\n"
    with tempfile.TemporaryDirectory() as tmp:
        csr, extfile = Path(tmp) / "req.csr", Path(tmp) / "ext.cnf"
        extfile.write_text(ext)
        _openssl("req", "-new", "-key", str(key), "-subj", subject, "-out", str(csr))
        _openssl(
            "x509", "-req", "-in", str(csr), "-CA", str(pki / "ca.crt"),
            "-CAkey", str(pki / "ca.key"), "-CAcreateserial", "-days", DAYS,
            "-extfile", str(extfile), "-out", str(crt),
        )  # fmt: skip
    return crt, key


def ensure_service_account_keys(pki: Path) -> None:
    if (pki / "sa.key").exists():
        return
    _key(pki / "sa.key")
    _openssl("rsa", "-in", str(pki / "sa.key"), "-pubout", "-out", str(pki / "sa.pub"))


def write_private(path: Path, text: str) -> None:
    """Write ``text`` readable by its owner only, replacing any old file at once."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)
