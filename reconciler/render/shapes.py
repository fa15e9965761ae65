"""The shapes a check expects where it reads an object (pure): mappings, lists, and the finding when a value has
another shape.

Rendered objects from plain manifests carry whatever the repository wrote; a check that reads
``spec.template.spec.domain`` must neither crash on a list there nor read past it silently (the API server,
nmstate or the CNI plugin would refuse it later). Used by ``reconciler.render.kinds``; imports only the
loader's path type.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from reconciler.model.loader import Path_


@dataclass(frozen=True)
class Finding:
    """One problem in one object: where in the object, what, and the value to look for in a virtnet document."""

    path: Path_
    message: str
    value: object = None


def what(value: Any) -> str:
    """A value's type as a message says it ("a number", "a list")."""
    names = {bool: "a boolean", int: "a number", float: "a number", list: "a list", dict: "a mapping"}
    return "null" if value is None else names.get(type(value), f"a {type(value).__name__}")


def dig(obj: Any, *path: str | int) -> Any:
    """The value at ``path``, or None where any step is missing or not a mapping."""
    for part in path:
        obj = obj.get(part) if isinstance(obj, dict) else None
    return obj


def mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def must_be_list(value: Any, path: Path_, label: str) -> Iterator[Finding]:
    """Where the server (or, in an NNCP's open desiredState or a NAD's CNI JSON, nmstate or the CNI plugin)
    refuses anything but a list: a finding, where the checks would otherwise skip it or fail on it."""
    if value is not None and not isinstance(value, list):
        yield Finding(path, f"{label} must be a list, not {what(value)} ({value!r})", value)


def must_be_mapping(value: Any, path: Path_) -> Iterator[Finding]:
    """Where the schema says object: a finding, where the checks below would read nothing there."""
    if value is not None and not isinstance(value, dict):
        yield Finding(path, f"{path[-1]} must be a mapping, not {what(value)} ({value!r})", value)
