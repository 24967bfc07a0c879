"""The jobs page: the user's jobs, and the spawn page's choices to run a notebook."""

from __future__ import annotations

from functools import cache
from urllib.parse import quote

import jinja2

from tkhub.jobs.schemas import JobPublic
from tkhub.selection import SpawnChoices
from tkhub.spawnpage.render import TEMPLATES_DIR, render_options_form

BADGES = {
    "queued": "text-bg-secondary", "running": "text-bg-primary",
    "succeeded": "text-bg-success", "failed": "text-bg-danger", "cancelled": "text-bg-warning",
}  # fmt: skip


@cache
def _template() -> jinja2.Template:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)), autoescape=True)
    return env.get_template("jobs_page.html")


def lab_url(job: JobPublic) -> str:
    """The output notebook in the user's JupyterLab (its root holds ``notebooks/``)."""
    return f"/user/{quote(job.user, safe='')}/lab/tree/notebooks/{quote(job.output)}"


def render_jobs_page(
    *,
    user: str,
    jobs: list[JobPublic],
    choices: SpawnChoices | None,
    prefix: str,
    xsrf: str,
    message: str = "",
    ok: bool = True,
    everyone: bool = False,
    unavailable: str = "",
) -> str:
    form = render_options_form(choices, {}, user_name=user) if choices else unavailable
    return _template().render(
        user=user, jobs=jobs, choices_form=form, prefix=prefix, hub_prefix="/hub/",
        xsrf=xsrf, message=message, ok=ok, everyone=everyone, badge=BADGES, lab_url=lab_url,
    )  # fmt: skip
