"""The jobs database: the catalog's engine setup, the jobs' own migrations."""

from __future__ import annotations

from importlib.resources import files

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine

from tkhub.catalog.db import make_engine, session_factory

__all__ = ["make_engine", "session_factory", "upgrade"]


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the jobs tables to ``revision``; run at every service start (idempotent)."""
    config = Config()
    config.set_main_option("script_location", str(files("tkhub.jobs") / "migrations"))
    config.attributes["engine"] = engine
    command.upgrade(config, revision)
