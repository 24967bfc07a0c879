"""Run a notebook top to bottom with nbclient, in a given environment's Python, with
papermill-style parameters (a cell inserted after the one tagged ``parameters``)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import nbformat
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient


def inject(notebook: Any, parameters: dict[str, Any]) -> None:
    tagged = [i for i, c in enumerate(notebook.cells) if "parameters" in c.metadata.get("tags", [])]
    assert tagged, "no cell is tagged 'parameters'"
    source = "\n".join(f"{name} = {value!r}" for name, value in parameters.items())
    cell = nbformat.v4.new_code_cell(source, metadata={"tags": ["injected-parameters"]})
    notebook.cells.insert(tagged[0] + 1, cell)


def run_notebook(path: Path, python: Path, parameters: dict[str, Any] | None = None,
                 env: dict[str, str] | None = None, timeout: int = 900) -> Any:  # fmt: skip
    """The executed notebook, run by a kernel of ``python`` with ``env`` added to its
    environment; nbclient's CellExecutionError names a failing cell."""
    notebook = nbformat.read(path, as_version=4)
    if parameters:
        inject(notebook, parameters)
    with tempfile.TemporaryDirectory() as kernels:
        spec = Path(kernels) / "tkenv"
        spec.mkdir()
        (spec / "kernel.json").write_text(json.dumps({
            "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "environment under test", "language": "python", "env": env or {},
        }))  # fmt: skip
        manager = KernelManager(
            kernel_name="tkenv", kernel_spec_manager=KernelSpecManager(kernel_dirs=[kernels])
        )
        client = NotebookClient(notebook, km=manager, timeout=timeout, kernel_name="tkenv",
                                resources={"metadata": {"path": str(path.parent)}})  # fmt: skip
        client.execute()
    return notebook


def printed(notebook: Any) -> str:
    """Everything the cells printed (stream outputs), for assertions."""
    return "".join(
        out.get("text", "")
        for cell in notebook.cells
        if cell.cell_type == "code"
        for out in cell.get("outputs", [])
        if out.get("output_type") == "stream"
    )
