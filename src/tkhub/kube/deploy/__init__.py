"""Kubernetes mode: render, preflight, apply, verify and uninstall a tkhub deployment.

Every name (namespace objects, PVCs, mount paths, labels) comes from ``names``,
so what ``apply`` creates is exactly what ``verify`` checks and ``uninstall`` removes.
Manifests and Helm values are built by pure functions returning plain dicts.
"""
