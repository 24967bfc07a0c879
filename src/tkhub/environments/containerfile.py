"""The portable ``Containerfile`` of a definition, written from its metadata.

A plain ``podman build --build-arg BASE=...`` of it gives a correctly labelled image;
``tkhub images build`` adds the CA bundle, index and check facts. Everything a server
needs lives under ``/opt/tkhub`` (never under the home, which a volume covers).
"""

from __future__ import annotations

import json
import re

from tkhub.environments.definition import Definition

VENV = "/opt/tkhub/venv"
UV_DIR = "/opt/tkhub/uv"
LOCKS_DIR = "/opt/tkhub/locks"
# For a plain build of a root definition: Debian 12 with Python 3.11 (what the locks
# are made for). tkhub images build passes --base (the tests make one with mmdebstrap).
DEFAULT_ROOT_BASE = "docker.io/library/python:3.11-slim-bookworm"
IMAGE_PREFIX = "localhost/tkhub-env-"

_HEADER = """\
# Written by `tkhub images lock {name}` from environment.toml: edit that, not this.
# Build: podman build --build-arg BASE=<image> -t {image_prefix}{name} .
"""

# Servers run as jovyan (uid 1000, home /home/jovyan, where the volumes mount), as
# docker-stacks images do; the install runs as root.
USER_UID = 1000
_USER = """\
USER root
RUN id -u jovyan >/dev/null 2>&1 || useradd --create-home --uid {uid} --shell /bin/bash jovyan
"""

# The RUN step: uv in its own directory (a sync of the lock must not remove it),
# then the lock installed into the environment. CA_BUNDLE: a file the build mounts
# (pip and uv behind a TLS-intercepting proxy); INDEX_URL: a mirror of PyPI.
_INSTALL = """\
ARG CA_BUNDLE=
ARG INDEX_URL=https://pypi.org/simple
COPY requirements.lock {locks}/{name}.lock
RUN set -eu; \\
    if [ -n "$CA_BUNDLE" ]; then export PIP_CERT="$CA_BUNDLE" SSL_CERT_FILE="$CA_BUNDLE"; fi; \\
    if [ ! -x {venv}/bin/python ]; then python3 -m venv {venv}; fi; \\
    if [ ! -x {uv}/bin/uv ]; then \\
        {venv}/bin/pip install --no-cache-dir --disable-pip-version-check \\
            --index-url "$INDEX_URL" --target {uv} uv; \\
    fi; \\
    {uv}/bin/uv pip install --no-cache --python {venv}/bin/python \\
        --index-url "$INDEX_URL" -r {locks}/{name}.lock
"""


def base_reference(definition: Definition) -> str:
    """The default BASE: the parent's image, or a Debian Python image for a root."""
    if definition.parent:
        return f"{IMAGE_PREFIX}{definition.parent}:latest"
    return DEFAULT_ROOT_BASE


def render(definition: Definition) -> str:
    """The Containerfile text for ``definition``."""
    labels = "".join(
        f"LABEL {key}={json.dumps(value)}\n" for key, value in definition.labels().items()
    )
    return (
        _HEADER.format(name=definition.name, image_prefix=IMAGE_PREFIX)
        + f"ARG BASE={base_reference(definition)}\n"
        + "FROM ${BASE}\n"
        + f"ENV PATH={VENV}/bin:$PATH \\\n    TKHUB_ENVIRONMENT={definition.name}\n"
        + _USER.format(uid=USER_UID)
        + _INSTALL.format(name=definition.name, venv=VENV, uv=UV_DIR, locks=LOCKS_DIR)
        + f"USER {USER_UID}\nENV HOME=/home/jovyan\nWORKDIR /home/jovyan\n"
        + labels
        + f"LABEL org.opencontainers.image.title={json.dumps(definition.display_name)} \\\n"
        + f"      org.opencontainers.image.version={json.dumps(definition.version)}\n"
    )


_LABEL = re.compile(r'^LABEL\s+([\w.-]+)=("(?:[^"\\]|\\.)*")\s*$', re.M)


def labels_in(text: str) -> dict[str, str]:
    """The one-per-line ``LABEL key="value"`` entries of a Containerfile."""
    return {key: json.loads(value) for key, value in _LABEL.findall(text)}
