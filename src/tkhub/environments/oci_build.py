"""``tkhub images build``: definitions built as OCI images with buildah, in dependency
order, each checked before it may be pushed.

An image is tagged ``<version>-<content hash>``; an image whose tag exists already is
not rebuilt. The check runs ``probe.py`` inside the built image (``buildah run``) and
records its facts as labels (hub major, CUDA, compiled architectures). A failed build
or check skips the image's descendants; siblings still build.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from tkhub.environments.checks import PROBE, CheckFailed, Facts, judge, probe_request
from tkhub.environments.containerfile import IMAGE_PREFIX, VENV, base_reference
from tkhub.environments.definition import Definition, build_order, content_hash
from tkhub.environments.steps import StepFailed, run_step

CA_MOUNT = "/run/tkhub-ca-bundle.crt"
PROBE_IN_IMAGE = "/tmp/tkhub-probe.py"

Progress = Callable[[str, str], None]  # (image name, line)


class Outcome(StrEnum):
    built = "built"
    unchanged = "unchanged"
    failed = "failed"
    skipped = "skipped"


@dataclass
class ImageResult:
    name: str
    tag: str
    outcome: Outcome
    reason: str = ""
    facts: Facts | None = None
    pushed: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class BuildOptions:
    base: str | None = None  # FROM of a root definition (its Containerfile's default otherwise)
    ca_bundle: Path | None = None
    index_url: str | None = None
    platform: str | None = None
    push: str | None = None  # REGISTRY/PREFIX
    tls_verify: bool = True
    buildah: str = "buildah"


def image_tag(definition: Definition, known: dict[str, Definition]) -> str:
    return f"{IMAGE_PREFIX}{definition.name}:{definition.version}-{content_hash(definition, known)}"


class Builder:
    """Runs buildah for one ``tkhub images build``."""

    def __init__(self, options: BuildOptions, progress: Progress) -> None:
        self.options = options
        self.progress = progress

    def _buildah(self, name: str, step: str, *args: str, timeout: float = 3600) -> str:
        def on_line(line: str) -> None:
            self.progress(name, line)

        return run_step(step, [self.options.buildah, *args], on_line, timeout=timeout)

    def exists(self, tag: str) -> bool:
        done = subprocess.run(
            [self.options.buildah, "images", "--quiet", tag], capture_output=True, check=False
        )
        return done.returncode == 0 and bool(done.stdout.strip())

    def build(self, definition: Definition, base: str, tag: str) -> None:
        args = ["bud", "--layers=false", "-f", str(definition.containerfile), "-t", tag]
        args += ["--build-arg", f"BASE={base}"]
        if self.options.ca_bundle:
            args += ["-v", f"{self.options.ca_bundle.resolve()}:{CA_MOUNT}:ro"]
            args += ["--build-arg", f"CA_BUNDLE={CA_MOUNT}"]
        if self.options.index_url:
            args += ["--build-arg", f"INDEX_URL={self.options.index_url}"]
        if self.options.platform:
            args += ["--platform", self.options.platform]
        for key, value in definition.labels().items():  # the definition wins over the file
            args += ["--label", f"{key}={value}"]
        self._buildah(definition.name, "build", *args, str(definition.path))

    def check_and_label(self, definition: Definition, tag: str) -> Facts:
        """Run the probe in the image; on success commit its facts as labels."""
        name = definition.name
        container = self._buildah(name, "check", "from", "--pull-never", tag).splitlines()[-1]
        try:
            self._buildah(name, "check", "copy", container, str(PROBE), PROBE_IN_IMAGE)
            done = subprocess.run(
                [self.options.buildah, "run", container, "--", f"{VENV}/bin/python",
                 PROBE_IN_IMAGE, probe_request(definition)],
                capture_output=True, text=True, timeout=600, check=False,
            )  # fmt: skip
            facts = judge(done.stdout, definition, errors=done.stderr)
            self._buildah(
                name, "check", "run", "--user", "0:0", container, "--", "rm", "-f", PROBE_IN_IMAGE
            )
            labels = [a for k, v in facts.labels().items() for a in ("--label", f"{k}={v}")]
            self._buildah(name, "label", "config", *labels, container)
            self._buildah(name, "label", "commit", "--quiet", container, tag)
            return facts
        finally:
            subprocess.run([self.options.buildah, "rm", container], capture_output=True)

    def push(self, definition: Definition, tag: str) -> list[str]:
        assert self.options.push
        version = tag.rsplit(":", 1)[1]
        pushed = []
        for ref_tag in (version, "latest"):
            dest = f"{self.options.push.rstrip('/')}/{definition.name}:{ref_tag}"
            args = ["push", f"--tls-verify={str(self.options.tls_verify).lower()}", tag]
            self._buildah(definition.name, "push", *args, f"docker://{dest}")
            pushed.append(dest)
        return pushed


def build_images(
    known: dict[str, Definition],
    names: list[str],
    options: BuildOptions,
    progress: Progress,
) -> list[ImageResult]:
    """Build, check and (optionally) push ``names`` and their ancestors, parents first."""
    builder = Builder(options, progress)
    results: dict[str, ImageResult] = {}
    for definition in build_order(known, names):
        tag = image_tag(definition, known)
        parent = results.get(definition.parent or "")
        if parent and parent.outcome in (Outcome.failed, Outcome.skipped):
            reason = f"its parent {parent.name} was {parent.outcome.value}"
            results[definition.name] = ImageResult(definition.name, tag, Outcome.skipped, reason)
            continue
        result = ImageResult(definition.name, tag, Outcome.built)
        try:
            if builder.exists(tag):
                result.outcome = Outcome.unchanged
                progress(definition.name, f"{tag} exists: unchanged, not rebuilt")
            else:
                base = parent.tag if parent else (options.base or base_reference(definition))
                builder.build(definition, base, tag)
            result.facts = builder.check_and_label(definition, tag)
            if options.push:
                result.pushed = builder.push(definition, tag)
        except CheckFailed as e:
            result.outcome, result.reason = Outcome.failed, f"check: {e}"
            subprocess.run([options.buildah, "rmi", tag], capture_output=True)
        except StepFailed as e:
            result.outcome, result.reason = Outcome.failed, str(e)
        results[definition.name] = result
    return list(results.values())


def inspect_labels(tag: str, buildah: str = "buildah") -> dict[str, str]:
    """The labels of a local image (for ``tkhub images list`` and the tests)."""
    done = subprocess.run(
        [buildah, "inspect", "--type", "image", tag], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        return {}
    data = json.loads(done.stdout)
    return dict(data.get("OCIv1", {}).get("config", {}).get("Labels") or {})
