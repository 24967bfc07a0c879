"""``configure(c)`` for the hub image in the kubernetes mode.

The chart's ``hub.extraConfig`` runs ``from tkhub.kube.hub_config import configure;
configure(c)`` after the chart's own configuration, so this sets only what tkhub
adds: the spawner class, the catalog it reads, the user volumes and the custom scope.
The chart passes the deployment's names in ``TKHUB_*`` environment variables.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from traitlets import TraitError

from tkhub.catalog.hub_tokens import (
    CATALOG_ADMIN_SCOPE,
    CATALOG_ADMIN_SCOPE_DESCRIPTION,
    CATALOG_READ_ALL_SCOPE,
    CATALOG_READ_ALL_SCOPE_DESCRIPTION,
)
from tkhub.jobs import JOBS_PREFIX, SERVER_TOKEN_SCOPES
from tkhub.kube.names import HOME, Names, singleuser_volumes
from tkhub.layout import DEFAULT_URL, NOTEBOOKS, ROOT
from tkhub.spawner import catalog_url_problem

CATALOG_TOKEN_FILE = "/usr/local/etc/jupyterhub/secret/hub.services.catalog.apiToken"


def _catalog_token(environ: Mapping[str, str]) -> str:
    """The catalog service's token (a valid hub token, so its reads are allowed)."""
    if environ.get("TKHUB_CATALOG_TOKEN"):
        return environ["TKHUB_CATALOG_TOKEN"]
    # The chart mounts its "hub" Secret, which holds the generated service token.
    try:
        with open(CATALOG_TOKEN_FILE) as f:
            return f.read().strip()
    except OSError:
        return ""


def configure_user_files(c: Any, names: Names) -> None:
    """Each server's volumes (``~/thinkube``) and where JupyterLab opens in them."""
    volumes, mounts = singleuser_volumes(names)
    c.KubeSpawner.volumes = volumes
    c.KubeSpawner.volume_mounts = mounts
    c.KubeSpawner.storage_pvc_ensure = False  # shared RWX volumes, no per-user PVC
    # The file browser's root is ~/thinkube (notebooks, datasets, models, examples);
    # it opens in notebooks, where terminals start too.
    c.KubeSpawner.notebook_dir = f"{HOME}/{ROOT}"
    c.KubeSpawner.default_url = DEFAULT_URL
    c.KubeSpawner.working_dir = f"{HOME}/{NOTEBOOKS}"


def configure(c: Any, environ: Mapping[str, str] | None = None) -> None:
    """Fill the traitlets config ``c`` of a hub running in the cluster."""
    env = os.environ if environ is None else environ
    names = Names(
        namespace=env.get("TKHUB_NAMESPACE") or env.get("POD_NAMESPACE") or "tkhub",
        release=env.get("TKHUB_RELEASE", "tkhub"),
    )
    c.JupyterHub.spawner_class = "tkhub.kube.spawner.TkKubeSpawner"
    catalog_url = env.get("TKHUB_CATALOG_URL", names.catalog_url)
    problem = catalog_url_problem(catalog_url)
    if problem:  # fail when the hub starts, not at the first spawn
        raise TraitError(f"TkKubeSpawner.catalog_url (TKHUB_CATALOG_URL): {problem}")
    c.TkKubeSpawner.catalog_url = catalog_url
    c.TkKubeSpawner.catalog_token = _catalog_token(env)
    configure_user_files(c, names)
    c.TkKubeSpawner.examples_image = env.get("TKHUB_EXAMPLES_IMAGE", "")
    # servers reach the jobs service with their own token (TKHUB_JOBS_URL, the REST API)
    c.TkKubeSpawner.jobs_url = env.get("TKHUB_JOBS_URL", f"{names.jobs_url}{JOBS_PREFIX}")
    c.Spawner.server_token_scopes = SERVER_TOKEN_SCOPES
    scopes = dict(c.JupyterHub.custom_scopes) if "custom_scopes" in c.JupyterHub else {}
    scopes[CATALOG_ADMIN_SCOPE] = {"description": CATALOG_ADMIN_SCOPE_DESCRIPTION}
    scopes[CATALOG_READ_ALL_SCOPE] = {"description": CATALOG_READ_ALL_SCOPE_DESCRIPTION}
    c.JupyterHub.custom_scopes = scopes
