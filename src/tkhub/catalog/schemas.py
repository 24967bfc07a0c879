"""The catalog entry contract (docs/registry.md, "What an entry looks like"), shared by every part.

The catalog service validates writes with these models, the registry sync builds
``ImageCreate`` from OCI labels, and the spawners and the spawn page read
``ImagePublic`` from ``GET /api/v1/images/jupyter``. One definition, so a field
means the same thing everywhere.
"""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from tkhub.quantity import QuantityError, validate_quantity

SLUG_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,62}$"
_SLUG_RE = re.compile(SLUG_PATTERN)


class Kind(StrEnum):
    oci = "oci"
    local = "local"


class GpuNeed(StrEnum):
    required = "required"
    optional = "optional"
    none = "none"


class Source(StrEnum):
    registry = "registry"
    api = "api"
    file = "file"
    local = "local"


def _quantity(value: str) -> str:
    try:
        return validate_quantity(value)
    except QuantityError as e:
        raise ValueError(str(e)) from e


Quantity = Annotated[str, AfterValidator(_quantity)]
Slug = Annotated[str, Field(pattern=SLUG_PATTERN, examples=["pytorch-cuda"])]


def is_slug(value: str) -> bool:
    return bool(_SLUG_RE.match(value))


class Resources(BaseModel):
    """CPU and memory in Kubernetes quantity syntax; None means "no limit set"."""

    model_config = ConfigDict(extra="forbid")

    cpu_limit: Quantity | None = None
    cpu_guarantee: Quantity | None = None
    mem_limit: Quantity | None = None
    mem_guarantee: Quantity | None = None


class EnvironmentFacts(BaseModel):
    """What the build check found in the environment (labels ``.hub-major``, ``.cuda``,
    ``.cuda-archs``; ``tkhub env create``). Empty when nobody checked."""

    model_config = ConfigDict(extra="forbid")

    python: str | None = Field(default=None, pattern=r"^\d+\.\d+(\.\d+)?$")
    hub_major: int | None = Field(default=None, ge=1, le=99)
    cuda: str | None = Field(default=None, pattern=r"^\d+\.\d+$")
    cuda_archs: list[Annotated[str, Field(pattern=r"^sm_\d+[a-z]?$")]] = Field(default_factory=list)


class ImageFields(BaseModel):
    """Fields an admin may set on create; all optional on update."""

    model_config = ConfigDict(extra="forbid")

    display_name: str = Field(default="", max_length=200)
    description: str = Field(default="", max_length=2000)
    kind: Kind = Kind.oci
    image: str | None = Field(default=None, max_length=512, description="OCI reference (kind: oci)")
    python: str | None = Field(
        default=None, max_length=4096, description="interpreter path (kind: local)"
    )
    gpu: GpuNeed = GpuNeed.optional
    default: bool = False
    hidden: bool = False
    allowed_groups: list[str] = Field(default_factory=list, description="empty: everyone")
    resources: Resources = Field(default_factory=Resources)
    packages: list[str] = Field(default_factory=list)
    examples: str | None = Field(default=None, max_length=200)
    facts: EnvironmentFacts = Field(default_factory=EnvironmentFacts)


class ImageCreate(ImageFields):
    """``POST /api/v1/images``: a new entry."""

    name: Slug

    @model_validator(mode="after")
    def _reference_matches_kind(self) -> Self:
        if self.kind is Kind.oci and not self.image:
            raise ValueError("kind 'oci' needs 'image' (an OCI reference)")
        if self.kind is Kind.local and not self.python:
            raise ValueError("kind 'local' needs 'python' (the interpreter's path)")
        return self


class ImageUpdate(BaseModel):
    """``PATCH /api/v1/images/{name}``: only the fields given change."""

    model_config = ConfigDict(extra="forbid")

    display_name: str | None = Field(default=None, max_length=200)
    description: str | None = Field(default=None, max_length=2000)
    image: str | None = Field(default=None, max_length=512)
    python: str | None = Field(default=None, max_length=4096)
    gpu: GpuNeed | None = None
    default: bool | None = None
    hidden: bool | None = None
    allowed_groups: list[str] | None = None
    resources: Resources | None = None
    packages: list[str] | None = None
    examples: str | None = Field(default=None, max_length=200)
    facts: EnvironmentFacts | None = None


class ImagePublic(ImageCreate):
    """What readers get: the entry plus where it came from."""

    model_config = ConfigDict(extra="ignore", from_attributes=True)

    source: Source = Source.api
    digest: str | None = None
    updated_at: datetime | None = None

    @property
    def title(self) -> str:
        return self.display_name or self.name

    def visible_to(self, groups: set[str] | frozenset[str], *, admin: bool = False) -> bool:
        """Hidden entries and entries for other groups are not offered to this user."""
        if self.hidden:
            return False
        if admin or not self.allowed_groups:
            return True
        return bool(set(self.allowed_groups) & set(groups))
