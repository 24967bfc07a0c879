"""Definitions: metadata read and validated once, parents before children, and the
curated set consistent with its committed Containerfiles and locks."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import pytest

from tkhub.catalog.schemas import GpuNeed, ImageCreate
from tkhub.environments import local_entry, resolve
from tkhub.environments.checks import CheckFailed, Facts, judge
from tkhub.environments.definition import (
    DefinitionError,
    build_order,
    content_hash,
    load_definitions,
)

CURATED = Path(__file__).resolve().parents[3] / "environments"
NAMES = ["scipy", "ml-cpu", "ml-gpu", "fine-tuning", "agent-dev"]


def write(root: Path, name: str, meta: str, requirements: str = "jupyterhub\n") -> Path:
    path = root / name
    path.mkdir(parents=True)
    (path / "environment.toml").write_text(meta)
    (path / "requirements.in").write_text(requirements)
    return path


def test_the_curated_set_and_its_tree():
    known = load_definitions(CURATED)
    assert sorted(known) == sorted(NAMES)
    order = [d.name for d in build_order(known)]
    for child, parent in [("ml-cpu", "scipy"), ("ml-gpu", "ml-cpu"),
                          ("fine-tuning", "ml-gpu"), ("agent-dev", "ml-cpu")]:  # fmt: skip
        assert known[child].parent == parent
        assert order.index(parent) < order.index(child)
    assert [d.name for d in build_order(known, ["fine-tuning"])] == [
        "scipy",
        "ml-cpu",
        "ml-gpu",
        "fine-tuning",
    ]
    assert known["ml-gpu"].gpu is GpuNeed.required and known["ml-gpu"].cuda
    assert known["scipy"].gpu is GpuNeed.none


@pytest.mark.parametrize("name", NAMES)
def test_containerfile_labels_say_what_the_metadata_says(name):
    """Read independently of the code that writes them: the LABEL lines of the
    committed Containerfile against environment.toml and requirements.in."""
    path = CURATED / name
    meta = tomllib.loads((path / "environment.toml").read_text())
    text = (path / "Containerfile").read_text()
    labels = {k: json.loads(v) for k, v in re.findall(r'^LABEL ([\w.-]+)=(".*")$', text, re.M)}
    prefix = "io.thinkube.jupyter."
    assert labels[prefix + "compatible"] == "true"
    assert labels[prefix + "display-name"] == meta["display_name"]
    assert labels[prefix + "description"] == meta["description"]
    assert labels[prefix + "gpu"] == meta["gpu"]
    assert labels[prefix + "examples"] == meta["examples"] == name
    direct = [
        re.match(r"[A-Za-z0-9._-]+", line).group(0).lower()
        for line in (path / "requirements.in").read_text().splitlines()
        if line.strip() and not line.startswith(("#", "-"))
    ]
    assert labels[prefix + "packages"].split(",") == direct
    assert re.search(r"^ARG BASE=", text, re.M) and "FROM ${BASE}" in text
    # nothing a server needs goes under a home; CUDA comes from wheels, not a toolkit
    assert not re.search(r"^(COPY|ADD) .* /(home|root)", text, re.M)
    assert re.search(r"^ENV PATH=/opt/tkhub/venv/bin:", text, re.M)
    assert "cuda-toolkit" not in text and re.search(r"^USER 1000$", text, re.M)  # not root
    if meta.get("parent"):
        assert f"tkhub-env-{meta['parent']}:" in text


@pytest.mark.parametrize("name", NAMES)
def test_each_lock_pins_jupyterhub_of_the_hubs_major(name):
    import jupyterhub

    lock = (CURATED / name / "requirements.lock").read_text()
    pinned = re.search(r"^jupyterhub==(\d+)\.", lock, re.M)
    assert pinned and pinned.group(1) == jupyterhub.__version__.split(".")[0]
    if name in ("ml-gpu", "fine-tuning"):
        assert re.search(r"^torch==", lock, re.M) and re.search(r"^nvidia-", lock, re.M)


def test_bad_definitions_are_refused_with_the_reason(tmp_path):
    write(tmp_path / "a", "x", 'display_name = "X"\nversion = "1"\ngpu = "maybe"\n')
    with pytest.raises(DefinitionError, match="'gpu' must be required, optional or none"):
        load_definitions(tmp_path / "a")
    write(tmp_path / "b", "x", 'display_name = "X"\nversion = "1"\nparent = "gone"\n')
    with pytest.raises(DefinitionError, match="parent 'gone' is not a definition"):
        load_definitions(tmp_path / "b")
    write(tmp_path / "c", "x", 'display_name = "X"\nversion = "1"\nimgae = "typo"\n')
    with pytest.raises(DefinitionError, match="unknown key"):
        load_definitions(tmp_path / "c")
    write(tmp_path / "d", "x", 'display_name = "X"\nversion = "1"\nparent = "y"\n')
    write(tmp_path / "d", "y", 'display_name = "Y"\nversion = "1"\nparent = "x"\n')
    with pytest.raises(DefinitionError, match="cycle"):
        load_definitions(tmp_path / "d")
    with pytest.raises(DefinitionError, match="no environment definition named 'nope'"):
        resolve("nope", CURATED)


def test_a_childs_hash_changes_with_its_parent(tmp_path):
    write(tmp_path, "base", 'display_name = "B"\nversion = "1"\n')
    write(tmp_path, "kid", 'display_name = "K"\nversion = "1"\nparent = "base"\n')
    known = load_definitions(tmp_path)
    before = content_hash(known["kid"], known)
    (tmp_path / "base" / "requirements.lock").write_text("jupyterhub==6.0.0\n")
    assert content_hash(known["kid"], known) != before


def test_local_entry_from_the_metadata():
    definition, _ = resolve("agent-dev", CURATED)
    entry = local_entry(definition, Path("/opt/tkhub/envs/agent-dev/abc/bin/python"))
    assert isinstance(entry, ImageCreate)
    assert (entry.name, entry.kind.value, entry.gpu.value) == ("agent-dev", "local", "none")
    assert entry.display_name == "Agent development" and "langgraph" in entry.packages
    assert entry.examples == "agent-dev"


def report(**fields) -> str:
    base = {"python": "3.11.2", "singleuser": "/opt/tkhub/venv/bin/jupyterhub-singleuser",
            "jupyterhub": "6.1.1", "import_failures": {}, "serve_error": None}  # fmt: skip
    return "noise\n" + json.dumps({**base, **fields})


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"singleuser": None}, "jupyterhub-singleuser is not installed"),
        ({"singleuser": "/home/jovyan/.local/bin/jupyterhub-singleuser"}, "under a home"),
        ({"jupyterhub": "5.3.0"}, "jupyterhub 5.3.0 in the environment, the hub runs 6.1.1"),
        ({"import_failures": {"scipy": "ImportError: x"}}, "key package scipy does not import"),
        ({"serve_error": "exited"}, "a Jupyter server cannot start: exited"),
        ({"cuda": {"cuda": None, "archs": []}}, "torch has no CUDA build"),
    ],
)
def test_the_check_names_the_problem(fields, reason):
    definition, _ = resolve("ml-gpu", CURATED)
    with pytest.raises(CheckFailed, match=re.escape(reason)):
        judge(report(**fields), definition, hub_version="6.1.1")


def test_the_check_records_cuda_facts():
    definition, _ = resolve("ml-gpu", CURATED)
    facts = judge(report(cuda={"cuda": "13.0", "archs": ["sm_80", "sm_90"]}), definition,
                  hub_version="6.1.1")  # fmt: skip
    assert facts.labels() == {
        "io.thinkube.jupyter.hub-major": "6",
        "io.thinkube.jupyter.cuda": "13.0",
        "io.thinkube.jupyter.cuda-archs": "sm_80,sm_90",
        # read back by the next build, which reuses the checked image without a check
        "io.thinkube.build.python": facts.python,
        "io.thinkube.build.jupyterhub": "6.1.1",
    }
    assert Facts.from_labels(facts.labels()) == facts
