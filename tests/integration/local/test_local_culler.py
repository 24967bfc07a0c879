"""The idle culler that `tkhub up` runs stops idle servers (which frees their GPUs)."""

from __future__ import annotations

import time

from local_hub import running_tkhub_up


def test_an_idle_server_is_stopped_by_the_culler():
    with running_tkhub_up("--cull-idle-timeout", "10") as hub:
        hub.add_user("idle")
        assert hub.spawn("idle", {"image": "python"}).status_code in (201, 202)
        hub.wait_ready("idle")
        deadline = time.monotonic() + 120  # idle 10 s, checked every 10 s
        while hub.server("idle") is not None:
            assert time.monotonic() < deadline, hub.printed()[-3000:]
            time.sleep(1)
        assert "Culling server idle" in hub.printed()  # the culler's log, not a stop of ours
        ledger = hub.data_dir / "state" / "gpu-ledger.json"
        assert not ledger.exists() or "idle/" not in ledger.read_text()
