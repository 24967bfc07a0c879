"""What ``tkhub up`` becomes once everything is prepared: a small parent for JupyterHub.

``tkhub up`` loads most of tkhub to check and prepare; it then replaces itself
(``exec``, same pid) with this module, which needs only the standard library, so
the process that waits in the foreground costs a bare interpreter, not the whole
CLI. It starts the hub in a process group of its own, says when the hub answers
(and the catalog, so that a spawn can succeed from then on),
hands SIGINT/SIGTERM to the hub (which stops its servers, services and proxy), and
removes ``running.json`` (written by ``tkhub up`` with this same pid) at the end.

    python -m tkhub.local.supervisor CONFIG PUBLIC_URL HUB_API_URL CATALOG_URL RUNNING_FILE
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

READY_TIMEOUT = 180.0


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def wait_until_ready(urls: list[str], proc: subprocess.Popen[bytes]) -> bool:
    """Each URL in turn answers 200; False if the hub exited or time ran out first.

    The hub itself is asked first: asking the proxy earlier only makes it log refused
    connections to a hub that is still starting.
    """
    deadline = time.monotonic() + READY_TIMEOUT
    for url in urls:
        while not answers(url):
            if proc.poll() is not None or time.monotonic() > deadline:
                return False
            time.sleep(0.3)
    return True


def main(argv: list[str]) -> int:
    config, public_url, hub_api_url, catalog_url, running_file = argv
    hub: list[subprocess.Popen[bytes]] = []

    def stop(_signum: int, _frame: Any) -> None:
        if hub and hub[0].poll() is None:
            hub[0].send_signal(signal.SIGTERM)

    # Handlers first: a caught signal is reset to its default in a child, an ignored
    # one stays ignored. Started from a background shell or nohup, SIGINT is ignored;
    # the hub and its services would inherit that, and JupyterHub stops a service
    # with SIGINT, waiting 10 s before it tries SIGTERM.
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyterhub", "-f", config],
        cwd=Path(config).parent,
        start_new_session=True,  # one Ctrl-C reaches the hub once, through us
    )
    hub.append(proc)
    try:
        urls = [f"{hub_api_url}/hub/api", f"{public_url}/hub/api", f"{catalog_url}/health"]
        if wait_until_ready(urls, proc):
            print(f"tkhub is ready: open {public_url}  (Ctrl-C stops it)", flush=True)
        code = proc.wait()
    finally:
        Path(running_file).unlink(missing_ok=True)
    if code in (0, -signal.SIGTERM, 128 + signal.SIGTERM):
        print("tkhub stopped.", flush=True)
        return 0
    print(f"error: JupyterHub exited with status {code}; see its log above.", file=sys.stderr)
    return code if code > 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
