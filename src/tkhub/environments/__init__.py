"""Environment definitions, one source for two targets: an OCI image for the cluster
(``tkhub images build``) and a Python environment on one machine (``tkhub env create``).
See docs/environments.md."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from tkhub.catalog.schemas import EnvironmentFacts, ImageCreate, Kind
from tkhub.environments.definition import (
    Definition,
    DefinitionError,
    load_definition,
    load_definitions,
)

__all__ = [
    "Definition", "DefinitionError", "curated_names", "definitions_dir", "local_entry", "resolve",
]  # fmt: skip


def definitions_dir() -> Path:
    """The curated definitions: in the installed package, or in this checkout."""
    packaged = Path(__file__).with_name("definitions")
    return packaged if packaged.is_dir() else Path(__file__).resolve().parents[3] / "environments"


@cache
def curated_names() -> frozenset[str]:
    """Names of the curated definitions (empty when they are not installed)."""
    try:
        return frozenset(load_definitions(definitions_dir()))
    except DefinitionError:
        return frozenset()


def resolve(
    name_or_path: str, root: Path | None = None
) -> tuple[Definition, dict[str, Definition]]:
    """A definition by curated name or by directory path, with the set it belongs to
    (its parents are looked up beside it)."""
    path = Path(name_or_path)
    if "/" in name_or_path or path.is_dir():
        definition = load_definition(path)
        return definition, load_definitions(definition.path.parent)
    known = load_definitions(root or definitions_dir())
    if name_or_path not in known:
        raise DefinitionError(
            f"no environment definition named {name_or_path!r}; "
            f"known: {', '.join(sorted(known))} (or give a definition's directory)"
        )
    return known[name_or_path], known


def local_entry(
    definition: Definition, python: Path, facts: EnvironmentFacts | None = None
) -> ImageCreate:
    """The catalog entry of a definition created on this machine."""
    return ImageCreate(
        name=definition.name,
        kind=Kind.local,
        python=str(python),
        display_name=definition.display_name,
        description=definition.description,
        gpu=definition.gpu,
        packages=list(definition.requirements),
        examples=definition.examples,
        facts=facts or EnvironmentFacts(),
    )
