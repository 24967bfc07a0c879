"""One build step as a subprocess whose output lines are shown as they come."""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Callable, Mapping


class StepFailed(RuntimeError):
    """A step exited non-zero, could not run, or ran past its time; ``str()`` says
    which step and ends with its last lines of output."""

    def __init__(self, step: str, reason: str) -> None:
        super().__init__(f"{step}: {reason}")
        self.step = step


def run_step(
    step: str,
    cmd: list[str],
    on_line: Callable[[str], None],
    *,
    env: Mapping[str, str] | None = None,
    timeout: float = 3600,
) -> str:
    """Run ``cmd``, passing each output line to ``on_line``; its whole output."""
    lines: list[str] = []
    try:
        proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
        )
    except OSError as e:
        raise StepFailed(step, str(e)) from e
    timer = threading.Timer(timeout, proc.kill)  # reading blocks: the timer ends a hang
    timer.start()
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line.rstrip())
            on_line(f"{step}: {line.rstrip()}")
        code = proc.wait()
    finally:
        timer.cancel()
        if proc.stdout:
            proc.stdout.close()
    if code != 0:
        ended = f"ran past {timeout:g} s" if code == -9 else f"exited {code}"
        raise StepFailed(step, "\n".join(lines[-15:]) or ended)
    return "\n".join(lines)
