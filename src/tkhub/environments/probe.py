"""Runs INSIDE an environment (an image or a local Python), stdlib only: reports what
the checks need as one JSON line. Usage: ``python probe.py '{"imports": [...],
"cuda": false, "serve": true}'``. It never raises: each problem is reported."""

import importlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request


def _singleuser():
    here = os.path.join(os.path.dirname(sys.executable), "jupyterhub-singleuser")
    return here if os.path.exists(here) else shutil.which("jupyterhub-singleuser")


def _imports(names):
    failed = {}
    for name in names:
        try:
            importlib.import_module(name)
        except Exception as e:  # noqa: BLE001 - any failure is the answer
            failed[name] = f"{type(e).__name__}: {e}"[:300]
    return failed


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(timeout=90.0):
    """Start a Jupyter server on loopback and ask it for its status; None or the error."""
    port, token = _free_port(), "probe"
    cmd = [
        sys.executable,
        "-m",
        "jupyter_server",
        f"--ServerApp.port={port}",
        "--ServerApp.ip=127.0.0.1",
        f"--IdentityProvider.token={token}",
        "--ServerApp.open_browser=False",
        "--allow-root",
        "--ServerApp.root_dir=/tmp",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}/api/status?token={token}"
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                return "the Jupyter server exited: " + (proc.stderr.read() or "")[-400:]
            try:
                with urllib.request.urlopen(url, timeout=2) as r:
                    if r.status == 200:
                        return None
            except OSError:
                time.sleep(0.5)
        return f"the Jupyter server did not answer within {timeout:g} s"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def _cuda():
    try:
        import torch
    except Exception as e:  # noqa: BLE001
        return {"error": f"torch does not import: {e}"[:300]}
    try:
        flags = torch._C._cuda_getArchFlags() or ""  # compiled archs, without a GPU
    except Exception:  # noqa: BLE001
        flags = " ".join(torch.cuda.get_arch_list())
    archs = sorted(
        {f for f in flags.split() if f.startswith("sm_")},
        key=lambda a: int("".join(c for c in a if c.isdigit()) or 0),
    )
    return {"cuda": torch.version.cuda, "archs": archs}


def main():
    request = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
    report = {
        "python": sys.version.split()[0],
        "executable": sys.executable,
        "singleuser": _singleuser(),
        "jupyterhub": None,
    }
    try:
        import jupyterhub

        report["jupyterhub"] = jupyterhub.__version__
    except Exception as e:  # noqa: BLE001
        report["jupyterhub_error"] = str(e)[:300]
    report["import_failures"] = _imports(request.get("imports", []))
    if request.get("serve"):
        report["serve_error"] = _serve()
    if request.get("cuda"):
        report["cuda"] = _cuda()
    print(json.dumps(report))


if __name__ == "__main__":
    main()
