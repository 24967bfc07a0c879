"""``python -m tkhub.kube.jobs_service``: the jobs service of a cluster (a Deployment).

The JupyterHub chart registers it as the external service ``jobs`` and generates its
token; ``tkhub deploy`` renders its Deployment (``tkhub.kube.deploy.manifests``) with
these variables:

- ``TKHUB_NAMESPACE``, ``TKHUB_RELEASE``: the deployment's names;
- ``TKHUB_CATALOG_URL``: the catalog, read with this service's own token (its role has
  the catalog's read-all scope);
- ``TKHUB_JOBS_DATABASE_URL``: SQLite on its volume, or the catalog's PostgreSQL;
- ``TKHUB_JOBS_NOTEBOOKS``: where the notebooks claim is mounted (read-only here):
  notebooks are checked and logs read there;
- ``TKHUB_JOBS_RUNNER_IMAGE``: the hub image, whose init container stages the runner;
- ``TKHUB_JOBS_QUEUE``: a Kueue LocalQueue to submit to (empty: tkhub's own queue);
- ``TKHUB_PLATFORM_SERVICES``: the cluster file's services (Secret names only), JSON;
- ``JUPYTERHUB_*``: the hub's API, the token and the OAuth client, as for any service.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path

import uvicorn
from jupyterhub.services.auth import HubOAuth
from traitlets.config import Config

from tkhub.jobs import JOBS_PREFIX, db
from tkhub.jobs.app import create_app
from tkhub.jobs.service import JobsService, catalog_reader
from tkhub.kube.hub_config import configure
from tkhub.kube.jobs_runner import KubeRunner
from tkhub.kube.names import NOTEBOOKS_MOUNT, Names

DEFAULT_PREFIX = f"{JOBS_PREFIX}/"
DEFAULT_DATABASE = "sqlite:////var/lib/tkhub/jobs.sqlite"


class JobsServiceError(Exception):
    """A variable the service needs is missing or wrong; ``str()`` names it."""


def names_from(env: Mapping[str, str]) -> Names:
    return Names(
        namespace=env.get("TKHUB_NAMESPACE") or env.get("POD_NAMESPACE") or "tkhub",
        release=env.get("TKHUB_RELEASE", "tkhub"),
    )


def spawner_config(env: Mapping[str, str]) -> Config:
    """The spawner's configuration as the hub has it, so a job's pod is a server's pod."""
    config = Config()
    configure(config, environ={**env, "TKHUB_CATALOG_TOKEN": "unused-by-jobs"})
    config.KubeSpawner.namespace = names_from(env).namespace
    # the chart's singleuser defaults (singleuser.uid, singleuser.fsGid)
    config.KubeSpawner.uid = 1000
    config.KubeSpawner.fs_gid = 100
    try:
        config.TkKubeSpawner.platform_services = json.loads(
            env.get("TKHUB_PLATFORM_SERVICES") or "[]"
        )
    except ValueError as e:
        raise JobsServiceError(f"TKHUB_PLATFORM_SERVICES is not JSON: {e}") from e
    return config


def build(env: Mapping[str, str]) -> tuple[JobsService, HubOAuth, str]:
    names = names_from(env)
    runner_image = env.get("TKHUB_JOBS_RUNNER_IMAGE", "")
    if not runner_image:
        raise JobsServiceError("TKHUB_JOBS_RUNNER_IMAGE is not set (the hub image)")
    api_url = env.get("JUPYTERHUB_API_URL", f"http://hub.{names.namespace}.svc:8081/hub/api")
    token = env.get("JUPYTERHUB_API_TOKEN", "")
    runner = KubeRunner(
        names, spawner_config(env),
        notebooks_root=Path(env.get("TKHUB_JOBS_NOTEBOOKS", NOTEBOOKS_MOUNT)),
        runner_image=runner_image, hub_api_url=api_url, queue=env.get("TKHUB_JOBS_QUEUE", ""),
    )  # fmt: skip
    engine = db.make_engine(env.get("TKHUB_JOBS_DATABASE_URL", DEFAULT_DATABASE))
    db.upgrade(engine)
    catalog = catalog_reader(
        env.get("TKHUB_CATALOG_URL", names.catalog_url), token,
        float(env.get("TKHUB_CATALOG_TIMEOUT", "5")),
    )  # fmt: skip
    service = JobsService(db.session_factory(engine), runner, catalog)
    hub_auth = HubOAuth(api_url=api_url, api_token=token, cache_max_age=60)
    return service, hub_auth, env.get("JUPYTERHUB_SERVICE_PREFIX", DEFAULT_PREFIX)


def main() -> None:
    env = dict(os.environ)
    logging.basicConfig(level=env.get("TKHUB_LOG_LEVEL", "INFO"),
                        format="[jobs %(levelname)s] %(message)s")  # fmt: skip
    try:
        service, hub_auth, prefix = build(env)
    except JobsServiceError as e:
        raise SystemExit(f"tkhub jobs service: {e}") from None
    app = create_app(service, hub_auth, prefix)
    host = env.get("TKHUB_JOBS_HOST", "127.0.0.1")  # the Deployment sets 0.0.0.0
    port = int(env.get("TKHUB_JOBS_PORT", str(names_from(env).jobs_port)))
    uvicorn.run(app, host=host, port=port, log_level="warning")


if __name__ == "__main__":
    main()
