"""A build step: lines shown as they come, failures with the step's last words."""

from __future__ import annotations

import time

import pytest

from tkhub.environments.steps import StepFailed, run_step


def test_lines_are_passed_on_and_returned():
    seen: list[str] = []
    out = run_step("say", ["sh", "-c", "echo one; echo two >&2"], seen.append)
    assert seen == ["say: one", "say: two"] and out == "one\ntwo"


def test_a_failure_names_the_step_and_its_last_lines():
    with pytest.raises(StepFailed, match=r"install: .*no such package") as failed:
        run_step("install", ["sh", "-c", "echo no such package; exit 3"], lambda _: None)
    assert failed.value.step == "install"


def test_a_hung_step_is_ended_at_its_timeout():
    started = time.monotonic()
    with pytest.raises(StepFailed, match="ran past 0.5 s"):
        run_step("hang", ["sleep", "30"], lambda _: None, timeout=0.5)
    assert time.monotonic() - started < 10
