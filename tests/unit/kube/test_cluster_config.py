"""``tkhub-cluster.yaml`` errors name the file and the field; the CLI exits 2."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from tkhub.cli import app
from tkhub.kube.deploy.cluster import ClusterConfigError, load_cluster_config
from tkhub.kube.deploy.preflight import check_helm


def test_example_loads(cfg):
    assert cfg.names.pvc("notebooks") == "tkhub-notebooks"
    assert cfg.storage.class_name == "seaweedfs-storage"


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("domain: x\n", "keycloak"),
        ("domain: x\nkeycloak: {issuer: https://k}\nnamespace: Bad_NS\n", "namespace"),
        (
            "domain: x\nkeycloak: {issuer: https://k}\nstorage: {notebooks: lots}\n",
            "storage.notebooks",
        ),
        ("domain: x\nkeycloak: {issuer: https://k}\ncatalog: {database: external}\n", "catalog"),
        ("domain: x\nkeycloak: {issuer: https://k}\nstorrage: {}\n", "storrage"),
        ("- a list\n", "mapping"),
    ],
)
def test_bad_config_names_the_field(tmp_path, text, where):
    path = tmp_path / "tkhub-cluster.yaml"
    path.write_text(text)
    with pytest.raises(ClusterConfigError, match=where) as caught:
        load_cluster_config(path)
    assert str(path) in str(caught.value)


def test_cli_bad_config_is_one_line_exit_2(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("domain: x\n")
    result = CliRunner().invoke(app, ["deploy", "render", "-f", str(path), "-o", str(tmp_path)])
    assert result.exit_code == 2
    assert "keycloak" in result.output and "Traceback" not in result.output


def test_cli_missing_config(tmp_path):
    result = CliRunner().invoke(app, ["deploy", "verify", "-f", str(tmp_path / "none.yaml")])
    assert result.exit_code == 2 and "does not exist" in result.output


def test_helm_missing_says_how_to_install():
    check = check_helm(lambda name: None)
    assert check.failed and "install" in check.message
