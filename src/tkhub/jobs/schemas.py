"""What the jobs API takes and gives."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

# one parser for the CLI, the page and the terminal client staged into servers
from tkhub.jobs.terminal import PARAMETER_NAME, Scalar, parse_parameter

__all__ = ["JobPublic", "JobSubmit", "Scalar", "parse_parameter"]
MAX_TIME_LIMIT = 7 * 24 * 3600


class JobSubmit(BaseModel):
    """A job: a notebook, and the same choices as the spawn page (``image``, ``gpu``,
    ``count``, ``size``: one parser checks both)."""

    model_config = ConfigDict(extra="forbid")

    notebook: str = Field(description="path under your notebooks folder")
    image: str | None = Field(None, description="environment name (default: the default one)")
    gpu: str | None = Field(None, description="none, auto, model:<name>, node:<n>, device:<i>")
    count: int | None = Field(None, ge=1, le=16)
    size: str | None = None
    parameters: dict[str, Scalar] = Field(default_factory=dict)
    time_limit: int = Field(4 * 3600, ge=1, le=MAX_TIME_LIMIT, description="seconds")

    @field_validator("parameters")
    @classmethod
    def _names(cls, value: dict[str, Scalar]) -> dict[str, Scalar]:

        for name in value:
            if not re.match(PARAMETER_NAME, name):
                raise ValueError(f"{name!r} is not a Python name a notebook could assign")
        return value

    def selection_options(self) -> dict[str, Any]:
        """The spawn page's options this job chose (what ``parse_selection`` reads)."""
        given = {"image": self.image, "gpu": self.gpu, "count": self.count, "size": self.size}
        return {k: str(v) for k, v in given.items() if v is not None}


class JobPublic(BaseModel):
    id: int
    user: str
    notebook: str
    output: str
    log: str
    environment: str
    placement: str
    count: int
    size: str
    parameters: dict[str, Any]
    time_limit: int
    state: str
    queue_position: int | None = None  # 1 = next to start when a GPU frees
    reason: str = ""
    failed_cell: int | None = None
    error: str = ""
    gpus: list[str] = Field(default_factory=list)
    node: str = ""  # the cluster node its pod was placed on ("" until then, and locally)
    created: datetime
    started: datetime | None = None
    finished: datetime | None = None
    duration: float | None = None
