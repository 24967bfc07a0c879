"""Labels -> catalog entry, and the reason when a label is bad."""

from __future__ import annotations

import pytest

from tkhub.catalog.registry.labels import LabelError, NotJupyter, entry_from_labels

REF = "registry.example.org/team/lab@sha256:" + "a" * 64
BASE = {"io.thinkube.jupyter.compatible": "true"}


def test_all_labels_become_fields() -> None:
    entry = entry_from_labels(
        "lab",
        REF,
        {
            **BASE,
            "io.thinkube.jupyter.display-name": "Lab",
            "io.thinkube.jupyter.description": "A lab",
            "io.thinkube.jupyter.gpu": "Required",
            "io.thinkube.jupyter.examples": "lab-examples",
            "io.thinkube.jupyter.packages": "torch, numpy,,pandas ",
            "io.thinkube.jupyter.cpu-limit": "4",
            "io.thinkube.jupyter.mem-limit": "16Gi",
            "io.thinkube.jupyter.default": "true",
        },
    )
    assert (entry.name, entry.image, entry.display_name, entry.description) == (
        "lab", REF, "Lab", "A lab"
    )  # fmt: skip
    assert entry.gpu.value == "required" and entry.default and entry.examples == "lab-examples"
    assert entry.packages == ["torch", "numpy", "pandas"]
    assert (entry.resources.cpu_limit, entry.resources.mem_limit) == ("4", "16Gi")


def test_opencontainers_annotations_are_fallbacks() -> None:
    entry = entry_from_labels(
        "lab",
        REF,
        {
            **BASE,
            "org.opencontainers.image.title": "Title",
            "org.opencontainers.image.description": "D",
        },
    )
    assert (entry.display_name, entry.description, entry.gpu.value) == ("Title", "D", "optional")


@pytest.mark.parametrize("labels", [{}, {"io.thinkube.jupyter.compatible": "yes please"}])
def test_not_a_jupyter_image(labels: dict[str, str]) -> None:
    with pytest.raises(NotJupyter, match="compatible"):
        entry_from_labels("lab", REF, labels)


@pytest.mark.parametrize(
    ("label", "value", "reason"),
    [
        ("gpu", "maybe", "'maybe' is not one of required, optional, none"),
        ("mem-limit", "lots", "'lots' is not a Kubernetes quantity"),
        ("cpu-limit", "8Q", "'8Q' is not a Kubernetes quantity"),
        ("default", "perhaps", "'perhaps' is not true or false"),
        ("display-name", "x" * 300, "at most 200 characters"),
    ],
)
def test_bad_values_name_the_label_and_the_reason(label: str, value: str, reason: str) -> None:
    with pytest.raises(LabelError) as caught:
        entry_from_labels("lab", REF, {**BASE, f"io.thinkube.jupyter.{label}": value})
    assert caught.value.label == f"io.thinkube.jupyter.{label}"
    assert reason in str(caught.value)


def test_the_build_checks_facts_are_kept() -> None:
    entry = entry_from_labels(
        "gpu-lab",
        REF,
        {
            **BASE,
            "io.thinkube.jupyter.hub-major": "6",
            "io.thinkube.jupyter.cuda": "13.0",
            "io.thinkube.jupyter.cuda-archs": "sm_80,sm_90,sm_100a",
        },
    )
    assert entry.facts.hub_major == 6 and entry.facts.cuda == "13.0"
    assert entry.facts.cuda_archs == ["sm_80", "sm_90", "sm_100a"]
    assert entry_from_labels("lab", REF, BASE).facts.model_dump() == {
        "python": None, "hub_major": None, "cuda": None, "cuda_archs": []
    }  # fmt: skip


@pytest.mark.parametrize(
    ("label", "value", "reason"),
    [
        ("hub-major", "six", "'six' is not a JupyterHub major version"),
        ("cuda", "12", "'12' is not a CUDA version"),
        ("cuda-archs", "sm_80;sm_90", "is not a list such as sm_80,sm_90"),
    ],
)
def test_a_malformed_fact_skips_the_image(label: str, value: str, reason: str) -> None:
    with pytest.raises(LabelError, match=reason):
        entry_from_labels("lab", REF, {**BASE, f"io.thinkube.jupyter.{label}": value})
