"""The checks an environment passes before anyone meets it, in an image or on this
machine: judged from the report ``probe.py`` prints inside the environment."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import jupyterhub

from tkhub.catalog.schemas import EnvironmentFacts
from tkhub.environments.definition import LABEL_PREFIX, Definition

PROBE = Path(__file__).with_name("probe.py")
BUILD_LABEL_PREFIX = "io.thinkube.build."  # what the build itself reads back; the catalog does not
# A home is covered by the user's volume (images) or is the user's own (local).
HOME_ROOTS = ("/home/", "/root/")


class CheckFailed(RuntimeError):
    """The environment must not be offered; ``str()`` is the reason for the admin."""


@dataclass(frozen=True)
class Facts:
    """What the check found, recorded as labels on an image."""

    python: str
    jupyterhub: str
    cuda: str | None = None
    cuda_archs: tuple[str, ...] = ()

    @property
    def hub_major(self) -> str:
        return self.jupyterhub.split(".", 1)[0]

    def for_catalog(self) -> EnvironmentFacts:
        return EnvironmentFacts(
            python=self.python or None,
            hub_major=int(self.hub_major),
            cuda=self.cuda,
            cuda_archs=list(self.cuda_archs),
        )

    def labels(self) -> dict[str, str]:
        """The catalog's fact labels, and the full versions the build reads back
        (``from_labels``) to reuse a checked image without checking it again."""
        labels = {"hub-major": self.hub_major}
        if self.cuda:
            labels["cuda"] = self.cuda
        if self.cuda_archs:
            labels["cuda-archs"] = ",".join(self.cuda_archs)
        return {LABEL_PREFIX + key: value for key, value in labels.items()} | {
            BUILD_LABEL_PREFIX + "python": self.python,
            BUILD_LABEL_PREFIX + "jupyterhub": self.jupyterhub,
        }

    @classmethod
    def from_labels(cls, labels: dict[str, str]) -> Facts | None:
        """The facts a checked image carries; None for an image never checked."""
        version = labels.get(BUILD_LABEL_PREFIX + "jupyterhub")
        if not version:
            return None
        archs = labels.get(LABEL_PREFIX + "cuda-archs", "")
        return cls(
            python=labels.get(BUILD_LABEL_PREFIX + "python", ""),
            jupyterhub=version,
            cuda=labels.get(LABEL_PREFIX + "cuda") or None,
            cuda_archs=tuple(a for a in archs.split(",") if a),
        )


def probe_request(definition: Definition, *, serve: bool = True) -> str:
    """The probe's argument for this definition."""
    return json.dumps(
        {"imports": list(definition.imports), "cuda": definition.cuda, "serve": serve}
    )


def judge(
    output: str, definition: Definition, *, errors: str = "", hub_version: str | None = None
) -> Facts:
    """Facts from the probe's output, or CheckFailed with the first problem found."""
    hub_version = hub_version or jupyterhub.__version__
    lines = output.strip().splitlines()
    try:
        report = json.loads(lines[-1]) if lines else None
    except ValueError:
        report = None
    if not isinstance(report, dict):
        said = (output + errors).strip()[-300:] or "no output"
        raise CheckFailed(f"the probe gave no report: {said}")
    singleuser = report.get("singleuser")
    if not singleuser:
        raise CheckFailed("jupyterhub-singleuser is not installed (not on the PATH)")
    if singleuser.startswith(HOME_ROOTS):
        raise CheckFailed(
            f"jupyterhub-singleuser is under a home ({singleuser}): a volume mounted "
            "over the home would hide it; install it under /opt or /usr"
        )
    version = report.get("jupyterhub") or ""
    if version.split(".", 1)[0] != hub_version.split(".", 1)[0]:
        raise CheckFailed(
            f"jupyterhub {version or '(missing)'} in the environment, the hub runs "
            f"{hub_version}: the major versions must match"
        )
    failures = report.get("import_failures") or {}
    if failures:
        name, reason = next(iter(failures.items()))
        raise CheckFailed(f"the key package {name} does not import ({reason})")
    if report.get("serve_error"):
        raise CheckFailed(f"a Jupyter server cannot start: {report['serve_error']}")
    cuda = report.get("cuda") or {}
    if definition.cuda and (cuda.get("error") or not cuda.get("cuda")):
        raise CheckFailed(
            f"torch has no CUDA build: {cuda.get('error') or 'torch.version.cuda is None'}"
        )
    return Facts(
        python=str(report.get("python", "")),
        jupyterhub=version,
        cuda=cuda.get("cuda"),
        cuda_archs=tuple(cuda.get("archs") or ()),
    )
