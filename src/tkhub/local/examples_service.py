"""The examples sync of ``tkhub up``: a JupyterHub-managed service that syncs at
start, then every ``examples_sync_hours``. It exits at once on SIGTERM (a stop of
``tkhub up`` never waits for it); a sync under way is abandoned whole, as a
failed sync is: the served copy is only ever replaced by a complete one."""

from __future__ import annotations

import logging
import signal
import time
from types import FrameType

from tkhub.examples import sync_examples
from tkhub.settings import load_settings

log = logging.getLogger("tkhub.examples")


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="[examples] %(message)s")
    settings = load_settings()

    def stop(_signum: int, _frame: FrameType | None) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while True:
        status = sync_examples(settings)
        (log.info if status.ok else log.warning)("sync from %s: %s", status.source, status.message)
        if settings.examples_sync_hours <= 0:
            signal.pause()  # until SIGTERM
        time.sleep(settings.examples_sync_hours * 3600)


if __name__ == "__main__":
    main()
