"""Rendered manifests: valid for two Kubernetes versions, named from one place."""

from __future__ import annotations

import kubernetes_validate
import pytest
import yaml

from tkhub.kube.deploy.manifests import render_manifests
from tkhub.kube.deploy.render import render
from tkhub.kube.names import HOME, SHARED_VOLUMES, singleuser_volumes

# kubernetes-validate 1.37 ships schemas 1.25..1.37; preflight supports 1.28..1.35.
VERSIONS = ("1.31.0", "1.34.0")


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("which", ["cfg", "cfg_external"])
def test_every_manifest_is_valid(request, which, version):
    cfg = request.getfixturevalue(which)
    for obj in render_manifests(cfg):
        # strict: an unknown field (a typo) is an error too
        kubernetes_validate.validate(obj, version, strict=True)


def test_namespace_first_and_all_objects_labelled(cfg):
    objects = render_manifests(cfg)
    assert objects[0]["kind"] == "Namespace"
    for obj in objects:
        assert obj["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "tkhub"
        if obj["kind"] not in ("Namespace", "ClusterRole", "ClusterRoleBinding"):
            assert obj["metadata"]["namespace"] == cfg.namespace


def test_shared_pvcs_are_rwx_on_the_configured_class(cfg):
    pvcs = {
        o["metadata"]["name"]: o
        for o in render_manifests(cfg)
        if o["kind"] == "PersistentVolumeClaim"
    }
    for volume in SHARED_VOLUMES:
        pvc = pvcs[cfg.names.pvc(volume.key)]
        assert pvc["spec"]["accessModes"] == ["ReadWriteMany"]
        assert pvc["spec"]["storageClassName"] == "seaweedfs-storage"
        assert pvc["spec"]["resources"]["requests"]["storage"] == getattr(cfg.storage, volume.key)
    assert pvcs[cfg.names.catalog_db_pvc]["spec"]["accessModes"] == ["ReadWriteOnce"]


def test_external_database_comes_from_a_secret_and_has_no_db_pvc(cfg_external):
    objects = render_manifests(cfg_external)
    assert cfg_external.names.catalog_db_pvc not in {o["metadata"]["name"] for o in objects}
    deployment = next(o for o in objects if o["kind"] == "Deployment")
    env = {e["name"]: e for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["TKHUB_CATALOG_DATABASE_URL"]["valueFrom"]["secretKeyRef"] == {
        "name": "tkhub-catalog-db",
        "key": "url",
    }


def test_inventory_role_reads_nodes_and_pods_for_catalog_hub_and_jobs(cfg):
    objects = {o["kind"]: o for o in render_manifests(cfg)}
    rules = objects["ClusterRole"]["rules"]
    assert rules == [
        {"apiGroups": [""], "resources": ["nodes", "pods"], "verbs": ["get", "list", "watch"]}
    ]
    subjects = {s["name"] for s in objects["ClusterRoleBinding"]["subjects"]}
    assert subjects == {cfg.names.catalog, "hub", cfg.names.jobs}
    assert (
        objects["ClusterRoleBinding"]["roleRef"]["name"]
        == objects["ClusterRole"]["metadata"]["name"]
    )


@pytest.mark.parametrize("component", ["catalog", "jobs"])
def test_each_service_selects_its_deployment_pods(cfg, component):
    objects = {(o["kind"], o["metadata"]["name"]): o for o in render_manifests(cfg)}
    name = getattr(cfg.names, component)
    deployment, service = objects["Deployment", name], objects["Service", name]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert deployment["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert pod_labels["hub.jupyter.org/network-access-hub"] == "true"


def jobs_objects(cfg) -> dict:
    return {(o["kind"], o["metadata"]["name"]): o for o in render_manifests(cfg)
            if o["metadata"]["labels"]["app.kubernetes.io/component"] == "jobs"}  # fmt: skip


def test_the_jobs_service_runs_jobs_in_its_namespace_only(cfg):
    objects = jobs_objects(cfg)
    rules = objects["Role", "tkhub-jobs"]["rules"]
    assert {"apiGroups": ["batch"], "resources": ["jobs"],
            "verbs": ["get", "list", "watch", "create", "delete"]} in rules  # fmt: skip
    binding = objects["RoleBinding", "tkhub-jobs"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "tkhub-jobs", "namespace": cfg.namespace}
    ]
    pod = objects["Deployment", "tkhub-jobs"]["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "tkhub-jobs"
    env = {e["name"]: e for e in pod["containers"][0]["env"]}
    assert env["TKHUB_JOBS_RUNNER_IMAGE"]["value"] == cfg.hub.image
    assert env["JUPYTERHUB_API_TOKEN"]["valueFrom"]["secretKeyRef"] == {
        "name": "hub", "key": "hub.services.jobs.apiToken"}  # fmt: skip
    assert env["TKHUB_JOBS_DATABASE_URL"]["value"].startswith("sqlite:////var/lib/tkhub/")
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["data"]["persistentVolumeClaim"] == {"claimName": "tkhub-jobs-db"}
    assert volumes["notebooks"]["persistentVolumeClaim"]["readOnly"] is True
    assert objects["PersistentVolumeClaim", "tkhub-jobs-db"]["spec"]["accessModes"] == [
        "ReadWriteOnce"]  # fmt: skip


def test_jobs_share_an_external_catalog_database(cfg_external):
    objects = jobs_objects(cfg_external)
    assert ("PersistentVolumeClaim", "tkhub-jobs-db") not in objects
    pod = objects["Deployment", "tkhub-jobs"]["spec"]["template"]["spec"]
    env = {e["name"]: e for e in pod["containers"][0]["env"]}
    assert env["TKHUB_JOBS_DATABASE_URL"]["valueFrom"]["secretKeyRef"] == {
        "name": "tkhub-catalog-db", "key": "url"}  # fmt: skip


def test_user_volumes_mount_under_home_never_on_it(cfg):
    volumes, mounts = singleuser_volumes(cfg.names)
    paths = [m["mountPath"] for m in mounts]
    assert HOME not in paths and HOME + "/" not in paths
    assert all(p.startswith(HOME + "/") for p in paths)
    assert paths == [
        "/home/jovyan/thinkube/notebooks",
        "/home/jovyan/thinkube/datasets",
        "/home/jovyan/thinkube/models",
        "/home/jovyan/thinkube/examples-repo",
        "/home/jovyan/scratch",
    ]
    claims = {
        v["persistentVolumeClaim"]["claimName"] for v in volumes if "persistentVolumeClaim" in v
    }
    rendered = {
        o["metadata"]["name"] for o in render_manifests(cfg) if o["kind"] == "PersistentVolumeClaim"
    }
    assert claims <= rendered  # every volume a pod mounts is one the deploy creates
    assert {"name": "scratch", "emptyDir": {}} in volumes


def test_render_writes_files_and_removes_stale_ones(cfg, tmp_path):
    stale = tmp_path / "manifests" / "99-old.yaml"
    stale.parent.mkdir(parents=True)
    stale.write_text("kind: Gone\n")
    written = render(cfg, tmp_path)
    assert not stale.exists()
    assert (tmp_path / "values.yaml") in written
    loaded = [
        yaml.safe_load(p.read_text()) for p in sorted((tmp_path / "manifests").glob("*.yaml"))
    ]
    assert loaded == render_manifests(cfg)


@pytest.mark.parametrize("version", VERSIONS)
def test_examples_sync_and_delivery_use_the_servers_claims(cfg, version):
    """The sync Job/CronJob and the delivery init container mount the claims (and the
    per-user subPath) the servers mount, and are valid objects."""
    from tkhub.kube.names import examples_init_container

    volumes, mounts = singleuser_volumes(cfg.names)
    server_claims = {v["name"]: v["persistentVolumeClaim"]["claimName"]
                     for v in volumes if "persistentVolumeClaim" in v}  # fmt: skip
    by_kind = {o["kind"]: o for o in render_manifests(cfg)}
    job_pod = by_kind["Job"]["spec"]["template"]["spec"]
    cron_pod = by_kind["CronJob"]["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert job_pod == cron_pod
    (claim,) = [v["persistentVolumeClaim"]["claimName"] for v in job_pod["volumes"]]
    assert claim == server_claims["examples"] == cfg.names.pvc("examples")
    assert job_pod["containers"][0]["image"] == cfg.hub.image

    init = examples_init_container(cfg.hub.image, "scipy")
    server_subpaths = {m["name"]: m.get("subPath") for m in mounts}
    for mount in init["volumeMounts"]:
        assert mount["name"] in server_claims
        assert mount.get("subPath") == server_subpaths[mount["name"]]
    server = {"name": "notebook", "image": "lab", "volumeMounts": mounts}
    spec = {"initContainers": [init], "volumes": volumes, "containers": [server]}
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "jupyter-alice"}, "spec": spec}
    kubernetes_validate.validate(pod, version, strict=True)
