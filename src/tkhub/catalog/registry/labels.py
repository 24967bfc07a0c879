"""Image labels (docs/registry.md, "Labels") -> a catalog entry, or a reason.

An image is a Jupyter environment when ``io.thinkube.jupyter.compatible`` is
``true``. A label with a bad value raises ``LabelError`` naming the label and the
reason: the sync skips that image and reports it; it never stops the sync.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from pydantic import ValidationError

from tkhub.catalog.schemas import GpuNeed, ImageCreate, Kind
from tkhub.quantity import QuantityError, validate_quantity

PREFIX = "io.thinkube.jupyter."
COMPATIBLE = PREFIX + "compatible"
OCI = "org.opencontainers.image."
_FIELD_LABELS = {"resources.cpu_limit": "cpu-limit", "resources.mem_limit": "mem-limit"}
_TRUE, _FALSE = {"true", "yes", "1"}, {"false", "no", "0", ""}


class LabelError(ValueError):
    """One label whose value cannot be used; ``str()`` says which and why."""

    def __init__(self, label: str, reason: str) -> None:
        super().__init__(f"label {label}: {reason}")
        self.label = label
        self.reason = reason


class NotJupyter(LabelError):
    """The image does not say it is a Jupyter environment (not an error)."""


def _boolean(labels: Mapping[str, str], name: str) -> bool:
    value = labels.get(PREFIX + name, "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise LabelError(PREFIX + name, f"{value!r} is not true or false")


def _gpu(labels: Mapping[str, str]) -> GpuNeed:
    value = labels.get(PREFIX + "gpu", "optional").strip().lower()
    try:
        return GpuNeed(value)
    except ValueError:
        raise LabelError(
            PREFIX + "gpu", f"{value!r} is not one of required, optional, none"
        ) from None


def _quantity(labels: Mapping[str, str], name: str) -> str | None:
    value = labels.get(PREFIX + name)
    if value is None or not value.strip():
        return None
    try:
        return validate_quantity(value.strip())
    except QuantityError as e:
        raise LabelError(PREFIX + name, str(e)) from e


def _text(labels: Mapping[str, str], name: str, fallback: str) -> str:
    return (labels.get(PREFIX + name) or labels.get(OCI + fallback) or "").strip()


_FACT_FORMS = {
    "hub-major": (re.compile(r"^\d{1,2}$"), "a JupyterHub major version such as 5"),
    "cuda": (re.compile(r"^\d+\.\d+$"), "a CUDA version such as 12.8"),
    "cuda-archs": (re.compile(r"^sm_\d+[a-z]?(,sm_\d+[a-z]?)*$"), "a list such as sm_80,sm_90"),
}


def _facts(labels: Mapping[str, str]) -> dict[str, object]:
    """The build check's facts; a malformed one is a LabelError like any label."""
    found: dict[str, str] = {}
    for name, (form, example) in _FACT_FORMS.items():
        value = labels.get(PREFIX + name, "").strip()
        if value and not form.match(value):
            raise LabelError(PREFIX + name, f"{value!r} is not {example}")
        if value:
            found[name] = value
    return {
        "hub_major": int(found["hub-major"]) if "hub-major" in found else None,
        "cuda": found.get("cuda"),
        "cuda_archs": found["cuda-archs"].split(",") if "cuda-archs" in found else [],
    }


def require_jupyter(labels: Mapping[str, str]) -> None:
    if labels.get(COMPATIBLE, "").strip().lower() != "true":
        raise NotJupyter(COMPATIBLE, "missing or not 'true': not a Jupyter image")


def entry_from_labels(name: str, reference: str, labels: Mapping[str, str]) -> ImageCreate:
    """The catalog entry an image's labels describe; raises ``LabelError``."""
    require_jupyter(labels)
    packages = labels.get(PREFIX + "packages", "")
    fields = {
        "name": name,
        "kind": Kind.oci,
        "image": reference,
        "display_name": _text(labels, "display-name", "title"),
        "description": _text(labels, "description", "description"),
        "gpu": _gpu(labels),
        "default": _boolean(labels, "default"),
        "examples": labels.get(PREFIX + "examples", "").strip() or None,
        "packages": [p.strip() for p in packages.split(",") if p.strip()],
        "resources": {
            "cpu_limit": _quantity(labels, "cpu-limit"),
            "mem_limit": _quantity(labels, "mem-limit"),
        },
        "facts": _facts(labels),
    }
    try:
        return ImageCreate.model_validate(fields)
    except ValidationError as e:
        first = e.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"])
        label = PREFIX + _FIELD_LABELS.get(where, where.replace("_", "-"))
        raise LabelError(label, first["msg"]) from e
