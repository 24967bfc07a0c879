"""``python -m tkhub.jobs.stage DIR``: tkhub's files for a pod of the user's image.

The user's image has Python and papermill but not tkhub. An init container from the
hub image (which carries tkhub) copies into a volume the notebook container shares:

- ``execute.py``: the job runner (``tkhub.jobs.execute``), which a job's pod runs;
- ``tkhub``: the terminal client (``tkhub.jobs.terminal``), which a server mounts on
  its ``PATH`` so ``tkhub jobs`` works in its terminals.

Both import nothing of tkhub.
"""

from __future__ import annotations

import sys
from pathlib import Path

from tkhub.jobs import execute, terminal

RUNNER = "execute.py"
CLIENT = "tkhub"


def stage(folder: Path) -> None:
    runner = folder / RUNNER
    runner.write_text(Path(execute.__file__).read_text())
    runner.chmod(0o644)
    client = folder / CLIENT
    client.write_text("#!/usr/bin/env python3\n" + Path(terminal.__file__).read_text())
    client.chmod(0o755)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m tkhub.jobs.stage DIR", file=sys.stderr)
        return 2
    stage(Path(argv[0]))
    print(f"staged {RUNNER} and {CLIENT} in {argv[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
