"""What the spawn page shows: a pure function of (choices, previous selection, error).

Environments become cards; placements are listed once (availability comes from one
inventory) and tagged with the environments that offer them, so 200 environments and
50 nodes stay one short list.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tkhub.catalog.schemas import ImagePublic
from tkhub.selection import PlacementChoice, SpawnChoices
from tkhub.selection.sizes import DEFAULT_SIZE, SIZES, size_labels

_KIND_ORDER = {"cpu": 0, "auto": 1, "model": 2, "node": 3, "device": 4}
_KIND_HEADINGS = {  # CPU only and any GPU share one unheaded list
    "cpu": "",
    "auto": "",
    "model": "By GPU model",
    "node": "On a node",
    "device": "A specific GPU",
}


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
    size: str = DEFAULT_SIZE
    notice: str = ""
    error: str = ""
    user_name: str = ""
    admin_hint: str = ""  # shown to admins only: how to add environments
    services: list[str] = field(default_factory=list)  # platform services the server gets


def first_value(params: Mapping[str, Any] | None, name: str) -> str:
    """One value of a raw param: user options hold lists of strings, sometimes a string."""
    value = (params or {}).get(name)
    if isinstance(value, list | tuple):
        value = value[0] if value else ""
    return "" if value is None else str(value).strip()


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


def _preselect(
    pick: ImagePublic | None, rows: list[Row], offered: set[str], wanted_gpu: str, error: str
) -> tuple[str, str]:
    """Check the row to preselect for ``pick``; return (notice, error) to show."""
    if pick is None:
        return "", error or (
            "No environment is available to you yet; ask your administrator to publish "
            "one or to add you to the group that may use it."
        )
    row, notice = _pick_row(rows, offered, pick.gpu, wanted_gpu)
    if row is not None:
        row.checked = True
    elif not error:
        auto = next((r.choice for r in rows if r.key == "auto"), None)
        why = f": {auto.reason}" if auto is not None and auto.reason else ""
        error = (
            f"No GPU is free for {pick.title} right now{why}. Try again later, "
            "or pick an environment that runs on CPU."
        )
    return notice, error


def build_view(
    choices: SpawnChoices,
    previous: Mapping[str, Any] | None,
    error: str | None,
    *,
    user_name: str = "",
) -> FormView:
    """Everything the template shows, decided here so the template only lays it out.

    ``previous`` is the selection to preselect (the last one, or a refused one shown
    again); ``choices`` already holds only what this user may see.
    """
    shown = list(choices.entries)
    offers_by_entry, offers = _offers(shown, choices.by_entry)
    rows = _union_rows({e.name: choices.by_entry.get(e.name, ()) for e in shown})
    pick = _pick_image(shown, first_value(previous, "image"))
    cards = [
        Card(
            entry=e,
            need=e.gpu,
            offers=offers_by_entry[e.name],
            sizes=size_labels(e.resources),
            checked=e is pick,
        )
        for e in shown
    ]
    offered = set(offers[offers_by_entry[pick.name]]) if pick is not None else set()
    notice, error = _preselect(pick, rows, offered, first_value(previous, "gpu"), error or "")
    grouped: dict[str, list[Row]] = {}
    for row in rows:
        grouped.setdefault(_KIND_HEADINGS[row.choice.placement.kind], []).append(row)
    most = max((r.choice.max_count for r in rows), default=1)
    size = first_value(previous, "size")
    return FormView(
        cards=cards,
        groups=list(grouped.items()),
        offers=offers,
        count=_count_value(first_value(previous, "count") or "1", most),
        max_count=max(most, 1),
        size=size if size in SIZES else DEFAULT_SIZE,
        notice=notice,
        error=error,
        user_name=user_name,
    )
