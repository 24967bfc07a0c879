"""The hub of the local mode: ``configure(c, settings)`` fills a JupyterHub config."""

from tkhub.hub.config import configure

__all__ = ["configure"]
