"""Sign-in through an OpenID Connect provider (Keycloak): one configuration for both
modes, groups normalised, and a sign-in page that says when the provider is down."""

from tkhub.signin.config import generic_oauth_config
from tkhub.signin.discovery import Endpoints, ProviderUnavailable, discover

__all__ = ["Endpoints", "ProviderUnavailable", "discover", "generic_oauth_config"]
