"""``tkhub images build``: definitions built as OCI images with buildah, in dependency
order, each checked before it may be pushed.

An image is tagged ``<version>-<content hash>`` (the hash covers the definitions, locks
and Containerfiles of its whole chain) and labelled with the image ID of the chain's
root base: the two together say what it was built from. An image that exists with
both already is not built again: asked first of the target registry (``--push``: its
manifest, by skopeo), so a second machine pushes no duplicate, then of local storage.
The check runs ``probe.py`` inside a freshly built image (``buildah run``) and records
its facts as labels (hub major, CUDA, compiled architectures) in one commit; an image
reused is not checked or committed again, so its digest stays. A failed build or check
skips the image's descendants; siblings still build.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from tkhub.environments.checks import (
    BUILD_LABEL_PREFIX,
    PROBE,
    CheckFailed,
    Facts,
    judge,
    probe_request,
)
from tkhub.environments.containerfile import IMAGE_PREFIX, VENV, base_reference
from tkhub.environments.definition import Definition, build_order, content_hash
from tkhub.environments.steps import StepFailed, run_step

CA_MOUNT = "/run/tkhub-ca-bundle.crt"
PROBE_IN_IMAGE = "/tmp/tkhub-probe.py"
BASE_LABEL = BUILD_LABEL_PREFIX + "base"  # image ID of the chain's root base
NOT_IN_REGISTRY = ("manifest unknown", "not found", "name unknown")  # skopeo's words

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
    digest: str = ""  # the registry's manifest digest when pushed or found there
    source: str = ""  # where a child's build takes this image FROM: local tag or registry
    base_id: str = ""  # the chain's root base, as labelled


@dataclass(frozen=True)
class Existing:
    """An image of the right tag found locally or in the registry."""

    labels: dict[str, str]
    digest: str = ""


@dataclass(frozen=True)
class BuildOptions:
    base: str | None = None  # FROM of a root definition (its Containerfile's default otherwise)
    ca_bundle: Path | None = None
    index_url: str | None = None
    platform: str | None = None
    push: str | None = None  # REGISTRY/PREFIX
    tls_verify: bool = True
    buildah: str = "buildah"
    skopeo: str = "skopeo"  # asks the registry what it has (with --push)


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

    @property
    def tls_flag(self) -> str:
        """How buildah and skopeo are told to verify the registry's TLS (or not)."""
        return f"--tls-verify={str(self.options.tls_verify).lower()}"

    def image_id(self, ref: str) -> str | None:
        """The local image's ID (its config digest), None when not in local storage."""
        done = subprocess.run(
            [self.options.buildah, "images", "--no-trunc", "--quiet", ref],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        lines = done.stdout.split()
        return lines[0] if done.returncode == 0 and lines else None

    def base_id(self, name: str, base: str) -> str:
        """The root base's image ID, pulled first when it is not local (as the build
        would)."""
        found = self.image_id(base)
        if found is None:
            self._buildah(name, "pull", "pull", "--quiet", self.tls_flag, base)
            found = self.image_id(base)
        if found is None:
            raise StepFailed("pull", f"the base image {base} is not in local storage after it")
        return found

    def local(self, tag: str) -> Existing | None:
        if self.image_id(tag) is None:
            return None
        return Existing(inspect_labels(tag, self.options.buildah))

    def remote(self, name: str, ref: str) -> Existing | None:
        """The registry's manifest of ``ref``: its digest and labels; None when the
        registry does not have it. Any other answer stops this image (not pushed twice)."""
        done = subprocess.run(
            [self.options.skopeo, "inspect", self.tls_flag, f"docker://{ref}"],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            said = done.stderr.strip().splitlines()[-1:] or ["no answer"]
            if any(word in said[0].lower() for word in NOT_IN_REGISTRY):
                return None
            raise StepFailed("registry", f"cannot ask for {ref} (not pushed): {said[0][-300:]}")
        found = json.loads(done.stdout)
        self.progress(name, f"{ref} is in the registry as {found.get('Digest', '')}")
        return Existing(dict(found.get("Labels") or {}), str(found.get("Digest") or ""))

    def target(self, definition: Definition, tag: str, ref_tag: str | None = None) -> str:
        assert self.options.push
        version = ref_tag or tag.rsplit(":", 1)[1]
        return f"{self.options.push.rstrip('/')}/{definition.name}:{version}"

    def build(self, definition: Definition, base: str, tag: str, base_id: str) -> None:
        args = ["bud", "--layers=false", "-f", str(definition.containerfile), "-t", tag]
        args += ["--build-arg", f"BASE={base}", "--label", f"{BASE_LABEL}={base_id}"]
        args += [self.tls_flag]  # a parent to pull
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

    def push(self, definition: Definition, tag: str, digest_file: Path) -> list[str]:
        """Push the version tag and ``latest``; the manifest's digest to ``digest_file``."""
        pushed = []
        for ref_tag in (None, "latest"):
            dest = self.target(definition, tag, ref_tag)
            args = ["push", self.tls_flag]
            args += ["--digestfile", str(digest_file), tag]
            self._buildah(definition.name, "push", *args, f"docker://{dest}")
            pushed.append(dest)
        return pushed


def reusable(found: Existing | None, base_id: str) -> Facts | None:
    """The facts of an existing image built from the same base and checked; else None."""
    if found is None or found.labels.get(BASE_LABEL) != base_id:
        return None
    return Facts.from_labels(found.labels)


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
        result = ImageResult(definition.name, tag, Outcome.built, source=tag)
        try:
            _build_one(builder, definition, tag, parent, result)
        except CheckFailed as e:
            result.outcome, result.reason = Outcome.failed, f"check: {e}"
            subprocess.run([options.buildah, "rmi", tag], capture_output=True)
        except StepFailed as e:
            result.outcome, result.reason = Outcome.failed, str(e)
        results[definition.name] = result
    return list(results.values())


def _build_one(
    builder: Builder, definition: Definition, tag: str, parent: ImageResult | None,
    result: ImageResult,
) -> None:  # fmt: skip
    """One image: found in the registry, found locally, or built and checked; pushed
    when the registry does not have it yet."""
    name, options = definition.name, builder.options
    if parent is not None:
        base, result.base_id = parent.source, parent.base_id
    else:
        base = options.base or base_reference(definition)
        result.base_id = builder.base_id(name, base)
    if options.push:
        in_registry = builder.remote(name, builder.target(definition, tag))
        result.facts = reusable(in_registry, result.base_id)
        if result.facts is not None and in_registry is not None:
            result.outcome, result.digest = Outcome.unchanged, in_registry.digest
            if builder.local(tag) is None:  # a child here builds FROM the registry's
                result.source = builder.target(definition, tag)
            result.reason = "in the registry already: nothing pushed"
            builder.progress(name, f"{tag}: {result.reason}")
            return
    result.facts = reusable(builder.local(tag), result.base_id)
    if result.facts is not None:
        result.outcome, result.reason = Outcome.unchanged, "built here already"
        builder.progress(name, f"{tag} exists: unchanged, not rebuilt")
    else:
        builder.build(definition, base, tag, result.base_id)
        result.facts = builder.check_and_label(definition, tag)
    if options.push:
        with tempfile.TemporaryDirectory(prefix="tkhub-push-") as work:
            digest_file = Path(work) / "digest"
            result.pushed = builder.push(definition, tag, digest_file)
            result.digest = digest_file.read_text().strip()


def inspect_labels(tag: str, buildah: str = "buildah") -> dict[str, str]:
    """The labels of a local image (for ``tkhub images list`` and the tests)."""
    done = subprocess.run(
        [buildah, "inspect", "--type", "image", tag], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        return {}
    data = json.loads(done.stdout)
    return dict(data.get("OCIv1", {}).get("config", {}).get("Labels") or {})
