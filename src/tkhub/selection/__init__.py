"""One selection model: catalog + inventory + user -> choices; request -> ``Selection``.

The options form, the launch-link query string and a REST ``user_options`` body are
parsed by one function (``parse_selection``) into one validated ``Selection``
(environment, placement, size) that each spawner applies in its own way.

    choices.py   what the user may pick now (visibility by group decided once, here)
    parse.py     request parameters -> ``Selection``; a re-check at start
    sizes.py     CPU/memory presets and what they scale to
    model.py     ``Selection``, ``PlacementChoice``, ``SelectionError``
"""

from tkhub.selection.choices import SpawnChoices, placement_choices, spawn_choices
from tkhub.selection.model import (
    PlacementChoice,
    Selection,
    SelectionError,
    describe_options,
    options_for,
)
from tkhub.selection.parse import PARAMS, normalize_params, parse_selection, recheck_placement

__all__ = [
    "PARAMS",
    "PlacementChoice",
    "Selection",
    "SelectionError",
    "SpawnChoices",
    "describe_options",
    "normalize_params",
    "options_for",
    "parse_selection",
    "placement_choices",
    "recheck_placement",
    "spawn_choices",
]
