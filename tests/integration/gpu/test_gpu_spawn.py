"""On a GPU machine: a GPU server sees exactly its GPU; a taken GPU is refused; stop frees.

Runs through a real hub (tkhub's local mode); skipped without NVML or a GPU.
"""

from __future__ import annotations

import pytest
from kernels import run_in_kernel

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
