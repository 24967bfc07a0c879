"""Repository functions of the catalog (keyword-only; the caller owns the session).

Every write function leaves the commit to the caller, so one request (or one
registry sync) is one transaction: a refused write changes nothing.

Cache invalidation: readers of ``GET /api/v1/images/jupyter`` are served from an
in-memory snapshot (``tkhub.catalog.cache.CatalogCache``, at ``app.state.cache``).
Whoever commits a write must then call ``app.state.cache.invalidate()``; the API
routers do, and the registry sync must do it after each sync run (also when it
runs ``upsert_registry_image`` / ``remove_registry_images`` outside a request).
A sync in another process needs no call: the service's background refresh
(``CatalogCache.refresh_if_changed``) notices the change within 10 s.

Registry sync contract: ``upsert_registry_image`` updates only label-derived
fields; admin fields (hidden, default, display-name override, allowed_groups)
are kept. ``remove_registry_images`` removes only ``source == "registry"`` rows of
that registry, never entries created through the API.
"""

from __future__ import annotations

from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from tkhub.catalog.models import Image, utcnow
from tkhub.catalog.schemas import (
    EnvironmentFacts,
    GpuNeed,
    ImageCreate,
    ImagePublic,
    ImageUpdate,
    Kind,
    Resources,
    Source,
)


class StoreError(Exception):
    """A refused write; ``status`` is the HTTP status the API answers with."""

    status = 400


class ImageNotFound(StoreError):
    status = 404

    def __init__(self, name: str) -> None:
        super().__init__(f"no image named {name!r}")


class ImageConflict(StoreError):
    status = 409


# Fields a sync derives from labels; everything else belongs to the admin.
SYNC_FIELDS = (
    "display_name",
    "description",
    "kind",
    "image",
    "python",
    "gpu",
    "resources",
    "packages",
    "examples",
    "facts",
)


def to_public(row: Image) -> ImagePublic:
    return ImagePublic(
        name=row.name,
        display_name=row.public_display_name,
        description=row.description,
        kind=Kind(row.kind),
        image=row.image,
        python=row.python,
        gpu=GpuNeed(row.gpu),
        default=row.is_default,
        hidden=row.hidden,
        allowed_groups=list(row.allowed_groups),
        resources=Resources.model_validate(row.resources),
        packages=list(row.packages),
        examples=row.examples,
        facts=EnvironmentFacts.model_validate(row.facts or {}),
        source=Source(row.source),
        digest=row.digest,
        updated_at=row.updated_at,
    )


def list_images(session: Session) -> list[ImagePublic]:
    rows = session.scalars(select(Image).order_by(Image.is_default.desc(), Image.name))
    return [to_public(row) for row in rows]


def get_row(session: Session, *, name: str) -> Image:
    row = session.get(Image, name)
    if row is None:
        raise ImageNotFound(name)
    return row


def current_default(session: Session) -> Image | None:
    return session.scalars(select(Image).where(Image.is_default)).first()


def _refuse_second_default(session: Session, *, name: str) -> None:
    other = current_default(session)
    if other is not None and other.name != name:
        raise ImageConflict(
            f"default: {other.name!r} is already the default; move it with "
            f"POST /api/v1/images/{name}/default"
        )


def _entry_columns(entry: ImageCreate) -> dict[str, Any]:
    data = entry.model_dump(mode="json")
    return {field: data[field] for field in SYNC_FIELDS}


def create_image(session: Session, *, entry: ImageCreate, source: Source = Source.api) -> Image:
    if session.get(Image, entry.name) is not None:
        raise ImageConflict(f"name: an image named {entry.name!r} already exists")
    if entry.default:
        _refuse_second_default(session, name=entry.name)
    row = Image(
        name=entry.name,
        **_entry_columns(entry),
        is_default=entry.default,
        hidden=entry.hidden,
        allowed_groups=list(entry.allowed_groups),
        source=source.value,
        updated_at=utcnow(),
    )
    session.add(row)
    session.flush()
    return row


def replace_image(session: Session, *, name: str, entry: ImageCreate) -> Image:
    """PUT: every field from ``entry``; the name in the path wins over the body's."""
    row = get_row(session, name=name)
    if entry.name != name:
        raise StoreError(f"name: the body names {entry.name!r} but the path names {name!r}")
    if entry.default:
        _refuse_second_default(session, name=name)
    for field, value in _entry_columns(entry).items():
        setattr(row, field, value)
    row.display_name_override = None
    row.is_default = entry.default
    row.hidden = entry.hidden
    row.allowed_groups = list(entry.allowed_groups)
    row.updated_at = utcnow()
    session.flush()
    return row


def update_image(session: Session, *, name: str, update: ImageUpdate) -> Image:
    """PATCH: only the given fields; ``display_name`` sets the admin override."""
    row = get_row(session, name=name)
    given = update.model_dump(mode="json", exclude_unset=True)
    if given.get("default"):
        _refuse_second_default(session, name=name)
    merged = ImageCreate.model_validate(
        {**to_public(row).model_dump(mode="json", include=set(ImageCreate.model_fields)), **given}
    ).model_dump(mode="json")  # re-validates kind/reference after a partial change
    for field in SYNC_FIELDS:
        if field in given and field != "display_name":
            setattr(row, field, merged[field])
    if "display_name" in given:
        row.display_name_override = given["display_name"] or None
    if "default" in given:
        row.is_default = bool(given["default"])
    if "hidden" in given:
        row.hidden = bool(given["hidden"])
    if "allowed_groups" in given:
        row.allowed_groups = list(given["allowed_groups"] or [])
    row.updated_at = utcnow()
    session.flush()
    return row


def set_default(session: Session, *, name: str) -> Image:
    """Move the default to ``name`` in one transaction (the explicit move)."""
    row = get_row(session, name=name)
    other = current_default(session)
    if other is not None and other.name != name:
        other.is_default = False
        session.flush()  # the unique partial index must see the old one cleared first
    row.is_default = True
    row.updated_at = utcnow()
    session.flush()
    return row


def delete_image(session: Session, *, name: str) -> None:
    session.delete(get_row(session, name=name))
    session.flush()


def upsert_registry_image(
    session: Session,
    *,
    registry: str,
    repository: str,
    tag: str,
    entry: ImageCreate,
    digest: str | None,
) -> Literal["added", "updated", "unchanged"]:
    """Add or refresh one image found in ``registry``; admin fields are kept."""
    row = session.get(Image, entry.name)
    if row is None:
        row = create_image(
            session, entry=entry.model_copy(update={"default": False}), source=Source.registry
        )
        row.registry_name, row.repository, row.tag, row.digest = registry, repository, tag, digest
        if entry.default and current_default(session) is None:
            row.is_default = True
        session.flush()
        return "added"
    if row.source != Source.registry.value or row.registry_name not in (None, registry):
        raise ImageConflict(
            f"name: {entry.name!r} exists and was not added by registry {registry!r}"
        )
    columns = _entry_columns(entry)
    location = {"registry_name": registry, "repository": repository, "tag": tag, "digest": digest}
    changes = {k: v for k, v in {**columns, **location}.items() if getattr(row, k) != v}
    if not changes:
        return "unchanged"
    for field, value in changes.items():
        setattr(row, field, value)
    row.updated_at = utcnow()
    session.flush()
    return "updated"


def remove_registry_images(
    session: Session, *, registry: str, keep: set[tuple[str, str]]
) -> list[str]:
    """Remove this registry's entries whose (repository, tag) is not in ``keep``."""
    rows = session.scalars(
        select(Image).where(Image.source == Source.registry.value, Image.registry_name == registry)
    )
    removed = []
    for row in rows:
        if (row.repository, row.tag) not in keep:
            removed.append(row.name)
            session.delete(row)
    session.flush()
    return sorted(removed)


def registry_digests(session: Session, *, registry: str) -> dict[tuple[str, str], str | None]:
    rows = session.execute(
        select(Image.repository, Image.tag, Image.digest).where(
            Image.source == Source.registry.value, Image.registry_name == registry
        )
    )
    return {(repo, tag): digest for repo, tag, digest in rows if repo and tag}


def seed_if_empty(session: Session, *, entry: ImageCreate, source: Source) -> bool:
    """Add ``entry`` only to an empty catalog (a fresh machine); True if added."""
    if session.scalars(select(Image.name).limit(1)).first() is not None:
        return False
    create_image(session, entry=entry, source=source)
    return True
