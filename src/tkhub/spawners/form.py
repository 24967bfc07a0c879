"""The spawn page: the options form JupyterHub embeds, and the launch-link checks.

``render_options_form`` turns catalog entries and their placement choices into the
HTML fragment JupyterHub puts inside its ``<form>`` on ``/hub/spawn``: environments
as cards, placements with free/total, a GPU count and CPU/memory sizes. Placements
are listed once (availability comes from one inventory) and tagged with the
environments that offer them, so 200 environments and 50 nodes stay one short list.
Plain radio inputs work without JavaScript; a little script hides what the picked
environment cannot use.

``check_params`` validates submitted form fields or launch-link query arguments
exactly like ``tkhub.selection.parse_selection`` (plus the size), and raises
``BadSelection``: a ``tornado.web.HTTPError(400)`` that JupyterHub's spawn handler
turns into a 400 page showing the reason above the form. Nothing is spawned.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import jinja2
from tornado.web import HTTPError

from tkhub.catalog.schemas import ImagePublic, Resources
from tkhub.errors import TkhubError
from tkhub.gpu.model import Inventory
from tkhub.quantity import QuantityError, cpu_cores, memory_bytes
from tkhub.selection import PlacementChoice, Selection, SelectionError, parse_selection

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"
FORM_TEMPLATE = "spawn_form.html"
PARAMS = ("image", "gpu", "count", "size")

# CPU/memory presets: a share of the environment's limits (the largest a server gets).
SIZES: dict[str, tuple[str, float]] = {
    "full": ("Full", 1.0),
    "half": ("Half", 0.5),
    "quarter": ("Quarter", 0.25),
}
_KIND_ORDER = {"cpu": 0, "auto": 1, "model": 2, "node": 3, "device": 4}
_KIND_HEADINGS = {  # CPU only and any GPU share one unheaded list
    "cpu": "",
    "auto": "",
    "model": "By GPU model",
    "node": "On a node",
    "device": "A specific GPU",
}


class SpawnPageUnavailable(HTTPError):
    """HTTP 503: the catalog or the inventory could not be read; the message says why."""

    def __init__(self, message: str) -> None:
        super().__init__(503, "%s", message, reason="Service Unavailable")
        self.jupyterhub_message = message


class BadSelection(HTTPError):
    """HTTP 400 for a form or launch link that cannot be honoured; nothing spawns.

    JupyterHub shows ``jupyterhub_message`` above the re-rendered form.
    """

    def __init__(self, field_name: str, reason: str, *, link: bool = False) -> None:
        super().__init__(400, "%s: %s", field_name, reason, reason="Bad selection")
        self.field = field_name
        self.reason_text = reason
        what = "This launch link cannot start a server" if link else "Cannot start"
        self.jupyterhub_message = (
            f"{what}: {field_name}: {reason}. Choose below and press Start"
            + (", or ask whoever sent the link for a new one." if link else ".")
        )


# --- CPU/memory sizes --------------------------------------------------------------------


def _format_cpu(cores: float) -> str:
    return f"{cores:g} CPU" if cores >= 1 else f"{cores * 1000:g}m CPU"


def _format_mem(n: int) -> str:
    gib = n / 2**30
    return f"{gib:.3g} GiB" if gib >= 1 else f"{n / 2**20:.0f} MiB"


def scaled_resources(resources: Resources, size: str) -> Resources:
    """The entry's resources at a size preset: limits scaled, guarantees kept below them."""
    share = SIZES.get(size or "full", SIZES["full"])[1]
    if share == 1.0:
        return resources
    out: dict[str, str | None] = resources.model_dump()
    if resources.cpu_limit:
        out["cpu_limit"] = f"{cpu_cores(resources.cpu_limit) * share:g}"
    if resources.mem_limit:
        out["mem_limit"] = str(int(memory_bytes(resources.mem_limit) * share))
    for limit, guarantee, conv in (
        ("cpu_limit", "cpu_guarantee", cpu_cores),
        ("mem_limit", "mem_guarantee", memory_bytes),
    ):
        if out[limit] and out[guarantee] and conv(out[guarantee]) > conv(out[limit]):  # type: ignore[arg-type]
            out[guarantee] = out[limit]
    return Resources.model_validate(out)


def size_labels(resources: Resources) -> dict[str, str]:
    """``{"full": "4 CPU · 16 GiB", ...}``; empty when the entry sets no limits."""
    return dict(_size_labels(resources.cpu_limit, resources.mem_limit))


@cache
def _size_labels(cpu_limit: str | None, mem_limit: str | None) -> tuple[tuple[str, str], ...]:
    try:
        cpu = cpu_cores(cpu_limit) if cpu_limit else None
        mem = memory_bytes(mem_limit) if mem_limit else None
    except QuantityError:
        return ()
    if cpu is None and mem is None:
        return ()
    labels = []
    for key, (_, share) in SIZES.items():
        parts = []
        if cpu is not None:
            parts.append(_format_cpu(cpu * share))
        if mem is not None:
            parts.append(_format_mem(int(mem * share)))
        labels.append((key, " · ".join(parts)))
    return tuple(labels)


# --- the view model ------------------------------------------------------------------


@dataclass
class Card:
    entry: ImagePublic
    need: str
    offers: str  # id of the set of placement keys this environment offers
    sizes: dict[str, str]
    checked: bool = False

    @property
    def dom_id(self) -> str:
        return f"tk-image-{self.entry.name}"


@dataclass
class Row:
    choice: PlacementChoice
    index: int
    checked: bool = False

    @property
    def dom_id(self) -> str:
        return f"tk-gpu-{self.index}"

    @property
    def key(self) -> str:
        return self.choice.placement.key


@dataclass
class FormView:
    cards: list[Card]
    groups: list[tuple[str, list[Row]]]
    offers: dict[str, list[str]]
    count: int = 1
    max_count: int = 1
    size: str = "full"
    notice: str = ""
    error: str = ""
    user_name: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def first_value(params: Mapping[str, Any] | None, name: str) -> str:
    """One value of a raw param: user options hold lists of strings, sometimes a string."""
    value = (params or {}).get(name)
    if isinstance(value, list | tuple):
        value = value[0] if value else ""
    return "" if value is None else str(value).strip()


def user_access(user: Any) -> tuple[set[str], bool]:
    groups = {getattr(g, "name", g) for g in (getattr(user, "groups", None) or [])}
    return {str(g) for g in groups}, bool(getattr(user, "admin", False))


def _distinct(
    choices_by_image: Mapping[str, Sequence[PlacementChoice]],
) -> dict[int, Sequence[PlacementChoice]]:
    """The distinct choice lists (entries with the same GPU need share one object)."""
    return {id(choices): choices for choices in choices_by_image.values()}


def _union_rows(choices_by_image: Mapping[str, Sequence[PlacementChoice]]) -> list[Row]:
    seen: dict[str, PlacementChoice] = {}
    for choices in _distinct(choices_by_image).values():
        for choice in choices:
            seen.setdefault(choice.placement.key, choice)
    ordered = sorted(
        enumerate(seen.values()), key=lambda ic: (_KIND_ORDER[ic[1].placement.kind], ic[0])
    )
    return [Row(choice, i) for i, (_, choice) in enumerate(ordered)]


def _offers(
    entries: Sequence[ImagePublic], choices_by_image: Mapping[str, Sequence[PlacementChoice]]
) -> tuple[dict[str, str], dict[str, list[str]]]:
    """Each entry's set of placement keys, deduplicated: few sets for many entries."""
    keys_of = {
        ident: tuple(c.placement.key for c in choices)
        for ident, choices in _distinct(choices_by_image).items()
    }
    ids: dict[tuple[str, ...], str] = {}
    by_entry: dict[str, str] = {}
    for entry in entries:
        keys = keys_of.get(id(choices_by_image.get(entry.name, ())), ())
        by_entry[entry.name] = ids.setdefault(keys, f"p{len(ids)}")
    return by_entry, {sid: list(keys) for keys, sid in ids.items()}


def _pick_image(entries: Sequence[ImagePublic], wanted: str) -> ImagePublic | None:
    if not entries:
        return None
    named = next((e for e in entries if e.name == wanted), None)
    return named or next((e for e in entries if e.default), None) or entries[0]


def _pick_row(rows: list[Row], offered: set[str], need: str, wanted: str) -> tuple[Row | None, str]:
    """The row to preselect, and a note when the remembered one cannot be used now."""
    usable = {r.key: r for r in rows if r.key in offered and r.choice.enabled}
    last = next((r for r in rows if wanted and wanted in (r.key, r.choice.placement.value)), None)
    if last is not None and last.key in usable:
        return last, ""
    notice = ""
    if last is not None and last.key in offered:
        notice = (
            f"Your last choice, {last.choice.label}, is not available now: {last.choice.reason}."
        )
    for key in ("auto", "none") if need != "none" else ("none",):
        if key in usable:
            return usable[key], notice
    return next(iter(usable.values()), None), notice


def _count_value(raw: str, most: int) -> int:
    try:
        return max(1, min(int(raw), max(most, 1)))
    except ValueError:
        return 1


def build_view(
    *,
    entries: Sequence[ImagePublic],
    choices_by_image: Mapping[str, Sequence[PlacementChoice]],
    selected: Mapping[str, Any] | None,
    error: str | None,
    user: Any,
) -> FormView:
    """Everything the template shows, decided here so the template only lays it out."""
    groups, admin = user_access(user)
    shown = [e for e in entries if e.visible_to(groups, admin=admin)]
    offers_by_entry, offers = _offers(shown, choices_by_image)
    rows = _union_rows({e.name: choices_by_image.get(e.name, ()) for e in shown})
    pick = _pick_image(shown, first_value(selected, "image"))
    cards = [
        Card(
            entry=e,
            need=str(getattr(e.gpu, "value", e.gpu)),
            offers=offers_by_entry[e.name],
            sizes=size_labels(e.resources),
            checked=e is pick,
        )
        for e in shown
    ]
    notice = ""
    if pick is not None:
        offered = set(offers[offers_by_entry[pick.name]])
        need = str(getattr(pick.gpu, "value", pick.gpu))
        row, notice = _pick_row(rows, offered, need, first_value(selected, "gpu"))
        if row is not None:
            row.checked = True
        elif not error:
            auto = next((r.choice for r in rows if r.key == "auto"), None)
            why = f": {auto.reason}" if auto is not None and auto.reason else ""
            error = (
                f"No GPU is free for {pick.title} right now{why}. Try again later, "
                "or pick an environment that runs on CPU."
            )
    elif not error:
        error = (
            "No environment is available to you yet; ask your administrator to publish "
            "one or to add you to the group that may use it."
        )
    grouped: dict[str, list[Row]] = {}
    for row in rows:
        grouped.setdefault(_KIND_HEADINGS[row.choice.placement.kind], []).append(row)
    most = max((r.choice.max_count for r in rows), default=1)
    size = first_value(selected, "size")
    return FormView(
        cards=cards,
        groups=list(grouped.items()),
        offers=offers,
        count=_count_value(first_value(selected, "count") or "1", most),
        max_count=max(most, 1),
        size=size if size in SIZES else "full",
        notice=notice,
        error=error or "",
        user_name=str(getattr(user, "name", "") or ""),
    )


# --- rendering ---------------------------------------------------------------------


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


def render_options_form(
    *,
    entries: Sequence[ImagePublic],
    choices_by_image: Mapping[str, Sequence[PlacementChoice]],
    selected: Mapping[str, Any] | None,
    error: str | None,
    user: Any,
) -> str:
    """The options form fragment: environment cards, placements, count and size."""
    view = build_view(
        entries=entries,
        choices_by_image=choices_by_image,
        selected=selected,
        error=error,
        user=user,
    )
    template = _environment().get_template(FORM_TEMPLATE)
    return template.render(view=view, sizes=SIZES, offers_json=json.dumps(view.offers))


def render_unavailable(message: str) -> str:
    """The form when no choices can be offered (catalog unreachable): the reason only."""
    template = _environment().get_template(FORM_TEMPLATE)
    view = FormView(cards=[], groups=[], offers={}, error=message)
    return template.render(view=view, sizes=SIZES, offers_json="{}")


def choices_for(
    entries: Iterable[ImagePublic], inventory: Inventory
) -> dict[str, list[PlacementChoice]]:
    """``placement_choices`` per entry; entries with the same GPU need share one list."""
    from tkhub.selection import placement_choices

    by_need: dict[str, list[PlacementChoice]] = {}
    out: dict[str, list[PlacementChoice]] = {}
    for entry in entries:
        need = str(getattr(entry.gpu, "value", entry.gpu))
        if need not in by_need:
            by_need[need] = placement_choices(entry, inventory)
        out[entry.name] = by_need[need]
    return out


# --- validation of submitted params ------------------------------------------------------


def normalize_params(raw: Mapping[str, Any]) -> dict[str, list[str]]:
    """Form data or query arguments as ``{name: [str, ...]}``, keeping only our names.

    JupyterHub's ``opt-`` prefix is already stripped by its handler.
    """
    out: dict[str, list[str]] = {}
    for name in PARAMS:
        value = raw.get(name)
        if value is None:
            continue
        values = [value] if isinstance(value, str | bytes) else list(value)
        out[name] = [v.decode() if isinstance(v, bytes) else str(v) for v in values]
    return out


def check_params(
    params: Mapping[str, Sequence[str]],
    *,
    entries: Sequence[ImagePublic],
    inventory: Inventory,
    user_groups: Iterable[str] = (),
    admin: bool = False,
    link: bool = False,
) -> Selection:
    """Validate like the form does; raises ``BadSelection`` (HTTP 400) with field and reason."""
    try:
        selection = parse_selection(
            params, entries=entries, inventory=inventory, user_groups=set(user_groups), admin=admin
        )
    except SelectionError as e:
        raise BadSelection(e.field, e.reason, link=link) from e
    sizes = [s.strip() for s in params.get("size", []) if s.strip()]
    if len(set(sizes)) > 1:
        raise BadSelection("size", f"give one value, not {len(sizes)}", link=link)
    if sizes and sizes[0] not in SIZES:
        allowed = ", ".join(SIZES)
        raise BadSelection("size", f"{sizes[0]!r} is not one of {allowed}", link=link)
    return selection


# --- glue for the spawners' mixin -------------------------------------------------------
# The mixin (``tkhub.spawners.mixin.TkSpawnerMixin``) provides ``fetch_catalog()``,
# ``fetch_inventory()``, ``user`` and ``orm_spawner``; these keep the page logic here.

_SUBMITTED = "_tk_submitted"  # params of a refused submission, shown again once


def last_selection(spawner: Any) -> dict[str, Any]:
    """The user's last selection: JupyterHub stores ``user_options`` in its database."""
    orm = getattr(spawner, "orm_spawner", None)
    saved = getattr(orm, "user_options", None) or getattr(spawner, "user_options", None)
    return dict(saved or {})


async def options_form_html(spawner: Any) -> str:
    """The spawn form for ``spawner``'s user now: live catalog and inventory."""
    submitted = getattr(spawner, _SUBMITTED, None)
    setattr(spawner, _SUBMITTED, None)
    try:
        entries = await spawner.fetch_catalog()
        inventory = await spawner.fetch_inventory()
    except TkhubError as e:
        spawner.log.warning("spawn form for %s: %s", spawner._log_name, e)
        return render_unavailable(e.user_message)
    return render_options_form(
        entries=entries,
        choices_by_image=choices_for(entries, inventory),
        selected=submitted or last_selection(spawner),
        error=None,
        user=spawner.user,
    )


async def checked_options(spawner: Any, raw: Mapping[str, Any], *, link: bool) -> dict[str, Any]:
    """Validate a form submission or launch link; return the params to keep as user_options.

    Raises ``BadSelection`` (400) or ``SpawnPageUnavailable`` (503) before anything
    spawns; the refused params are preselected when the form is shown again.
    """
    params = normalize_params(raw)
    setattr(spawner, _SUBMITTED, params)
    try:
        entries = await spawner.fetch_catalog()
        inventory = await spawner.fetch_inventory()
    except TkhubError as e:
        raise SpawnPageUnavailable(e.user_message) from e
    groups, admin = user_access(spawner.user)
    check_params(
        params, entries=entries, inventory=inventory, user_groups=groups, admin=admin, link=link
    )
    setattr(spawner, _SUBMITTED, None)
    return params
