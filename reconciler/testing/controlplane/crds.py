"""Installing the CRDs an OpenShift Virtualization cluster has, and waiting until they are really usable.

Why wait for "served" as well as ``Established``: the condition flips before the apiserver's CR handler and
discovery have caught up, and the first apply of a custom resource right after it can still 404. Listing
each served version until it answers 200 is what envtest does too.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from reconciler.testing.controlplane import kubevirt
from reconciler.testing.controlplane.errors import ControlPlaneError
from reconciler.testing.controlplane.procs import REPO
from reconciler.testing.controlplane.rest import Rest, poll

SHARED_ENV = "VIRTNET_SHARED"
CRD_PATH = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"


def shared_dir() -> Path:
    """``$VIRTNET_SHARED`` or ``<repo>/../shared``, where the upstream CRD files are kept."""
    env = os.environ.get(SHARED_ENV)
    return Path(env) if env else REPO.parent / "shared"


def load(shared: Path | None = None) -> list[dict[str, Any]]:
    """Every CRD: the YAML files in ``shared/crds`` plus the KubeVirt ones generated from its swagger."""
    crd_dir = (shared or shared_dir()) / "crds"
    if not crd_dir.is_dir():
        raise ControlPlaneError(f"{crd_dir} not found; set ${SHARED_ENV} to the folder that holds crds/")
    out: list[dict[str, Any]] = []
    for path in sorted(crd_dir.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc.get("kind") == "CustomResourceDefinition":
                out.append(doc)
    out.extend(kubevirt.crds(crd_dir))
    return out


def _established(rest: Rest, name: str) -> dict[str, Any] | None:
    status, crd = rest.get(f"{CRD_PATH}/{name}")
    if status != 200:
        return None
    conditions = {c["type"]: c for c in (crd.get("status") or {}).get("conditions") or []}
    if conditions.get("NamesAccepted", {}).get("status") == "False":
        raise ControlPlaneError(f"CRD {name} names not accepted: {conditions['NamesAccepted'].get('message')}")
    return crd if conditions.get("Established", {}).get("status") == "True" else None


def install(rest: Rest, crds: list[dict[str, Any]], *, timeout: float = 60.0) -> list[str]:
    """Apply all ``crds``, then wait until each is Established and every served version lists. Returns names."""
    for crd in crds:
        rest.apply(f"{CRD_PATH}/{crd['metadata']['name']}", crd)
    names = []
    for crd in crds:
        name = crd["metadata"]["name"]
        live = poll(f"CRD {name} Established", lambda n=name: _established(rest, n), timeout=timeout)
        spec = live["spec"]
        for version in spec["versions"]:
            if version.get("served"):
                path = f"/apis/{spec['group']}/{version['name']}/{spec['names']['plural']}"
                poll(f"{path} served", lambda p=path: True if rest.get(p)[0] == 200 else None, timeout=timeout)
        names.append(name)
    return names
