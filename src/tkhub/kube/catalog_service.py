"""``python -m tkhub.kube.catalog_service``: the catalog with the cluster's GPUs.

The catalog Deployment runs it; its service account is bound to the inventory
role, so ``GET /api/v1/nodes/gpu`` answers from the cluster's nodes and pods.
"""

from __future__ import annotations

from tkhub.catalog.__main__ import main as serve_catalog
from tkhub.kube.inventory import ClusterInventory


def main() -> None:
    serve_catalog(ClusterInventory())


if __name__ == "__main__":
    main()
