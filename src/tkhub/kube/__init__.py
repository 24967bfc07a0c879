"""Kubernetes mode: TkKubeSpawner, pod status, GPU placement and ``tkhub deploy``."""
