"""Render a small repository and pick objects out of the result."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from repos import write_repo

from reconciler.render import render_path


def render_files(tmp_path: Path, files: dict[str, str | bytes | None], base: bool = True) -> list[dict[str, Any]]:
    return render_path(write_repo(tmp_path / "repo", files, base=base))


def pick(objects: list[dict[str, Any]], kind: str, name: str, namespace: str | None = None) -> dict[str, Any]:
    found = [
        o
        for o in objects
        if o["kind"] == kind
        and o["metadata"]["name"] == name
        and (namespace is None or o["metadata"].get("namespace") == namespace)
    ]
    assert len(found) == 1, f"{kind}/{namespace}/{name}: {len(found)} found"
    return found[0]


def cni(nad: dict[str, Any]) -> dict[str, Any]:
    return json.loads(nad["spec"]["config"])
