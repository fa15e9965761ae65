"""The shapes a check expects where it reads an object (pure): mappings, lists, and the finding when a value has
another shape.

Rendered objects from plain manifests carry whatever the repository wrote; a check that reads
``spec.template.spec.domain`` must neither crash on a list there nor read past it silently (the API server,
nmstate or the CNI plugin would refuse it later). Used by ``reconciler.render.kinds``; imports only the
loader's path type.
"""

from __future__ import annotations

import reprlib
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


_SHORT = reprlib.Repr()
_SHORT.maxstring = _SHORT.maxother = 60
_SHORT.maxlist = _SHORT.maxdict = 4


def short(value: Any) -> str:
    """``repr(value)``, cut short: a message quotes a wrong value, not the megabyte string it may be."""
    return _SHORT.repr(value)


def utf8_size(text: str) -> int:
    """The bytes ``text`` is sent as (a lone surrogate, which YAML's pure-Python reader lets through, as the
    3 bytes of the replacement character it becomes), where the API server counts bytes, not characters."""
    return len(text.encode("utf-8", "surrogatepass"))


def what(value: Any) -> str:
    """A value's type as a message says it ("a number", "a list")."""
    names = {bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "a list", dict: "a mapping"}
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
        yield Finding(path, f"{label} must be a list, not {what(value)} ({short(value)})", value)


def must_be_mapping(value: Any, path: Path_, label: str | None = None) -> Iterator[Finding]:
    """Where the schema (or nmstate, or the CNI plugin) wants an object: a finding, where the checks would
    otherwise read nothing there."""
    if value is not None and not isinstance(value, dict):
        yield Finding(path, f"{label or path[-1]} must be a mapping, not {what(value)} ({short(value)})", value)
