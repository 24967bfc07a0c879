"""Kubernetes API reads as plain JSON, through kubernetes_asyncio (the client KubeSpawner
brings): no model classes, which are slow to build for big lists and drop fields they
do not know.

Asked with ``_preload_content=False``, the client hands back the raw response and
raises nothing for an error status; the status is judged here.
"""

from __future__ import annotations

import json
from typing import Any

from kubernetes_asyncio.client.exceptions import ApiException

TIMEOUT_SECONDS = 10


def status_message(body: bytes) -> str:
    """The API server's own words from an error body (a ``Status``), else the body."""
    try:
        return str(json.loads(body).get("message") or body.decode(errors="replace"))
    except (ValueError, AttributeError):
        return body.decode(errors="replace")[:500]


async def read_json(method: Any, *args: Any, **kwargs: Any) -> dict[str, Any] | None:
    """One API call's JSON; None when the object does not exist (404); ``ApiException``
    with the server's message for any other error status."""
    kwargs.setdefault("_request_timeout", TIMEOUT_SECONDS)
    response = await method(*args, _preload_content=False, **kwargs)
    body = await response.read()
    if response.status == 404:
        return None
    if not 200 <= response.status <= 299:
        raise ApiException(status=response.status, reason=status_message(body))
    return dict(json.loads(body))
