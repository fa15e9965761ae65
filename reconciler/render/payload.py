"""ConfigMap and Secret payloads as the API server checks them (pure): keys, string values, base64, 1 MiB.

A per-kind check of ``reconciler.render.kinds``, apart because the size is counted as the server counts it
(``ValidateConfigMap``, ``ValidateSecret``): the values' bytes, UTF-8 text as sent and base64 as decoded,
keys not counted, and a Secret's ``stringData`` replacing ``data`` of the same key.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator

from reconciler.model.loader import Path_
from reconciler.objects import Obj
from reconciler.render import syntax
from reconciler.render.shapes import Finding, utf8_size, what

MAX_DATA_BYTES = 1024 * 1024  # ConfigMap and Secret payload limit (corev1 MaxSecretSize)


def config_data(obj: Obj) -> Iterator[Finding]:
    """ConfigMap ``data``/``binaryData`` and Secret ``data``/``stringData``: string keys of the allowed
    characters, string values (base64 where the API decodes them), at most 1 MiB in all, counted as the API
    server counts it (the values' bytes: UTF-8 text, base64 decoded; a Secret's stringData replaces data)."""
    sizes: dict[str, int] = {}  # key -> payload bytes (one entry per key: stringData overrides data)
    base64_fields = ("binaryData",) if obj["kind"] == "ConfigMap" else ("data",)
    for field in ("data", "binaryData", "stringData"):
        block = obj.get(field)
        if block is None:
            continue
        if not isinstance(block, dict):
            yield Finding((field,), f"{field} must map keys to strings")
            continue
        for key, value in block.items():
            path: Path_ = (field, str(key))
            error = syntax.config_key(key) if isinstance(key, str) else f"{key!r} must be a string"
            if error:
                yield Finding(path, f"key {error}", key)
            if not isinstance(value, str):
                shown = what(value)
                yield Finding(path, f"{field}.{key} is {shown}; the API takes only strings here: quote it", value)
                continue
            if field not in base64_fields:
                size = utf8_size(value)
            elif (decoded := _base64(value)) is not None:
                size = len(decoded)
            else:
                yield Finding(path, f"{field}.{key} is not base64 (use stringData for plain text)", value)
                continue
            sizes[f"{field}/{key}" if obj["kind"] == "ConfigMap" else str(key)] = size
    size = sum(sizes.values())
    if size > MAX_DATA_BYTES:
        limit = MAX_DATA_BYTES
        yield Finding(("data",), f"{obj['kind']} payload is {size} bytes; the API server takes at most {limit}")


def _base64(value: str) -> bytes | None:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None
