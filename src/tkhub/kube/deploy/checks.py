"""Check results shared by preflight and verify, and their Rich table."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from rich.console import Console
from rich.table import Table

Outcome = Literal["pass", "fail", "warn", "skip"]
STYLE = {"pass": "green", "fail": "bold red", "warn": "yellow", "skip": "dim"}


@dataclass(frozen=True)
class Check:
    """One line of a report: what was checked, the outcome, and what to do."""

    name: str
    outcome: Outcome
    message: str

    @property
    def failed(self) -> bool:
        return self.outcome == "fail"


def passed(name: str, message: str = "") -> Check:
    return Check(name, "pass", message)


def failed(name: str, message: str) -> Check:
    return Check(name, "fail", message)


def any_failed(checks: Sequence[Check]) -> bool:
    return any(c.failed for c in checks)


def print_checks(checks: Sequence[Check], title: str, console: Console | None = None) -> None:
    table = Table(title=title, show_lines=False)
    table.add_column("check")
    table.add_column("result")
    table.add_column("details", overflow="fold")
    for c in checks:
        table.add_row(c.name, f"[{STYLE[c.outcome]}]{c.outcome.upper()}[/]", c.message)
    (console or Console()).print(table)
