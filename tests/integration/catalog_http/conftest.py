"""Fixtures for the catalog HTTP tests (the app and the client over a real server).

- ``serve_app(app) -> base_url``: runs an ASGI app with a real uvicorn server on
  127.0.0.1 (free port) in a background thread, stopped at the end of the test.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hubproc import app_servers


@pytest.fixture
def serve_app() -> Iterator[Callable[[Any], str]]:
    with app_servers() as start:
        yield start
