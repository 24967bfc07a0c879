"""``tkhub jobs`` in a server's terminal on a cluster, where tkhub is not installed.

The user's image carries Python but not tkhub, so the init container that delivers a
server's examples (the hub image) also stages this file, which imports nothing but
the standard library, as ``tkhub`` on the server's ``PATH``. It speaks to the jobs
service with the server's own token (``TKHUB_JOBS_URL``, ``JUPYTERHUB_API_TOKEN``),
as ``tkhub jobs`` does on one machine, and shares its parameter parsing and its
one-line summary of a job with that command (``tkhub.cli.jobs``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

PARAMETER_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
Scalar = str | int | float | bool | None


def parse_parameter(text: str) -> tuple[str, Scalar]:
    """``name=value`` as papermill's ``-p`` reads it: a number, true/false/none, or text."""
    name, sep, raw = text.partition("=")
    name = name.strip()
    if not sep or not re.match(PARAMETER_NAME, name):
        raise ValueError(f"parameter {text!r}: write it as name=value")
    value = raw.strip()
    lowered = value.lower()
    if lowered in ("true", "false"):
        return name, lowered == "true"
    if lowered in ("none", "null"):
        return name, None
    for kind in (int, float):
        try:
            return name, kind(value)
        except ValueError:
            pass
    return name, value


def notebook_argument(given: str) -> str:
    """A path in a server's terminal, made relative to the notebooks folder."""
    home = os.environ.get("HOME")
    if not home or not os.environ.get("TKHUB_JOBS_URL"):
        return given
    notebooks = Path(home) / "thinkube" / "notebooks"
    absolute = Path(os.path.abspath(given))
    return str(absolute.relative_to(notebooks)) if absolute.is_relative_to(notebooks) else given


def describe(job: dict[str, Any]) -> str:
    """One line: ``Job 7 running: train/tune.ipynb in ml-gpu on GPU auto``."""
    placement = "CPU only" if job["placement"] == "none" else f"GPU {job['placement']}"
    where = placement + (f" ({', '.join(job['gpus'])})" if job["gpus"] else "")
    state = job["state"] + (f", position {job['queue_position']} in the queue"
                            if job.get("queue_position") else "")  # fmt: skip
    return f"Job {job['id']} {state}: {job['notebook']} in {job['environment']} on {where}"


class Refused(Exception):
    """The service said no, or did not answer; ``str()`` is the line to print."""


def call(method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    url, token = os.environ.get("TKHUB_JOBS_URL"), os.environ.get("JUPYTERHUB_API_TOKEN")
    if not url or not token:
        raise Refused("TKHUB_JOBS_URL and JUPYTERHUB_API_TOKEN are not set: run this in a "
                      "terminal of your server")  # fmt: skip
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        f"{url.rstrip('/')}/api/v1{path}", data=data, method=method,
        headers={"Authorization": f"token {token}", "Content-Type": "application/json"},
    )  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            raw = response.read().decode()
            kind = response.headers.get("Content-Type", "")
    except urllib.error.HTTPError as e:
        try:
            detail = json.loads(e.read().decode())["detail"]
        except (ValueError, KeyError, TypeError):
            detail = e.reason
        raise Refused(f"{detail} (HTTP {e.code})") from None
    except OSError as e:
        raise Refused(f"the jobs service does not answer at {url} ({e})") from None
    return json.loads(raw) if kind.startswith("application/json") else raw


def _run(args: argparse.Namespace) -> None:
    try:
        parameters = dict(parse_parameter(p) for p in args.parameter or [])
    except ValueError as e:
        raise Refused(str(e)) from None
    body = {
        "notebook": notebook_argument(args.notebook), "image": args.env, "gpu": args.gpu,
        "count": args.count, "size": args.size, "parameters": parameters,
        "time_limit": max(1, int(args.time_limit * 3600)),
    }  # fmt: skip
    job = call("POST", "/jobs", body)
    print(describe(job))
    print(f"Output: notebooks/{job['output']}, log: notebooks/{job['log']}")


def _list(_args: argparse.Namespace) -> None:
    jobs = call("GET", "/jobs")
    print(f"Jobs: {len(jobs)}")
    for job in jobs:
        took = f" ({job['duration']:.0f} s)" if job.get("duration") is not None else ""
        print(describe(job) + took)


def _show(args: argparse.Namespace) -> None:
    job = call("GET", f"/jobs/{args.id}")
    print(describe(job))
    for field in ("reason", "failed_cell", "error", "node", "output", "log"):
        if job.get(field) not in (None, ""):
            print(f"  {field + ':':<13}{job[field]}")


def _logs(args: argparse.Namespace) -> None:
    print(call("GET", f"/jobs/{args.id}/log"), end="")


def _cancel(args: argparse.Namespace) -> None:
    print(describe(call("POST", f"/jobs/{args.id}/cancel")))


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="tkhub", description="Run notebooks as jobs.")
    groups = top.add_subparsers(dest="group", required=True)
    jobs = groups.add_parser("jobs", help="notebooks run as jobs").add_subparsers(
        dest="command", required=True
    )
    run = jobs.add_parser("run", help="run a notebook as a job")
    run.add_argument("notebook")
    run.add_argument("--env", help="environment (default: the default one)")
    run.add_argument("--gpu", help="none, auto, model:<m>, node:<n>, device:<i>")
    run.add_argument("--count", type=int, help="how many GPUs")
    run.add_argument("--size", help="full, half, quarter")
    run.add_argument("-p", "--parameter", action="append", help="name=value")
    run.add_argument("--time-limit", type=float, default=4.0, help="hours (default 4)")
    run.set_defaults(handler=_run)
    jobs.add_parser("list", help="your jobs").set_defaults(handler=_list)
    for name, handler in (("show", _show), ("logs", _logs), ("cancel", _cancel)):
        command = jobs.add_parser(name, help=f"{name} a job")
        command.add_argument("id", type=int)
        command.set_defaults(handler=handler)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        args.handler(args)
    except Refused as e:
        print(f"Error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
