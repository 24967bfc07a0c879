"""The fine-tuning example, in its curated environment on CPU, logs to a real MLflow
server when ``MLFLOW_TRACKING_URI`` is set: parameters, the loss and the adapter."""

from __future__ import annotations

from pathlib import Path

import httpx
from conftest import start_mlflow
from hubproc import free_port, terminate
from notebooks import printed, run_notebook

from tkhub.environments import resolve
from tkhub.local.env_create import create_environment

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "notebooks"


def test_the_fine_tuning_example_logs_params_loss_and_adapter(mlflow_env, tmp_path):
    definition, known = resolve("fine-tuning")
    python = create_environment(definition, known, tmp_path / "envs", lambda _: None).python
    port = free_port()
    server = start_mlflow(mlflow_env, tmp_path / "mlflow", port)
    url = f"http://127.0.0.1:{port}"
    home = tmp_path / "home"
    (home / "thinkube" / "models").mkdir(parents=True)
    try:
        out = printed(run_notebook(
            EXAMPLES / "fine-tuning" / "lora-tiny-model.ipynb", python,
            parameters={"adapter_name": "ci-adapter"},
            env={"HOME": str(home), "MLFLOW_TRACKING_URI": url, "CUDA_VISIBLE_DEVICES": ""},
        ))  # fmt: skip
        assert f"logged to MLflow at {url}" in out, out[-2000:]
        api = f"{url}/api/2.0/mlflow"
        named = {"experiment_name": "tkhub-examples"}
        experiment = httpx.get(f"{api}/experiments/get-by-name", params=named).json()
        search = {"experiment_ids": [experiment["experiment"]["experiment_id"]]}
        (run,) = httpx.post(f"{api}/runs/search", json=search).json()["runs"]
        assert run["info"]["run_name"] == "ci-adapter"
        assert {p["key"] for p in run["data"]["params"]} == {"lora_rank", "finetune_steps"}
        assert [m["key"] for m in run["data"]["metrics"]] == ["loss"]
        where = {"run_id": run["info"]["run_id"], "path": "adapter"}
        listed = httpx.get(f"{api}/artifacts/list", params=where).json()
        names = {Path(f["path"]).name for f in listed["files"]}
        assert {"adapter_config.json", "adapter_model.safetensors"} <= names, listed
    finally:
        terminate(server, timeout=30)
    assert (home / "thinkube" / "models" / "ci-adapter" / "adapter_config.json").is_file()
