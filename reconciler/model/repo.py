"""Documents → typed entries (pure): each YAML document parsed into its schema, errors mapped to file:line: field.

``reconciler.model.load`` runs this over a whole repository and then the cross-document rules.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, Literal, TypeVar

from pydantic import Field, ValidationError

from reconciler.errors import Problem, SourceRef
from reconciler.model.cluster import ClusterSpec
from reconciler.model.compose import Path_
from reconciler.model.loader import Document, format_path
from reconciler.model.networks import BridgeNetworkSpec, NodeNetworkSpec, OvnNetworkSpec, SriovNetworkSpec
from reconciler.model.types import DNSLabel, Model
from reconciler.model.vm import VMSpec

API_GROUP = "virtnet.io"
API_VERSION = f"{API_GROUP}/v1alpha1"

S = TypeVar("S", bound=Model)


class Metadata(Model):
    name: DNSLabel
    namespace: DNSLabel | None = None
    clusters: list[DNSLabel] = Field(default_factory=list)
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


class _Envelope(Model):
    api_version: Literal["virtnet.io/v1alpha1"]
    kind: str
    metadata: Metadata
    spec: Any


SPECS: dict[str, type[Model]] = {
    "Cluster": ClusterSpec,
    "BridgeNetwork": BridgeNetworkSpec,
    "NodeNetwork": NodeNetworkSpec,
    "SriovNetwork": SriovNetworkSpec,
    "OvnNetwork": OvnNetworkSpec,
    "VM": VMSpec,
}
NETWORK_KINDS = ("BridgeNetwork", "SriovNetwork", "OvnNetwork")


@dataclass(frozen=True)
class Entry(Generic[S]):
    """A validated virtnet document, with the document it came from (for locations)."""

    kind: str
    meta: Metadata
    spec: S
    doc: Document

    @property
    def name(self) -> str:
        return self.meta.name

    def ref(self, *path: str | int) -> SourceRef:
        return self.doc.ref(path)


@dataclass(frozen=True)
class Raw:
    """A plain Kubernetes manifest that passes through (validated for kind and namespace, then owned)."""

    obj: dict[str, Any]
    doc: Document

    def ref(self, *path: str | int) -> SourceRef:
        return self.doc.ref(path)


@dataclass
class Repo:
    """Everything one cluster's render needs, already schema-valid and cross-checked."""

    root: Path
    cluster: Entry[ClusterSpec]
    entries: list[Entry[Any]] = field(default_factory=list)
    raw: list[Raw] = field(default_factory=list)
    broken: set[str] = field(default_factory=set)  # names of documents that did not pass their schema

    def of(self, kind: str) -> list[Entry[Any]]:
        """The entries of ``kind``, in repository order (a new list: callers may keep or change it)."""
        return list(self._by_kind.get(kind, ()))

    @functools.cached_property
    def _by_kind(self) -> dict[str, list[Entry[Any]]]:
        # built once: the rules and the render ask for each kind many times (17 scans of 10,000 entries);
        # ``entries`` is not changed after the Repo is made
        out: dict[str, list[Entry[Any]]] = {}
        for e in self.entries:
            out.setdefault(e.kind, []).append(e)
        return out

    @property
    def networks(self) -> dict[str, Entry[Any]]:
        return {e.name: e for e in self._networks}

    @functools.cached_property
    def _networks(self) -> list[Entry[Any]]:
        return [e for e in self.entries if e.kind in NETWORK_KINDS]  # in repository order, as before


def _indexes(container: Any, part: str | int) -> bool:
    """Whether ``container[part]`` exists (a key of a mapping, or a valid index of a list)."""
    if isinstance(container, dict):
        return part in container
    return isinstance(container, list) and isinstance(part, int) and 0 <= part < len(container)


def _schema_path(data: Any, loc: Iterable[str | int], missing: bool) -> Path_:
    """Keep the parts of a pydantic ``loc`` that index into the data (drops union/validator tags)."""
    path: list[str | int] = []
    cur = data
    parts = list(loc)
    for i, part in enumerate(parts):
        if _indexes(cur, part):
            cur = cur[part]
            path.append(part)
        elif missing and i == len(parts) - 1 and isinstance(cur, dict):
            path.append(part)
    return tuple(path)


_TYPE_ERRORS = frozenset({"int_type", "float_type", "bool_type", "string_type", "list_type", "dict_type"})


def _as_yaml(value: Any) -> str:
    """A found value as the YAML that reads as it: ``true``, ``null``, ``'100'``, ``a list``."""
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if value is None:
        return "null"
    if isinstance(value, str):
        return f"the string {_short(value)}"
    if isinstance(value, int | float):
        return f"the number {value}"
    return "a mapping" if isinstance(value, dict) else "a list" if isinstance(value, list) else type(value).__name__


def _schema_problems(doc: Document, exc: ValidationError, prefix: Path_ = ()) -> list[Problem]:
    """Pydantic errors → problems located in the document (``prefix`` re-roots a sub-model's errors)."""
    out = []
    for err in exc.errors():
        loc = (*prefix, *err["loc"])
        path = _schema_path(doc.data, loc, missing=err["type"] == "missing")
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown field (check the spelling; unknown fields are errors)"
        elif err["type"] == "literal_error":
            msg = f"{msg}, got {err.get('input')!r}"
        elif err["type"] in _TYPE_ERRORS:  # strict models: say what was found (``true`` is not 1)
            msg = f"{msg}, got {_as_yaml(err.get('input'))}"
        elif err["type"] == "model_type" and not err["loc"]:
            msg = f"{format_path(prefix) or 'document'} must be a mapping"
        out.append(Problem(SourceRef(doc.file, doc.line_of(path), format_path(path)), msg))
    return out


def parse_document(doc: Document) -> tuple[Entry[Any] | Raw | None, list[Problem]]:
    data = doc.data
    if not isinstance(data, dict):
        return None, [Problem(doc.ref(), "a document must be a mapping with apiVersion and kind")]
    api_version = data.get("apiVersion")
    kind = data.get("kind")
    if not isinstance(api_version, str) or not api_version:
        return None, [Problem(doc.ref(("apiVersion",)), "apiVersion is required")]
    if not isinstance(kind, str) or not kind:
        return None, [Problem(doc.ref(("kind",)), "kind is required")]
    if api_version.split("/")[0] != API_GROUP:
        return _parse_raw(doc)
    if kind not in SPECS:
        known = ", ".join(sorted(SPECS))
        return None, [Problem(doc.ref(("kind",)), f"unknown kind {kind!r} in {API_GROUP} (known: {known})")]
    problems: list[Problem] = []
    try:
        env = _Envelope.model_validate(data)
    except ValidationError as exc:
        problems += _schema_problems(doc, exc)
    try:
        spec = SPECS[kind].model_validate(data.get("spec"))
    except ValidationError as exc:
        problems += _schema_problems(doc, exc, prefix=("spec",))
    if problems:
        return None, problems
    if kind == "VM" and env.metadata.namespace is None:
        return None, [Problem(doc.ref(("metadata", "namespace")), "a VM needs metadata.namespace")]
    if kind != "VM" and env.metadata.namespace is not None:
        return None, [Problem(doc.ref(("metadata", "namespace")), f"{kind} is cluster-wide: drop namespace")]
    return Entry(kind, env.metadata, spec, doc), []


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:40] + "…"


def _parse_raw(doc: Document) -> tuple[Raw | None, list[Problem]]:
    meta = doc.data.get("metadata")
    if not isinstance(meta, dict) or not isinstance(meta.get("name"), str) or not meta["name"]:
        return None, [Problem(doc.ref(("metadata", "name")), "metadata.name is required")]
    namespace = meta.get("namespace")
    if namespace is not None and (not isinstance(namespace, str) or not namespace):
        message = f"metadata.namespace must be a non-empty string (not {_short(namespace)})"
        return None, [Problem(doc.ref(("metadata", "namespace")), message)]
    for key in ("labels", "annotations"):
        value = meta.get(key, {})
        if not isinstance(value, dict):
            return None, [Problem(doc.ref(("metadata", key)), f"metadata.{key} must map strings to strings")]
        for k, v in value.items():
            if not isinstance(k, str) or not isinstance(v, str):
                message = f"metadata.{key} must map strings to strings (not {_short(k)}: {_short(v)})"
                return None, [Problem(doc.ref(("metadata", key)), message)]
    return Raw(doc.data, doc), []
