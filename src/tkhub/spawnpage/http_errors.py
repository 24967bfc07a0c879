"""The spawn page's HTTP errors, with the message JupyterHub shows above the form."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from tornado.web import HTTPError

from tkhub.selection import Selection, SelectionError, SpawnChoices, parse_selection


class SpawnPageUnavailable(HTTPError):
    """HTTP 503: the catalog or the inventory could not be read; the message says why."""

    def __init__(self, message: str) -> None:
        super().__init__(503, "%s", message, reason="Service Unavailable")
        self.jupyterhub_message = message


class BadSelection(HTTPError):
    """HTTP 400 (403 for an environment kept from the user's groups); nothing spawns.

    JupyterHub shows ``jupyterhub_message`` above the re-rendered form, and answers a
    REST request with the same reason.
    """

    def __init__(
        self, field_name: str, reason: str, *, link: bool = False, status: int = 400
    ) -> None:
        super().__init__(status, "%s: %s", field_name, reason, reason="Bad selection")
        self.field = field_name
        self.reason_text = reason
        what = "This launch link cannot start a server" if link else "Cannot start"
        self.jupyterhub_message = (
            f"{what}: {field_name}: {reason}. Choose below and press Start"
            + (", or ask whoever sent the link for a new one." if link else ".")
        )


def refusal(error: SelectionError, *, link: bool = False) -> BadSelection:
    """The HTTP error for a refused selection: 403 for an environment kept from the
    user's groups, 400 for everything else."""
    status = 403 if error.forbidden else 400
    return BadSelection(error.field, error.reason, link=link, status=status)


def checked_selection(
    params: Mapping[str, Sequence[str]], choices: SpawnChoices, *, link: bool = False
) -> Selection:
    """``parse_selection``, refusing with the HTTP error JupyterHub shows the user."""
    try:
        return parse_selection(params, choices)
    except SelectionError as e:
        raise refusal(e, link=link) from e
