"""Values for the Zero to JupyterHub chart: the hub runs tkhub.

The hub image carries tkhub; ``hub.extraConfig`` hands over to
``tkhub.kube.hub_config.configure(c)``. Keycloak sign-in through TkOAuthenticator,
the catalog as an external JupyterHub service, the idle culler on, and the user
volumes from ``tkhub.kube.names`` (under ``~/thinkube``, never over the home).
"""

from __future__ import annotations

from typing import Any

from tkhub.catalog.hub_tokens import CATALOG_READ_ALL_SCOPE
from tkhub.jobs import JOBS_PREFIX, JOBS_SERVICE
from tkhub.kube.deploy.cluster import ClusterConfig
from tkhub.kube.names import singleuser_volumes
from tkhub.signin import Endpoints, generic_oauth_config

HUB_EXTRA_CONFIG = "from tkhub.kube.hub_config import configure\nconfigure(c)\n"
CLIENT_SECRET_ENV = "OAUTH_CLIENT_SECRET"  # GenericOAuthenticator reads it by default


def split_image(reference: str) -> dict[str, str]:
    """``registry/repo:tag`` -> the chart's ``{name, tag}``; a digest stays pinned.

    The chart joins them as ``name:tag``, and ``repo:tag@sha256:...`` is a valid
    reference, so a digest rides in the tag.
    """
    reference, _, digest = reference.partition("@")
    name, tag = reference, "latest"
    if ":" in reference.rsplit("/", 1)[-1]:
        name, tag = reference.rsplit(":", 1)
    return {"name": name, "tag": f"{tag}@{digest}" if digest else tag}


def _jsonable(config: dict[str, Any]) -> dict[str, Any]:
    """Sets as sorted lists: YAML has no sets, and traitlets casts lists back."""
    return {k: sorted(v) if isinstance(v, set) else v for k, v in config.items()}


def _sign_in(cfg: ClusterConfig) -> dict[str, Any]:
    """The same ``TkOAuthenticator`` settings as ``tkhub up --oidc-issuer`` writes; the
    client secret comes from ``OAUTH_CLIENT_SECRET``; the chart generates the key
    that encrypts the auth state (``hub.config.CryptKeeper.keys``, in its ``hub`` Secret)."""
    oidc = cfg.keycloak
    hub_url = f"https://{cfg.domain}/hub/"
    settings = generic_oauth_config(
        oidc, Endpoints.keycloak(oidc.issuer), hub_url + "oauth_callback", hub_url,
        confidential=True,  # preflight checks its Secret
    )  # fmt: skip
    return {
        "JupyterHub": {"authenticator_class": "tkhub-oidc"},
        "Authenticator": {"enable_auth_state": True},
        "TkOAuthenticator": _jsonable(settings),
    }


def _hub(cfg: ClusterConfig) -> dict[str, Any]:
    names = cfg.names
    secret = cfg.keycloak.client_secret
    return {
        "image": split_image(cfg.hub.image),
        "extraConfig": {"tkhub": HUB_EXTRA_CONFIG},
        "extraEnv": {
            CLIENT_SECRET_ENV: {
                "valueFrom": {"secretKeyRef": {"name": secret.name, "key": secret.key}}
            },
            "TKHUB_CATALOG_URL": names.catalog_url,
            "TKHUB_NAMESPACE": names.namespace,
            "TKHUB_RELEASE": names.release,
            "TKHUB_EXAMPLES_IMAGE": cfg.hub.image,  # the delivery init container's
        },
        "config": {
            **_sign_in(cfg),
            # Secret names and keys only: pods take the values by secretKeyRef.
            "TkKubeSpawner": {
                "platform_services": [s.model_dump(mode="json") for s in cfg.services]
            },
        },
        "services": {
            "catalog": {"url": names.catalog_url, "display": False},
            # the jobs page under the Services menu, signed in through the hub
            JOBS_SERVICE: {
                "url": names.jobs_url,
                "display": True,
                "oauth_no_confirm": True,
                "oauth_client_id": f"service-{JOBS_SERVICE}",
                "oauth_redirect_uri": f"{JOBS_PREFIX}/oauth_callback",
            },
        },
        "loadRoles": {
            "tkhub-catalog": {
                "description": "The catalog checks users' tokens and groups.",
                "services": ["catalog"],
                # read-all: its token is the spawner's, which filters entries per user
                "scopes": ["read:users:groups", "read:users:name", CATALOG_READ_ALL_SCOPE],
            },
            "tkhub-jobs": {
                "description": "The jobs service checks users' tokens and reads the catalog.",
                "services": [JOBS_SERVICE],
                "scopes": ["read:users:groups", "read:users:name", CATALOG_READ_ALL_SCOPE],
            },
        },
    }


def render_values(cfg: ClusterConfig) -> dict[str, Any]:
    """The chart's values as a dict (written to ``values.yaml`` by ``render``)."""
    volumes, mounts = singleuser_volumes(cfg.names)
    return {
        "fullnameOverride": "",
        "hub": _hub(cfg),
        "proxy": {"service": {"type": "ClusterIP"}},
        "ingress": {"enabled": True, "hosts": [cfg.domain]},
        "cull": {"enabled": True, "timeout": cfg.hub.cull_idle_timeout, "every": 300},
        "singleuser": {
            "defaultUrl": "/lab",
            # the chart's policy keeps servers from private addresses; they may reach
            # the jobs service (`TKHUB_JOBS_URL`, a job submitted from a terminal)
            "networkPolicy": {
                "egress": [
                    {
                        "to": [{"podSelector": {"matchLabels": cfg.names.labels("jobs")}}],
                        "ports": [{"port": cfg.names.jobs_port, "protocol": "TCP"}],
                    }
                ]
            },
            "storage": {
                "type": "none",
                "extraVolumes": volumes,
                "extraVolumeMounts": mounts,
            },
        },
        "scheduling": {"userScheduler": {"enabled": False}},
        "prePuller": {"hook": {"enabled": False}, "continuous": {"enabled": False}},
    }
