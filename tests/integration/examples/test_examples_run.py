"""The shipped examples run top to bottom in the environment they belong to, built
from its committed lock (``tkhub env create``'s code): common and scipy in scipy,
ml-cpu and agent-dev in theirs. The GPU ones run where NVML finds a GPU."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from notebooks import printed, run_notebook

from tkhub.environments import resolve
from tkhub.local.env_create import create_environment

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "notebooks"


@pytest.fixture(scope="module")
def envs(tmp_path_factory) -> Iterator[dict[str, Path]]:
    """Environments created once per module, on demand."""
    root = tmp_path_factory.mktemp("example-envs")
    made: dict[str, Path] = {}

    def python(name: str) -> Path:
        if name not in made:
            definition, known = resolve(name)
            made[name] = create_environment(definition, known, root, lambda _: None).python
        return made[name]

    yield python  # type: ignore[misc]


@pytest.fixture
def home(tmp_path) -> dict[str, str]:
    """The kernel's HOME: a workspace like a server's, under the test's directory."""
    (tmp_path / "thinkube" / "models").mkdir(parents=True)
    (tmp_path / "scratch").mkdir()
    return {"HOME": str(tmp_path)}


def has_gpu() -> bool:
    from tkhub.gpu import nvml

    try:
        return bool(nvml.read_devices())
    except nvml.NvmlUnavailable:
        return False


def test_every_example_is_stripped_and_tagged():
    import nbformat

    books = sorted(EXAMPLES.rglob("*.ipynb"))
    folders = {p.relative_to(EXAMPLES).parts[0] for p in books}
    assert folders == {"common", "scipy", "ml-cpu", "ml-gpu", "fine-tuning", "agent-dev"}
    for path in books:
        notebook = nbformat.read(path, as_version=4)
        code = [c for c in notebook.cells if c.cell_type == "code"]
        assert "parameters" in code[0].metadata.get("tags", []), path
        assert all(not c.outputs and c.execution_count is None for c in code), path


def test_common_tour(envs, home):
    out = printed(run_notebook(EXAMPLES / "common" / "where-things-live.ipynb", envs("scipy"),
                               env=home))  # fmt: skip
    assert f"{home['HOME']}/thinkube/models" in out and "CUDA_VISIBLE_DEVICES" in out


def test_scipy_analysis(envs, home):
    out = printed(run_notebook(EXAMPLES / "scipy" / "weather-analysis.ipynb", envs("scipy"),
                               env=home))  # fmt: skip
    assert "sunshine = " in out


def test_ml_cpu_training(envs, home):
    out = printed(run_notebook(EXAMPLES / "ml-cpu" / "train-on-cpu.ipynb", envs("ml-cpu"),
                               parameters={"epochs": 20}, env=home))  # fmt: skip
    assert "test MSE" in out
    assert (Path(home["HOME"]) / "thinkube/models/examples/ml-cpu-regression.pt").is_file()


def test_agent_with_the_fake_model(envs, home):
    env = {**home, "OPENAI_BASE_URL": ""}
    out = printed(run_notebook(EXAMPLES / "agent-dev" / "agent-with-tools.ipynb",
                               envs("agent-dev"), env=env))  # fmt: skip
    assert "17 × 23 = 391" in out


@pytest.mark.gpu
@pytest.mark.skipif(not has_gpu(), reason="needs an NVIDIA GPU (NVML)")
@pytest.mark.parametrize(
    ("environment", "notebook"),
    [("ml-gpu", "ml-gpu/train-on-gpu.ipynb"), ("fine-tuning", "fine-tuning/lora-tiny-model.ipynb")],
)
def test_gpu_examples(envs, home, environment, notebook):
    out = printed(run_notebook(EXAMPLES / notebook, envs(environment),
                               env={**home, "CUDA_VISIBLE_DEVICES": os.environ.get(
                                   "CUDA_VISIBLE_DEVICES", "0")}))  # fmt: skip
    assert "on cuda" in out, out  # trained on the GPU, not the CPU fallback
