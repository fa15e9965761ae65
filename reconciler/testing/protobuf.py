"""Kubernetes protobuf request bodies, for the few kinds ``kubectl create <kind>`` sends that way.

Why: kubectl's typed clients send built-in objects as ``application/vnd.kubernetes.protobuf`` (``kubectl create
namespace``, ``create configmap``, ``create secret generic``, ``create serviceaccount``) and do not retry as JSON
on a 415. A real server decodes them; so does the double, for these kinds. Any other protobuf body is 415 (a
real server would decode every built-in kind; custom resources have no protobuf form there either).

The format: the 4 bytes ``k8s\\0``, then a ``runtime.Unknown`` message (1: TypeMeta {1: apiVersion, 2: kind},
2: raw, the object's own message), each object message with ``metadata`` (ObjectMeta) as field 1. Field numbers
are those of k8s.io/api's ``generated.proto``; only what these kinds' creation carries is read, the rest skipped.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from typing import Any

MAGIC = b"k8s\x00"
Obj = dict[str, Any]


class ProtobufError(ValueError):
    """Not a protobuf body the double can read."""


def _varint(data: bytes, i: int) -> tuple[int, int]:
    out, shift = 0, 0
    while True:
        if i >= len(data):
            raise ProtobufError("truncated varint")
        b = data[i]
        out |= (b & 0x7F) << shift
        i += 1
        if not b & 0x80:
            return out, i
        shift += 7


def fields(data: bytes) -> Iterator[tuple[int, int | bytes]]:
    """(field number, value) pairs: an int for varints, bytes for length-delimited fields."""
    i = 0
    while i < len(data):
        key, i = _varint(data, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(data, i)
            yield number, value
        elif wire == 2:
            size, i = _varint(data, i)
            yield number, data[i:i + size]
            i += size
        elif wire in (1, 5):
            i += 8 if wire == 1 else 4
        else:
            raise ProtobufError(f"unsupported wire type {wire}")


def _text(v: int | bytes) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def _entry(v: int | bytes) -> tuple[str, bytes]:
    parts = dict(fields(v)) if isinstance(v, bytes) else {}
    key, value = parts.get(1, b""), parts.get(2, b"")
    return _text(key), value if isinstance(value, bytes) else b""


def _meta(data: bytes) -> Obj:
    meta: Obj = {}
    names = {1: "name", 2: "generateName", 3: "namespace"}
    for n, v in fields(data):
        if n in names and _text(v):  # proto2 writes empty strings that JSON would omit
            meta[names[n]] = _text(v)
        elif n in (11, 12):
            key, value = _entry(v)
            meta.setdefault("labels" if n == 11 else "annotations", {})[key] = value.decode()
        elif n == 14:
            meta.setdefault("finalizers", []).append(_text(v))
    return meta


def _namespace(n: int, v: int | bytes, obj: Obj) -> None:
    finalizers = [_text(f) for k, f in fields(v) if k == 1] if n == 2 and isinstance(v, bytes) else []
    if finalizers:
        obj["spec"] = {"finalizers": finalizers}


def _configmap(n: int, v: int | bytes, obj: Obj) -> None:
    if n in (2, 3):
        key, value = _entry(v)
        if n == 2:
            obj.setdefault("data", {})[key] = value.decode()
        else:
            obj.setdefault("binaryData", {})[key] = base64.b64encode(value).decode()
    elif n == 4:
        obj["immutable"] = bool(v)


def _secret(n: int, v: int | bytes, obj: Obj) -> None:
    if n in (2, 4):
        key, value = _entry(v)
        if n == 2:
            obj.setdefault("data", {})[key] = base64.b64encode(value).decode()
        else:
            obj.setdefault("stringData", {})[key] = value.decode()
    elif n == 3 and _text(v):
        obj["type"] = _text(v)
    elif n == 5:
        obj["immutable"] = bool(v)


def _serviceaccount(n: int, v: int | bytes, obj: Obj) -> None:
    if n == 4:
        obj["automountServiceAccountToken"] = bool(v)


_KINDS: dict[tuple[str, str], Callable[[int, int | bytes, Obj], None]] = {
    ("v1", "Namespace"): _namespace, ("v1", "ConfigMap"): _configmap, ("v1", "Secret"): _secret,
    ("v1", "ServiceAccount"): _serviceaccount,
}


def decode(body: bytes) -> Obj:
    """The object of a protobuf request body, as JSON would have carried it; ProtobufError if unreadable."""
    if not body.startswith(MAGIC):
        raise ProtobufError("no k8s protobuf envelope")
    envelope = dict(fields(body[len(MAGIC):]))
    type_meta, raw = envelope.get(1, b""), envelope.get(2, b"")
    if not isinstance(type_meta, bytes) or not isinstance(raw, bytes):
        raise ProtobufError("malformed envelope")
    tm = {n: _text(v) for n, v in fields(type_meta)}
    api_version, kind = tm.get(1, ""), tm.get(2, "")
    reader = _KINDS.get((api_version, kind))
    if reader is None:
        raise ProtobufError(f"the double decodes protobuf only for {', '.join(k for _, k in _KINDS)}, not {kind}")
    obj: Obj = {"apiVersion": api_version, "kind": kind, "metadata": {}}
    for n, v in fields(raw):
        if n == 1 and isinstance(v, bytes):
            obj["metadata"] = _meta(v)
        else:
            reader(n, v, obj)
    return obj
