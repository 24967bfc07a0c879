"""tkhub's spawners: ``LocalSpawner`` (this machine) and ``TkKubeSpawner`` (Kubernetes)."""

from __future__ import annotations

from typing import Any

__all__ = ["LocalSpawner", "TkKubeSpawner"]


def __getattr__(name: str) -> Any:
    # Imported on first use: the local mode never loads the Kubernetes client.
    if name == "LocalSpawner":
        from tkhub.spawners.local import LocalSpawner

        return LocalSpawner
    if name == "TkKubeSpawner":
        from tkhub.spawners.kube import TkKubeSpawner

        return TkKubeSpawner
    raise AttributeError(name)
