"""The OpenID Connect sign-in settings: what GenericOAuthenticator is given, group
names normalised, and a provider that does not answer said in one line."""

from __future__ import annotations

import pytest
from hubproc import free_port
from pydantic import ValidationError

from tkhub.settings import OidcSettings, load_settings
from tkhub.signin import Endpoints, ProviderUnavailable, discover, generic_oauth_config
from tkhub.signin.authenticator import TkOAuthenticator

ENDPOINTS = Endpoints(
    issuer="https://kc.example.org/realms/tk",
    authorize="https://kc.example.org/realms/tk/protocol/openid-connect/auth",
    token="https://kc.example.org/realms/tk/protocol/openid-connect/token",
    userinfo="https://kc.example.org/realms/tk/protocol/openid-connect/userinfo",
    end_session="https://kc.example.org/realms/tk/protocol/openid-connect/logout",
)


def config(**oidc: object) -> dict:
    settings = OidcSettings(issuer="https://kc.example.org/realms/tk/", **oidc)
    return generic_oauth_config(settings, ENDPOINTS, "http://hub/hub/oauth_callback",
                                "http://hub/hub/", "s3cret")  # fmt: skip


def test_keycloak_conventions_with_pkce_groups_and_refresh():
    got = config()
    assert got["username_claim"] == "preferred_username"
    assert got["auth_state_groups_key"] == "oauth_user.groups"
    assert got["enable_pkce"] and got["manage_groups"] and got["refresh_pre_spawn"]
    assert got["admin_groups"] == {"tkhub-admins"}
    assert got["allow_all"] is True and got["allowed_groups"] == set()
    assert got["logout_redirect_url"] == (
        f"{ENDPOINTS.end_session}?client_id=tkhub&post_logout_redirect_uri=http%3A%2F%2Fhub%2Fhub%2F"
    )
    assert "claim_groups_key" not in got  # deprecated in oauthenticator 17


def test_a_required_group_admits_only_its_members_whatever_the_path_form():
    got = config(allowed_groups=["/team/gpu", "ml/"], admin_group="/ops")
    assert got["allow_all"] is False
    assert got["allowed_groups"] == {"team/gpu", "ml"}
    assert got["admin_groups"] == {"ops"}


def test_a_confidential_client_authenticates_with_basic_and_a_public_one_with_its_id():
    settings = OidcSettings(issuer="https://kc.example.org/realms/tk")
    public = generic_oauth_config(settings, ENDPOINTS, "http://hub/cb", "http://hub/")
    assert public["basic_auth"] is False and "client_secret" not in public
    assert config()["basic_auth"] is True and config()["client_secret"] == "s3cret"


def test_keycloak_endpoints_follow_from_the_issuer():
    assert Endpoints.keycloak("https://kc.example.org/realms/tk/") == ENDPOINTS


def test_the_authenticator_takes_the_config_as_is():
    authenticator = TkOAuthenticator(**config(allowed_groups=["ml"]))
    assert authenticator.allowed_groups == {"ml"} and authenticator.enable_pkce


async def test_full_group_paths_become_group_names():
    authenticator = TkOAuthenticator(**config())
    state = {"oauth_user": {"groups": ["/team/sub", "ml", "/ml", ""]}}
    assert await authenticator.get_user_groups(state) == {"team/sub", "ml"}


@pytest.mark.parametrize("issuer", ["keycloak.example.org", "ftp://x/realms/a", ""])
def test_an_issuer_that_is_not_a_url_is_refused(issuer):
    with pytest.raises(ValidationError, match="issuer"):
        OidcSettings(issuer=issuer)


def test_a_flag_for_one_field_keeps_the_rest_of_the_section(tmp_path):
    (tmp_path / "tkhub.yaml").write_text(
        "oidc:\n  issuer: https://kc.example.org/realms/tk\n  admin_group: ops\n"
    )
    settings = load_settings(data_dir=tmp_path, oidc={"client_id": "lab"})
    assert settings.oidc is not None
    assert (settings.oidc.client_id, settings.oidc.admin_group) == ("lab", "ops")


def test_a_provider_that_does_not_answer_is_said_in_one_line():
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(ProviderUnavailable) as e:
        discover(url, timeout=2)
    assert str(e.value) == (
        f"the OpenID provider does not answer at {url}/.well-known/openid-configuration "
        "(ConnectError)"
    )
