"""Service settings: refused with the reason when they could not work, and who gets what."""

from __future__ import annotations

import asyncio
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from pydantic import ValidationError

from tkhub.groups import in_any_group, normalize_group
from tkhub.kube.deploy.cluster import ClusterConfig
from tkhub.services import (
    SecretFileError,
    check_services,
    plain_environment,
    public_url,
    read_secret_file,
    secret_file_problem,
    services_for,
)
from tkhub.settings import LocalService, Settings

MLFLOW = {"name": "MLflow", "env": {"MLFLOW_TRACKING_URI": "http://127.0.0.1:5000"}}


def settings(tmp_path: Path, *services: dict) -> Settings:
    return Settings(data_dir=tmp_path, services=list(services))


@pytest.mark.parametrize(
    ("service", "words"),
    [
        ({"name": "x", "env": {"1BAD": "v"}}, "'1BAD' is not an environment variable name"),
        ({"name": "x", "env": {"PATH": "/evil"}}, "PATH is set by tkhub itself"),
        ({"name": "x", "env": {"JUPYTERHUB_API_TOKEN": "t"}}, "set by tkhub itself"),
        ({"name": "x", "env": {"A": "1"}, "secrets": {"A": "/f"}}, "A in both env and secrets"),
        ({"name": "x", "url": "mlflow:5000"}, "is not an http(s) URL"),
        ({"name": "x", "envs": {}}, "Extra inputs are not permitted"),
        ({"name": ""}, "at least 1 character"),
    ],
)
def test_a_service_that_could_not_work_is_refused(tmp_path, service, words):
    with pytest.raises(ValidationError) as info:
        settings(tmp_path, service)
    assert words in str(info.value)


def test_two_services_may_not_set_one_variable(tmp_path):
    other = {"name": "Other", "env": {"MLFLOW_TRACKING_URI": "http://x"}}
    with pytest.raises(ValidationError) as info:
        settings(tmp_path, MLFLOW, other)
    assert "MLFLOW_TRACKING_URI is set by both MLflow and Other" in str(info.value)
    with pytest.raises(ValidationError, match="two services are named 'MLflow'"):
        settings(tmp_path, MLFLOW, {**MLFLOW, "env": {}})


def test_cluster_secrets_are_secret_references_not_files():
    base = {"domain": "d", "keycloak": {"issuer": "https://k/realms/r"}}
    gateway = {"name": "GW", "secrets": {"OPENAI_API_KEY": {"name": "gw", "key": "k"}}}
    cfg = ClusterConfig.model_validate({**base, "services": [gateway]})
    assert cfg.services[0].secrets["OPENAI_API_KEY"].name == "gw"
    with pytest.raises(ValidationError):
        ClusterConfig.model_validate(
            {**base, "services": [{"name": "GW", "secrets": {"K": "/a/file"}}]}
        )


def test_groups_decide_who_gets_a_service():
    everyone = LocalService.model_validate(MLFLOW)
    team = LocalService(name="GW", env={"OPENAI_BASE_URL": "http://gw"}, groups=["/ml/llm"])
    assert services_for([everyone, team], []) == [everyone]
    assert services_for([everyone, team], ["ml/llm"]) == [everyone, team]  # full path or not
    assert services_for([everyone, team], ["ml"]) == [everyone]  # a parent is another group
    assert plain_environment([everyone, team]) == {
        "MLFLOW_TRACKING_URI": "http://127.0.0.1:5000",
        "OPENAI_BASE_URL": "http://gw",
    }
    assert normalize_group(" /team/sub/ ") == "team/sub"
    assert in_any_group(["x"], []) and not in_any_group([], ["x"])


def test_public_url_drops_credentials():
    assert (
        public_url("https://u:p@mlflow.example.org:5000/x") == "https://mlflow.example.org:5000/x"
    )
    assert public_url("http://gw:4000/v1") == "http://gw:4000/v1"


def test_secret_files_must_be_private_and_not_empty(tmp_path):
    path = tmp_path / "token"
    assert "does not exist" in str(secret_file_problem(path))
    path.write_text("sk-123\n")
    path.chmod(0o644)
    assert "readable by other users (mode 0644); chmod 600 it" in str(secret_file_problem(path))
    with pytest.raises(SecretFileError):
        read_secret_file(path)
    path.chmod(0o600)
    assert read_secret_file(path) == "sk-123"
    path.write_text("\n")
    with pytest.raises(SecretFileError, match="is empty"):
        read_secret_file(path)
    assert "not a regular file" in str(secret_file_problem(tmp_path))


class _Answer(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        self.send_response(500 if self.path == "/broken" else 401)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_health_check_answers_down_and_unchecked():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Answer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    closed = ThreadingHTTPServer(("127.0.0.1", 0), _Answer)
    closed_port = closed.server_address[1]
    closed.server_close()  # nothing listens there now
    try:
        services = [
            LocalService(name="up", url=f"http://user:pw@127.0.0.1:{port}/"),
            LocalService(name="broken", url=f"http://127.0.0.1:{port}/broken"),
            LocalService(name="down", url=f"http://127.0.0.1:{closed_port}/"),
            LocalService(name="nourl"),
        ]
        up, broken, down, nourl = asyncio.run(check_services(services, timeout=2))
    finally:
        server.shutdown()
    assert up.ok and up.text == f"answers at http://127.0.0.1:{port}/ (HTTP 401)"  # no pw shown
    assert broken.ok is False and "answered 500" in broken.text
    assert down.ok is False and "does not answer" in down.text and "ConnectError" in down.text
    assert nourl.ok is None
