"""``python -m tkhub.jobs.execute SPEC``: one job's run, as the user, under papermill.

The runner starts this as the user's account in a session of its own. It writes the
output notebook (saved after every cell, so JupyterLab shows the progress), the log
(papermill's cell output), and last a result file the runner reads: the state, the
failing cell and its error. The kernel is the environment's own Python.

In a cluster the job's pod runs this file alone (copied in by ``tkhub.jobs.stage``:
it imports nothing of tkhub, only papermill), with the spec in ``TKHUB_JOB_SPEC``, and
the result goes to the container's termination message, which Kubernetes keeps in the
pod's status for the jobs service to read.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

KERNEL_NAME = "tkhub-job"


def _kernelspec(root: Path, python: str) -> None:
    spec = root / "kernels" / KERNEL_NAME
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [python, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "job environment", "language": "python",
    }))  # fmt: skip


TERMINATION_MESSAGE_BYTES = 4096  # what the kubelet keeps of it


def _write_result(path: Path, result: dict[str, Any], termination_message: bool) -> None:
    if termination_message:  # read by the kubelet once the container has ended
        result = {**result, "error": str(result.get("error", ""))[:2000]}
        path.write_text(json.dumps(result)[:TERMINATION_MESSAGE_BYTES])
        return
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(result))
    partial.replace(path)  # the runner never reads half a result


def run(spec: dict[str, Any]) -> dict[str, Any]:
    """Execute the notebook; the result as the runner records it."""
    import papermill
    from nbclient.exceptions import DeadKernelError
    from papermill.exceptions import PapermillExecutionError

    with tempfile.TemporaryDirectory(prefix="tkhub-job-") as kernels:
        _kernelspec(Path(kernels), spec["python"])
        os.environ["JUPYTER_PATH"] = kernels
        try:
            papermill.execute_notebook(
                spec["input"], spec["output"], parameters=spec["parameters"],
                kernel_name=KERNEL_NAME, language="python", cwd=spec["cwd"], log_output=True,
                progress_bar=False, request_save_on_cell_execute=True,
            )  # fmt: skip
        except PapermillExecutionError as e:
            return {"state": "failed", "cell": e.exec_count, "error": f"{e.ename}: {e.evalue}",
                    "reason": f"cell [{e.exec_count}] raised {e.ename}"}  # fmt: skip
        except DeadKernelError as e:
            return {"state": "failed", "error": str(e) or "the kernel died",
                    "reason": "the kernel died (killed, or out of memory)"}  # fmt: skip
        except Exception as e:  # the notebook could not be read or written: say so
            return {"state": "failed", "error": f"{type(e).__name__}: {e}",
                    "reason": f"the run could not go on ({type(e).__name__})"}  # fmt: skip
    return {"state": "succeeded"}


def main(argv: list[str]) -> int:
    spec = json.loads(Path(argv[0]).read_text() if argv else os.environ["TKHUB_JOB_SPEC"])
    log = open(spec["log"], "a", buffering=1)  # noqa: SIM115 (the process's stdout from now)
    os.dup2(log.fileno(), 1)
    os.dup2(log.fileno(), 2)
    # papermill logs each cell's output through logging (log_output=True)
    logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(message)s")
    started = time.monotonic()
    print(f"tkhub job {spec['job']}: {spec['input']} -> {spec['output']}", flush=True)
    result = run(spec)
    result["seconds"] = round(time.monotonic() - started, 3)
    print(f"tkhub job {spec['job']}: {result['state']} {result.get('reason', '')}", flush=True)
    _write_result(Path(spec["result"]), result, bool(spec.get("termination_message")))
    return 0 if result["state"] == "succeeded" else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
