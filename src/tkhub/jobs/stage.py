"""``python -m tkhub.jobs.stage DIR``: put the job runner where a job's pod runs it.

The init container of a job's pod (the hub image, which carries tkhub) copies
``tkhub.jobs.execute`` into a volume the notebook container shares; that container
is the user's environment image, which has papermill but not tkhub.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from tkhub.jobs import execute

RUNNER = "execute.py"


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m tkhub.jobs.stage DIR", file=sys.stderr)
        return 2
    target = Path(argv[0]) / RUNNER
    shutil.copyfile(execute.__file__, target)
    target.chmod(0o644)
    print(f"job runner staged at {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
