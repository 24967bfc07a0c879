"""Platform services (MLflow, an LLM gateway, a vector store) as users' servers see them.

The admin lists them in the settings (``services:``) or the cluster file; every server
and job of a user in a service's groups gets its environment variables. Secret values
never pass through here as text the hub logs or renders: the local mode reads them from
0600 files at spawn, the cluster takes them from Secrets by reference.
"""

from tkhub.services.environment import (
    plain_environment,
    public_url,
    services_for,
)
from tkhub.services.health import ServiceCheck, check_services
from tkhub.services.secret_files import (
    SecretFileError,
    read_secret_file,
    secret_file_problem,
    secret_values,
)

__all__ = [
    "SecretFileError",
    "ServiceCheck",
    "check_services",
    "plain_environment",
    "public_url",
    "read_secret_file",
    "secret_file_problem",
    "secret_values",
    "services_for",
]
