"""``tkhub deploy render``: manifests and chart values written to a directory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tkhub.kube.deploy.cluster import ClusterConfig
from tkhub.kube.deploy.manifests import render_manifests
from tkhub.kube.deploy.values import render_values

MANIFESTS_DIR = "manifests"
VALUES_FILE = "values.yaml"


def manifest_file_name(index: int, obj: dict[str, Any]) -> str:
    """``03-persistentvolumeclaim-tkhub-models.yaml``: apply order, kind, name."""
    return f"{index:02d}-{obj['kind'].lower()}-{obj['metadata']['name']}.yaml"


def dump(obj: Any) -> str:
    return yaml.safe_dump(obj, sort_keys=False, default_flow_style=False)


def render(cfg: ClusterConfig, out_dir: Path) -> list[Path]:
    """Write one file per object plus ``values.yaml``; stale manifests are removed."""
    manifests_dir = out_dir / MANIFESTS_DIR
    manifests_dir.mkdir(parents=True, exist_ok=True)
    for old in manifests_dir.glob("*.yaml"):
        old.unlink()  # a removed object must not linger in a GitOps directory
    written = []
    for index, obj in enumerate(render_manifests(cfg)):
        path = manifests_dir / manifest_file_name(index, obj)
        path.write_text(dump(obj))
        written.append(path)
    values = out_dir / VALUES_FILE
    values.write_text(dump(render_values(cfg)))
    written.append(values)
    return written
