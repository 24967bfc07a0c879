"""Kubernetes resource quantities ("500m", "2", "8Gi", "1.5G"), parsed and validated.

Used wherever a catalog entry or an image label carries a resource: the catalog
refuses a bad quantity with the field and the reason, the spawners turn a good one
into numbers (cores, bytes).
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "": Decimal(1),
    "k": Decimal(10**3),
    "M": Decimal(10**6),
    "G": Decimal(10**9),
    "T": Decimal(10**12),
    "P": Decimal(10**15),
    "E": Decimal(10**18),
}
_QUANTITY_RE = re.compile(
    r"^(?P<number>\+?(?:\d+(?:\.\d*)?|\.\d+))"
    r"(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?\d+)?$"
)


class QuantityError(ValueError):
    """A string that is not a Kubernetes quantity; the message says why."""


def parse_quantity(value: str | int | float) -> Decimal:
    """Return the quantity as a number in base units (cores, bytes).

    >>> parse_quantity("500m")
    Decimal('0.500')
    >>> parse_quantity("8Gi")
    Decimal('8589934592')
    """
    if isinstance(value, bool):
        raise QuantityError(f"{value!r} is not a quantity")
    if isinstance(value, int | float):
        if value < 0:
            raise QuantityError(f"{value!r} is negative")
        return Decimal(str(value))
    text = str(value).strip()
    match = _QUANTITY_RE.match(text)
    if not match:
        raise QuantityError(
            f"{value!r} is not a Kubernetes quantity (examples: 500m, 2, 512Mi, 8Gi, 1.5G)"
        )
    try:
        number = Decimal(match["number"])
    except InvalidOperation as e:  # pragma: no cover - the regex admits only decimals
        raise QuantityError(f"{value!r} has an unreadable number") from e
    suffix = match["suffix"] or ""
    if suffix in _BINARY:
        return number * _BINARY[suffix]
    if suffix in _DECIMAL:
        return number * _DECIMAL[suffix]
    return number * (Decimal(10) ** int(suffix[1:]))


def validate_quantity(value: str) -> str:
    """Return the quantity text unchanged if it parses, else raise QuantityError."""
    parse_quantity(value)
    return value.strip()


def cpu_cores(value: str) -> float:
    """CPU quantity in cores ("500m" -> 0.5)."""
    return float(parse_quantity(value))


def memory_bytes(value: str) -> int:
    """Memory quantity in bytes ("8Gi" -> 8589934592)."""
    return int(parse_quantity(value))
