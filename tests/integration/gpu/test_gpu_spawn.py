"""On a GPU machine: a GPU server sees exactly its GPU; a taken GPU is refused; stop frees.

Runs through a real hub (tkhub's local mode); skipped without NVML or a GPU.
"""

from __future__ import annotations

import json
import uuid

import httpx
import pytest
import websocket

pytestmark = pytest.mark.gpu

PROBE = r"""
import json, os
out = {"cuda_visible": os.environ.get("CUDA_VISIBLE_DEVICES"),
       "nvidia_visible": os.environ.get("NVIDIA_VISIBLE_DEVICES")}
try:
    import torch
    out["torch_count"] = torch.cuda.device_count()
except ImportError:
    out["torch_count"] = None
print(json.dumps(out))
"""


def run_in_kernel(hub, user: str, code: str) -> dict:
    """Start a kernel on the user's server, run ``code``, and parse the JSON it prints."""
    headers = {"Authorization": f"token {hub.token}"}
    base = f"{hub.url}/user/{user}/api"
    kernel = httpx.post(f"{base}/kernels", headers=headers, json={}, timeout=60)
    assert kernel.status_code == 201, kernel.text
    kernel_id = kernel.json()["id"]
    ws_url = base.replace("http://", "ws://") + f"/kernels/{kernel_id}/channels"
    ws = websocket.create_connection(
        ws_url, header=[f"Authorization: token {hub.token}"], timeout=120
    )
    try:
        msg_id = uuid.uuid4().hex
        ws.send(
            json.dumps(
                {
                    "header": {
                        "msg_id": msg_id,
                        "msg_type": "execute_request",
                        "username": user,
                        "session": uuid.uuid4().hex,
                        "version": "5.3",
                    },
                    "parent_header": {},
                    "metadata": {},
                    "content": {"code": code, "silent": False, "store_history": False},
                    "channel": "shell",
                    "buffers": [],
                }
            )
        )
        stdout = ""
        while True:
            msg = json.loads(ws.recv())
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind = msg["header"]["msg_type"]
            if kind == "stream":
                stdout += msg["content"]["text"]
            elif kind == "error":
                raise AssertionError("\n".join(msg["content"]["traceback"]))
            elif kind == "status" and msg["content"]["execution_state"] == "idle":
                break
    finally:
        ws.close()
        httpx.delete(f"{base}/kernels/{kernel_id}", headers=headers, timeout=30)
    return json.loads(stdout.strip().splitlines()[-1])


def test_gpu_server_sees_only_its_gpu_and_stop_frees_it(gpu_hub, nvml_gpus):
    alice, bob = gpu_hub.new_user(), gpu_hub.new_user()
    started = gpu_hub.spawn(alice, {"image": ["python"], "gpu": ["auto"]})
    assert started.status_code in (201, 202), started.text
    gpu_hub.wait_ready(alice)
    held = gpu_hub.held_by(alice)
    assert len(held) == 1, gpu_hub.ledger()
    seen = run_in_kernel(gpu_hub, alice, PROBE)
    assert seen["cuda_visible"] == held[0]
    assert seen["nvidia_visible"] == held[0]
    if seen["torch_count"] is not None:
        assert seen["torch_count"] == 1

    # the same GPU, asked for by another user, is refused at once; nothing starts
    index = next(d.index for d in nvml_gpus if d.uuid == held[0])
    refused = gpu_hub.spawn(bob, {"image": ["python"], "gpu": [f"device:{index}"]})
    assert refused.status_code >= 400, refused.text
    said = refused.text + gpu_hub.tail()  # the API or the hub log carries the plain message
    assert "taken by another server" in said or "in use" in said, said
    assert not gpu_hub.api("GET", f"/users/{bob}").json().get("servers")
    assert gpu_hub.held_by(bob) == []

    gpu_hub.stop(alice)
    assert gpu_hub.held_by(alice) == []
    again = gpu_hub.spawn(bob, {"image": ["python"], "gpu": [f"device:{index}"]})
    assert again.status_code in (201, 202), again.text
    gpu_hub.wait_ready(bob)
    assert gpu_hub.held_by(bob) == [held[0]]
    gpu_hub.stop(bob)
