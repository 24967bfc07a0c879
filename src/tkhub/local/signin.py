"""Who signs in to the hub on this machine: tkhub's password accounts (the default),
or an OpenID Connect provider such as Keycloak when ``oidc`` is set.

``tkhub up`` reads the provider's discovery document once (``prepare_signin``: a
provider that does not answer stops it with the reason) and leaves the endpoints in
the state directory for the hub's configuration (``configure_signin``), so a hub
restart never depends on the provider answering.
"""

from __future__ import annotations

from typing import Any

from tkhub.local.password_auth import UserStore, users_file
from tkhub.local.secrets import ensure_secret
from tkhub.services.secret_files import SecretFileError, read_secret_file, secret_file_problem
from tkhub.settings import Settings
from tkhub.signin import Endpoints, ProviderUnavailable, discover, generic_oauth_config

ENDPOINTS_FILE = "oidc-endpoints.json"
CRYPT_KEY = "jupyterhub-crypt-key"  # encrypts auth state (the provider's tokens) at rest


class SigninError(Exception):
    """The sign-in settings cannot work; ``str()`` says why, in one line."""


def check_signin(settings: Settings) -> Endpoints | None:
    """The provider's endpoints, after checking it answers and the client secret is
    private; before anything is started or written."""
    oidc = settings.oidc
    if oidc is None:
        return None
    if oidc.client_secret_file is not None:
        problem = secret_file_problem(oidc.client_secret_file)
        if problem:
            raise SigninError(f"oidc.client_secret_file: {problem}")
    try:
        return discover(oidc.issuer)
    except ProviderUnavailable as e:
        raise SigninError(str(e)) from e


def save_signin(settings: Settings, endpoints: Endpoints | None) -> str:
    """Leave the endpoints and a crypt key for the hub; a line saying who may sign in."""
    oidc = settings.oidc
    if oidc is None or endpoints is None:
        return ""
    endpoints.save(settings.state_dir / ENDPOINTS_FILE)
    ensure_secret(settings, CRYPT_KEY)
    who = (f"members of {', '.join(oidc.allowed_groups)}" if oidc.allowed_groups
           else "every account of the realm")  # fmt: skip
    return f"Sign-in: {oidc.issuer} ({who}; admins: group {oidc.admin_group})"


def configure_signin(c: Any, settings: Settings) -> None:
    oidc = settings.oidc
    if oidc is None:
        c.JupyterHub.authenticator_class = "tkhub-password"
        c.PasswordAuthenticator.users_file = str(users_file(settings))
        store = UserStore(users_file(settings))
        c.Authenticator.admin_users = {n for n, a in store.load().items() if a.get("admin")}
        return
    endpoints = Endpoints.load(settings.state_dir / ENDPOINTS_FILE)
    secret = ""
    if oidc.client_secret_file is not None:
        try:
            secret = read_secret_file(oidc.client_secret_file)
        except SecretFileError as e:  # checked by `tkhub up`; changed since
            raise SigninError(f"oidc.client_secret_file: {e}") from e
    hub_url = f"{settings.reachable_hub_url}/hub/"
    c.JupyterHub.authenticator_class = "tkhub-oidc"
    c.TkOAuthenticator.update(
        generic_oauth_config(oidc, endpoints, hub_url + "oauth_callback", hub_url, secret)
    )
    c.Authenticator.enable_auth_state = True
    c.CryptKeeper.keys = [bytes.fromhex(ensure_secret(settings, CRYPT_KEY))]
