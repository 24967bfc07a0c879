"""The spawn form as HTML: the fragment JupyterHub puts inside its ``<form>``.

Plain radio inputs work without JavaScript; a little script hides what the picked
environment cannot use.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

import jinja2

from tkhub.selection import SpawnChoices, describe_options
from tkhub.selection.sizes import SIZES
from tkhub.spawnpage.view import FormView, build_view

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"
FORM_TEMPLATE = "spawn_form.html"


@cache
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.policies["json.dumps_kwargs"] = {"sort_keys": True, "separators": (",", ":")}
    return env


def _render(view: FormView) -> str:
    template = _environment().get_template(FORM_TEMPLATE)
    return template.render(view=view, sizes=SIZES, offers_json=json.dumps(view.offers))


def render_options_form(
    choices: SpawnChoices,
    previous: Mapping[str, Any] | None = None,
    error: str | None = None,
    *,
    user_name: str = "",
    admin_hint: str = "",
    services: list[str] | None = None,
) -> str:
    """The options form fragment: environment cards, placements, count and size."""
    view = build_view(choices, previous, error, user_name=user_name)
    view.admin_hint = admin_hint
    view.services = list(services or [])
    return _render(view)


def render_unavailable(message: str) -> str:
    """The form when no choices can be offered (catalog unreachable): the reason only."""
    return _render(FormView(cards=[], groups=[], offers={}, error=message))


def use_hub_templates(c: Any) -> None:
    """Point a JupyterHub config at tkhub's page templates and the helpers they call."""
    c.JupyterHub.template_paths = [str(TEMPLATES_DIR)]
    # JupyterHub calls a callable value with the user: this one gives the helper.
    c.JupyterHub.template_vars = {"tk_describe_options": _helper(describe_options)}


def _helper(function: Any) -> Any:
    return lambda user: function
