"""Errors that carry a message for the user apart from the one for the log.

JupyterHub shows ``jupyterhub_message`` of a failed spawn to the user on the
spawn-pending page; the exception's ``str()`` goes to the log with the details.
"""

from __future__ import annotations


class TkhubError(Exception):
    """Base class: ``user_message`` is safe to show; ``str(self)`` is for the log."""

    def __init__(self, user_message: str, *, log_message: str | None = None) -> None:
        super().__init__(log_message or user_message)
        self.user_message = user_message

    @property
    def jupyterhub_message(self) -> str:
        return self.user_message


class SpawnRefused(TkhubError):
    """A spawn that cannot start: bad selection, missing dependency, no GPU free."""


class CatalogUnavailable(TkhubError):
    """The image catalog did not answer in time, or answered with an error."""
