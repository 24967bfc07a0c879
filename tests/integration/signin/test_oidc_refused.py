"""``tkhub up`` refuses sign-in settings that could not work, before anything starts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from hubproc import free_port

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "local"))
from local_hub import TKHUB  # noqa: E402


def up(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([TKHUB, "up", "--data-dir", str(data), "--port", "9", *args],
                          capture_output=True, text=True, timeout=60)  # fmt: skip


def test_a_provider_that_does_not_answer_stops_tkhub_up_with_the_reason(tmp_path):
    issuer = f"http://127.0.0.1:{free_port()}/realms/tk"
    done = up(tmp_path / "data", "--oidc-issuer", issuer)
    said = " ".join((done.stdout + done.stderr).split())
    assert done.returncode == 1, said
    assert (f"error: sign-in: the OpenID provider does not answer at {issuer}"
            "/.well-known/openid-configuration (ConnectError)") in said  # fmt: skip
    assert "Traceback" not in said and not (tmp_path / "data").exists()


def test_a_client_secret_others_can_read_is_refused(tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("not-private\n")
    secret.chmod(0o644)
    done = up(tmp_path / "data", "--oidc-issuer", "http://127.0.0.1:9/realms/tk",
              "--oidc-client-secret-file", str(secret))  # fmt: skip
    said = " ".join((done.stdout + done.stderr).split())
    assert done.returncode == 1, said
    assert "sign-in: oidc.client_secret_file:" in said and "chmod 600 it" in said
    assert "not-private" not in said and not (tmp_path / "data").exists()


def test_an_issuer_that_is_not_a_url_is_a_settings_error(tmp_path):
    done = up(tmp_path / "data", "--oidc-issuer", "keycloak.example.org")
    said = " ".join((done.stdout + done.stderr).split())
    assert done.returncode == 2 and "settings are not valid" in said and "issuer" in said
