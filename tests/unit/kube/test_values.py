"""Z2JH values, checked against the keys the chart documents.

The chart's ``values.schema.json`` is not published in any PyPI or npm package, so
``CHART_KEYS`` below writes down, from the chart's configuration reference
(https://z2jh.jupyter.org/en/stable/resources/reference.html), the keys and types
tkhub sets; unknown keys at these levels are errors, as the chart's own schema
(``additionalProperties: false``) makes them.
"""

from __future__ import annotations

import jsonschema
import pytest

from tkhub.kube.deploy.values import HUB_EXTRA_CONFIG, render_values, split_image

STR = {"type": "string"}
OBJ = {"type": "object"}
ENV_VALUE = {"anyOf": [STR, {"type": "object", "required": ["valueFrom"]}]}


def closed(properties: dict, required: tuple[str, ...] = ()) -> dict:
    return {
        "type": "object",
        "additionalProperties": False,
        "properties": properties,
        "required": list(required),
    }


VOLUME_MOUNT = closed(
    {"name": STR, "mountPath": STR, "subPath": STR, "readOnly": {"type": "boolean"}},
    ("name", "mountPath"),
)
CHART_KEYS = closed(
    {
        "fullnameOverride": {"type": ["string", "null"]},
        "hub": closed(
            {
                "image": closed({"name": STR, "tag": STR}, ("name", "tag")),
                "extraConfig": {"type": "object", "additionalProperties": STR},
                "extraEnv": {"type": "object", "additionalProperties": ENV_VALUE},
                "config": OBJ,
                "services": {
                    "type": "object",
                    "additionalProperties": closed(
                        {
                            "url": STR,
                            "display": {"type": "boolean"},
                            "apiToken": STR,
                            "admin": {"type": "boolean"},
                            "oauth_no_confirm": {"type": "boolean"},
                            # passed on to JupyterHub's services, as the others
                            "oauth_client_id": STR,
                            "oauth_redirect_uri": STR,
                        }
                    ),
                },
                "loadRoles": {
                    "type": "object",
                    "additionalProperties": closed(
                        {
                            "description": STR,
                            "services": {"type": "array"},
                            "scopes": {"type": "array"},
                            "users": {"type": "array"},
                            "groups": {"type": "array"},
                        }
                    ),
                },
                "existingSecret": STR,
            },
            ("image", "extraConfig"),
        ),
        "proxy": closed(
            {"service": closed({"type": {"enum": ["ClusterIP", "NodePort", "LoadBalancer"]}})}
        ),
        "ingress": closed(
            {"enabled": {"type": "boolean"}, "hosts": {"type": "array", "items": STR}}
        ),
        "cull": closed(
            {
                "enabled": {"type": "boolean"},
                "timeout": {"type": "integer"},
                "every": {"type": "integer"},
            }
        ),
        "singleuser": closed(
            {
                "defaultUrl": STR,
                "networkPolicy": closed({"egress": {"type": "array", "items": OBJ}}),
                "storage": closed(
                    {
                        "type": {"enum": ["dynamic", "static", "none"]},
                        "extraVolumes": {"type": "array", "items": OBJ},
                        "extraVolumeMounts": {"type": "array", "items": VOLUME_MOUNT},
                    },
                    ("type",),
                ),
            }
        ),
        "scheduling": closed({"userScheduler": closed({"enabled": {"type": "boolean"}})}),
        "prePuller": closed(
            {
                "hook": closed({"enabled": {"type": "boolean"}}),
                "continuous": closed({"enabled": {"type": "boolean"}}),
            }
        ),
    },
    ("hub", "singleuser", "cull"),
)


@pytest.mark.parametrize("which", ["cfg", "cfg_external"])
def test_values_use_only_documented_keys(request, which):
    jsonschema.validate(render_values(request.getfixturevalue(which)), CHART_KEYS)


def test_an_unknown_key_is_caught_by_the_check(cfg):
    values = render_values(cfg)
    values["singleuser"]["storage"]["capacity"] = "10Gi"  # storage.type none has no capacity
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(values, CHART_KEYS)


def test_hub_runs_tkhub_with_a_short_extra_config(cfg):
    hub = render_values(cfg)["hub"]
    assert hub["image"] == {"name": "registry.example.org/thinkube/tkhub-hub", "tag": "0.1.0"}
    assert hub["extraConfig"] == {"tkhub": HUB_EXTRA_CONFIG}
    assert "configure(c)" in HUB_EXTRA_CONFIG and len(HUB_EXTRA_CONFIG.splitlines()) == 2


def test_keycloak_sign_in_with_the_secret_from_a_secret(cfg):
    hub = render_values(cfg)["hub"]
    assert hub["config"]["JupyterHub"]["authenticator_class"] == "tkhub-oidc"
    assert hub["config"]["Authenticator"] == {"enable_auth_state": True}
    assert "GenericOAuthenticator" not in hub["config"]
    oauth = hub["config"]["TkOAuthenticator"]
    oidc = "https://auth.example.org/realms/thinkube/protocol/openid-connect"
    assert oauth["authorize_url"] == f"{oidc}/auth"
    assert oauth["token_url"] == f"{oidc}/token"
    assert oauth["userdata_url"] == f"{oidc}/userinfo"
    assert oauth["logout_redirect_url"].startswith(f"{oidc}/logout?client_id=tkhub&")
    assert oauth["oauth_callback_url"] == "https://jupyter.example.org/hub/oauth_callback"
    assert oauth["issuer"] == "https://auth.example.org/realms/thinkube"
    # oauthenticator 17: groups from the auth state, not the deprecated claim_groups_key
    assert oauth["auth_state_groups_key"] == "oauth_user.groups"
    assert "claim_groups_key" not in oauth
    assert oauth["enable_pkce"] is True and oauth["refresh_pre_spawn"] is True
    assert oauth["admin_groups"] == ["tkhub-admins"]
    assert oauth["allow_all"] is True and oauth["allowed_groups"] == []  # said in the docs
    assert "client_secret" not in oauth  # never in the values file
    assert hub["extraEnv"]["OAUTH_CLIENT_SECRET"]["valueFrom"]["secretKeyRef"] == {
        "name": "tkhub-oidc",
        "key": "client-secret",
    }


def test_a_required_group_closes_the_sign_in_to_others(cfg):
    keycloak = cfg.keycloak.model_copy(update={"allowed_groups": ["/ml", "ops"]})
    oauth = render_values(cfg.model_copy(update={"keycloak": keycloak}))["hub"]["config"]
    assert oauth["TkOAuthenticator"]["allowed_groups"] == ["ml", "ops"]  # normalised
    assert oauth["TkOAuthenticator"]["allow_all"] is False


def test_the_rendered_sign_in_loads_into_the_authenticator(cfg, monkeypatch):
    """What the chart hands the hub (``hub.config``) is valid for TkOAuthenticator, and
    equals what one machine configures from the same settings."""
    from traitlets.config import Config

    from tkhub.signin import Endpoints, generic_oauth_config
    from tkhub.signin.authenticator import TkOAuthenticator

    monkeypatch.setenv("OAUTH_CLIENT_SECRET", "from-the-secret")
    rendered = render_values(cfg)["hub"]["config"]
    authenticator = TkOAuthenticator(config=Config(rendered))
    assert authenticator.enable_auth_state is True
    assert authenticator.client_secret == "from-the-secret"
    assert authenticator.admin_groups == {"tkhub-admins"}
    assert authenticator.manage_groups is True
    local = generic_oauth_config(
        cfg.keycloak,
        Endpoints.keycloak(cfg.keycloak.issuer),
        "https://jupyter.example.org/hub/oauth_callback",
        "https://jupyter.example.org/hub/",
        confidential=True,
    )
    for name, value in local.items():
        assert getattr(authenticator, name) == value, name


def test_catalog_is_an_external_service_and_culler_is_on(cfg):
    values = render_values(cfg)
    assert values["hub"]["services"]["catalog"]["url"] == "http://tkhub-catalog.tkhub.svc:8011"
    jobs = values["hub"]["services"]["jobs"]
    assert jobs["url"] == "http://tkhub-jobs.tkhub.svc:8012" and jobs["display"] is True
    assert "custom:tkhub-catalog:read-all" in values["hub"]["loadRoles"]["tkhub-jobs"]["scopes"]
    assert values["cull"]["enabled"] is True and values["cull"]["timeout"] == 3600


def test_servers_may_reach_the_jobs_service_through_the_network_policy(cfg):
    (rule,) = render_values(cfg)["singleuser"]["networkPolicy"]["egress"]
    assert rule["ports"] == [{"port": 8012, "protocol": "TCP"}]
    selector = rule["to"][0]["podSelector"]["matchLabels"]
    assert selector["app.kubernetes.io/component"] == "jobs"


def test_singleuser_storage_none_with_the_shared_mounts(cfg):
    storage = render_values(cfg)["singleuser"]["storage"]
    assert storage["type"] == "none"
    paths = [m["mountPath"] for m in storage["extraVolumeMounts"]]
    assert "/home/jovyan" not in paths
    assert "/home/jovyan/thinkube/notebooks" in paths and "/home/jovyan/scratch" in paths


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        ("reg.example.org:5000/a/hub:1.2", {"name": "reg.example.org:5000/a/hub", "tag": "1.2"}),
        ("reg.example.org:5000/a/hub", {"name": "reg.example.org:5000/a/hub", "tag": "latest"}),
        ("hub:1@sha256:abc", {"name": "hub", "tag": "1@sha256:abc"}),
    ],
)
def test_split_image(reference, expected):
    assert split_image(reference) == expected


def test_services_reach_the_spawner_as_secret_names_only(cfg):
    """The example's gateway key is a Secret reference: the values name it, never hold it."""
    rendered = render_values(cfg)
    services = rendered["hub"]["config"]["TkKubeSpawner"]["platform_services"]
    assert [s["name"] for s in services] == ["MLflow", "LLM gateway"]
    gateway = services[1]
    assert gateway["secrets"] == {"OPENAI_API_KEY": {"name": "tkhub-llm-gateway", "key": "api-key"}}
    assert gateway["groups"] == ["ml"]
