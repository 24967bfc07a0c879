"""Placement choices and parsing form/query parameters into a Selection."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tkhub.catalog.schemas import ImagePublic
from tkhub.gpu.model import GpuDevice, GpuNode, GpuPool, Inventory, Placement
from tkhub.local.inventory import local_node
from tkhub.selection import (
    SelectionError,
    parse_selection,
    placement_choices,
    spawn_choices,
)

H100 = "NVIDIA H100 80GB HBM3"


def entry(name: str, gpu: str = "optional", **kw) -> ImagePublic:
    return ImagePublic(name=name, kind="oci", image=f"reg/{name}:1", gpu=gpu, **kw)


ENTRIES = [
    entry("this-machine", default=True),
    entry("cuda", "required", display_name="PyTorch CUDA"),
    entry("plain", "none"),
    entry("secret", hidden=True),
    entry("team", allowed_groups=["ml"]),
]


def local(*holders: tuple[str, ...]) -> Inventory:
    devices = [GpuDevice(str(i), f"GPU-{i}", H100, 81559, holders=h) for i, h in enumerate(holders)]
    return Inventory(mode="local", nodes=(local_node(devices),))


def cluster() -> Inventory:
    b = GpuNode("node-b", (GpuPool("NVIDIA-H100", total=2, allocated=2),))
    c = GpuNode("node-c", (GpuPool("NVIDIA-A100", total=4, allocated=1),))
    d = GpuNode("node-d", (GpuPool("NVIDIA-A100", total=1),), schedulable=False, reason="cordoned")
    return Inventory(mode="kubernetes", nodes=(b, c, d))


def keys(choices) -> dict[str, object]:
    return {c.placement.key: c for c in choices}


def test_no_gpu_machine_offers_cpu_and_disabled_gpu():
    choices = placement_choices(ENTRIES[0], Inventory(mode="local", nodes=(local_node(()),)))
    assert [c.placement.key for c in choices] == ["none", "auto"]
    assert not choices[1].enabled and choices[1].reason == "no GPU on this machine"


def test_required_has_no_cpu_and_none_has_no_gpu():
    assert "none" not in keys(placement_choices(ENTRIES[1], local(())))
    assert list(keys(placement_choices(ENTRIES[2], local(())))) == ["none"]


def test_local_choices_per_device_with_holders():
    by_key = keys(placement_choices(ENTRIES[0], local(("alice/",), ())))
    assert by_key["auto"].free == 1 and by_key["auto"].max_count == 1
    assert by_key[f"model:{H100}"].total == 2
    busy = by_key["device:0"]
    assert not busy.enabled and busy.reason == "GPU 0 is in use by alice/"
    assert by_key["device:1"].enabled and by_key["device:1"].label == f"GPU 1: {H100}"


def test_cluster_choices_per_node_with_reasons():
    by_key = keys(placement_choices(ENTRIES[0], cluster()))
    assert by_key["node:node-b"].reason == "all 2 NVIDIA-H100 on node-b are in use"
    assert by_key["node:node-d"].reason == "node-d is cordoned"
    assert by_key["model:NVIDIA-A100"].free == 3 and by_key["model:NVIDIA-A100"].max_count == 3
    assert by_key["model:NVIDIA-H100"].reason == "all 2 NVIDIA-H100 are in use"
    assert by_key["auto"].max_count == 3


def parse(params, inventory=None, groups=(), admin=False):
    choices = spawn_choices(ENTRIES, inventory or local((), ()), user_groups=groups, admin=admin)
    return parse_selection(params, choices)


def test_parse_defaults_and_values():
    sel = parse({})
    assert sel.image.name == "this-machine" and sel.placement == Placement("cpu")
    assert parse({"image": ["cuda"]}).placement == Placement("auto", count=1)
    assert parse({"image": ["this-machine"], "gpu": ["auto"], "count": ["2"]}).placement.count == 2
    assert parse({"image": ["cuda"], "gpu": ["GPU-1"]}).placement == Placement("device", "1", 1)
    assert parse({"image": ["cuda"], "gpu": [H100]}).placement.kind == "model"
    assert parse({"image": ["team"]}, groups={"ml"}).image.name == "team"
    assert parse({"image": ["team"]}, admin=True).image.name == "team"
    node = parse({"image": ["cuda"], "gpu": ["node-c"]}, inventory=cluster()).placement
    assert node == Placement("node", "node-c", 1)


@pytest.mark.parametrize(
    ("params", "field", "words"),
    [
        ({"image": ["nope"]}, "image", "no environment named 'nope'"),
        ({"image": ["secret"]}, "image", "no environment named"),
        ({"image": ["team"]}, "image", "not available to your groups"),
        ({"image": ["plain"], "gpu": ["auto"]}, "gpu", "runs on CPU only"),
        ({"image": ["cuda"], "gpu": ["none"]}, "gpu", "PyTorch CUDA needs a GPU"),
        ({"image": ["cuda"], "gpu": ["RTX-1"]}, "gpu", "no GPU, model or node named 'RTX-1'"),
        ({"image": ["cuda"], "count": ["two"]}, "count", "'two' is not a whole number"),
        ({"image": ["cuda"], "count": ["0"]}, "count", "at least 1"),
        ({"image": ["cuda"], "count": ["3"]}, "count", "at most 2 GPU(s)"),
        ({"image": ["cuda"], "gpu": ["device:0"]}, "gpu", "in use by bob/"),
        ({"image": ["a", "b"]}, "image", "give one value"),
    ],
)
def test_parse_errors_name_field_and_reason(params, field, words):
    with pytest.raises(SelectionError) as err:
        parse(params, inventory=local(("bob/",), (), ()))
    assert err.value.field == field and words in err.value.reason


def test_no_gpu_machine_refuses_required():
    with pytest.raises(SelectionError, match="no GPU on this machine"):
        parse({"image": ["cuda"]}, inventory=local())


def test_cluster_node_busy_and_cordoned():
    with pytest.raises(SelectionError, match="node-d is cordoned"):
        parse({"image": ["cuda"], "gpu": ["node:node-d"]}, inventory=cluster())


@given(
    image=st.sampled_from([e.name for e in ENTRIES] + ["x", ""]),
    gpu=st.one_of(
        st.sampled_from(["none", "auto", "0", "1", "device:9", "node:z", H100]), st.text()
    ),
    count=st.one_of(st.integers(-3, 5).map(str), st.text(max_size=4)),
)
def test_any_input_gives_selection_or_selection_error(image, gpu, count):
    params = {"image": [image], "gpu": [gpu], "count": [count]}
    try:
        sel = parse(params, inventory=local(("a/",), ()))
    except SelectionError as err:
        assert err.field in {"image", "gpu", "count"} and err.reason
        return
    again = parse({k: [v] for k, v in sel.to_options().items()}, local(("a/",), ()))
    assert again == sel  # launch-link parameters round-trip


def test_nodes_whose_driver_cannot_run_the_images_cuda_are_offered_disabled():
    old = GpuNode("old", (GpuPool("NVIDIA-A100", total=2),), cuda_driver="12.4")
    new = GpuNode("new", (GpuPool("NVIDIA-H100", total=1),), cuda_driver="13.0")
    unknown = GpuNode("unknown", (GpuPool("NVIDIA-L4", total=1),))
    inventory = Inventory(mode="kubernetes", nodes=(old, new, unknown))
    cuda13 = entry("ft", "required", facts={"hub_major": 6, "cuda": "13.0"})
    by_key = keys(placement_choices(cuda13, inventory))
    assert not by_key["node:old"].enabled
    assert by_key["node:old"].reason == (
        "old is limited to CUDA 12.4 by its driver; this environment needs CUDA 13.0"
    )
    assert not by_key["model:NVIDIA-A100"].enabled
    assert by_key["node:new"].enabled and by_key["node:unknown"].enabled
    assert by_key["auto"].free == 2  # the old node's GPUs are not counted
    # an environment without CUDA facts is offered every node, as before
    assert keys(placement_choices(entry("plain-gpu", "required"), inventory))["node:old"].enabled
    # and the start is refused with the same reason
    with pytest.raises(SelectionError, match="limited to CUDA 12.4 by its driver"):
        parse_selection({"image": "ft", "gpu": "node:old"},
                        spawn_choices([cuda13], inventory))  # fmt: skip
