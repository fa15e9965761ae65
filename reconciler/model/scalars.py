"""What a YAML scalar means in a virtnet repository: one answer, or a refusal that says what to write.

Pure: strings in, values out (the loader calls it for every scalar it reads).

Plain (unquoted) scalars are read by the YAML 1.2 core schema, except that a scalar YAML 1.1 reads as
something else is refused instead of guessed. YAML 1.1 is what PyYAML and go-yaml v2 (behind kubectl's
``sigs.k8s.io/yaml``) implement, so such a scalar means different things to different tools, and to the
person who wrote it:

* ``true``/``false`` (also ``True``, ``TRUE``...) are booleans. ``yes``/``no``/``on``/``off`` in the same
  case styles are refused (YAML 1.1 booleans, YAML 1.2 strings): write ``true``/``false``, or quote them
  for a string. ``y``/``n`` are strings, as in PyYAML and YAML 1.2 (only go-yaml v2 reads them as
  booleans), so ``name: n`` works;
* integers are plain decimal (``-12``, ``+5``, ``100``) and 64-bit. ``0100`` (octal 64 in YAML 1.1, 100 in
  YAML 1.2), ``0o17``, ``0x1F``, ``0b101`` and digit separators (``1_000``) are refused, with the decimal
  number to write;
* floats are decimal with a point or an exponent (``0.25``, ``1e3``) and finite: ``.inf``, ``.nan`` and
  values beyond a 64-bit float are refused (no field means them, JSON cannot carry them);
* ``~``, ``null`` and the empty scalar are null. Everything else is a string, including what YAML 1.1
  reads as base-60 numbers (``1:30``, a MAC like ``12:34:56:78:9a:bc``) or timestamps (``2024-01-01``), as
  YAML 1.2 and kubectl read them;
* quoted and block scalars are strings;
* explicit tags: ``!!str`` and the non-specific ``!`` make a string (``!!str 0100`` is "0100"); ``!!int``,
  ``!!float``, ``!!bool`` and ``!!null`` follow the rules above; ``!!map`` and ``!!seq`` are accepted on
  their own kind; every other tag (``!!set``, ``!!omap``, ``!!pairs``, ``!!binary``, ``!!timestamp``,
  ``!local``...) is refused rather than silently dropped.

Mapping keys must be strings (the composer refuses ``80:``, ``true:`` or ``~:`` as keys: quote them).
A value keeps the one type read here: the models validate in pydantic's strict mode, so ``vlan: true``
is not VLAN 1 and ``"100"`` is not 100 (``reconciler.model.types.Model``).
"""

from __future__ import annotations

import math
import re
from typing import Any

from reconciler.model.limits import MAX_INT_DIGITS

_TAG = "tag:yaml.org,2002:"
STR_TAG = _TAG + "str"
_INT64 = range(-(2**63), 2**63)


class Bad:
    """A refused scalar; ``message`` says why and what to write instead."""

    __slots__ = ("message",)

    def __init__(self, message: str) -> None:
        self.message = message


def shown(raw: str) -> str:
    """``raw`` cut to a length a message can quote."""
    return raw if len(raw) <= 40 else raw[:40] + "…"


_NULLS = frozenset({"", "~", "null", "Null", "NULL"})
_BOOLS = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
_YAML11_BOOLS = {
    **dict.fromkeys(("yes", "Yes", "YES", "on", "On", "ON"), "true"),
    **dict.fromkeys(("no", "No", "NO", "off", "Off", "OFF"), "false"),
}
_NUMERIC_START = frozenset("0123456789+-.")
_DECIMAL_INT = re.compile(r"[-+]?(?:0|[1-9][0-9]*)")
_DECIMAL_FLOAT = re.compile(r"[-+]?(?:[0-9]+\.[0-9]*|\.[0-9]+|[0-9]+(?=[eE]))(?:[eE][-+]?[0-9]+)?")
_NON_FINITE = re.compile(r"[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)")
_OTHER_BASE = re.compile(r"[-+]?0(?:[xX][0-9a-fA-F_]+|[oO][0-7_]+|[bB][01_]+)")
_LEADING_ZERO = re.compile(r"[-+]?0[0-9]+")
_SEPARATED = re.compile(r"[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?(?:[eE][-+]?[0-9]+)?")
_BASE_NAMES = {"x": "a hexadecimal", "o": "an octal", "b": "a binary"}


def _integer(raw: str) -> int | Bad:
    digits = len(raw) - (raw[0] in "+-")
    value = int(raw) if digits <= MAX_INT_DIGITS else None
    if value is None or value not in _INT64:
        return Bad(f"integer {shown(raw)} is out of range (integers are 64-bit, like Kubernetes')")
    return value


def _float(raw: str) -> float | Bad:
    value = float(raw)  # linear in the length, which MAX_SCALAR_CHARS bounds
    if not math.isfinite(value):
        return Bad(f"{shown(raw)} is too large for a 64-bit float")
    return value


def _not_decimal(raw: str) -> Bad | None:
    """The refusal of a number YAML 1.1 reads in another base or with separators; None for anything else."""
    quote = f"or quote it ('{shown(raw)}') for a string"
    if _OTHER_BASE.fullmatch(raw):
        base = _BASE_NAMES[raw.lstrip("+-")[1].lower()]
        digits = raw.replace("_", "")
        value = int(digits, 0) if len(raw) <= 4 * MAX_INT_DIGITS and digits.lstrip("+-")[2:] else None
        decimal = f"write {value}" if value is not None else "write it in decimal"
        return Bad(f"{shown(raw)} is {base} number; numbers must be plain decimal: {decimal}, {quote}")
    if _LEADING_ZERO.fullmatch(raw):
        sign, decimal = ("-" if raw[0] == "-" else ""), raw.lstrip("+-").lstrip("0") or "0"
        if len(decimal) > MAX_INT_DIGITS:
            return Bad(f"{shown(raw)} has a leading zero (octal in YAML 1.1); write it without, {quote}")
        if set(decimal) <= set("01234567"):
            octal = int(sign + decimal, 8)
            if octal == int(sign + decimal):  # 00, 07: the same number either way, only the spelling is refused
                return Bad(f"{raw} has a leading zero (octal in YAML 1.1); write {octal}, {quote}")
            return Bad(
                f"{raw} is octal ({octal}) in YAML 1.1 but decimal ({sign}{decimal}) in YAML 1.2: "
                f"write {octal} or {sign}{decimal}, {quote}"
            )
        return Bad(f"{raw} has a leading zero (YAML 1.1 reads such numbers as octal); write {sign}{decimal}, {quote}")
    if "_" in raw and _SEPARATED.fullmatch(raw):
        return Bad(f"{shown(raw)} uses digit separators, a number only in YAML 1.1; write it without '_', {quote}")
    return None


def resolve_plain(raw: str) -> Any:
    """The value of an untagged plain scalar (the rules are in the module docstring), or a :class:`Bad`."""
    if raw in _NULLS:
        return None
    if raw in _BOOLS:
        return _BOOLS[raw]
    if raw in _YAML11_BOOLS:
        meant = _YAML11_BOOLS[raw]
        return Bad(
            f"{raw} is a boolean ({meant}) in YAML 1.1 but a string in YAML 1.2; "
            f"write {meant} for the boolean, or quote it ('{raw}') for the string"
        )
    if raw[0] not in _NUMERIC_START:
        return raw
    if _DECIMAL_INT.fullmatch(raw):
        return _integer(raw)
    if _DECIMAL_FLOAT.fullmatch(raw):
        return _float(raw)
    if _NON_FINITE.fullmatch(raw):
        return Bad(f"{raw} is not a finite number")
    return _not_decimal(raw) or raw


PLAIN: dict[str, Any] = {}
"""Memo of :func:`resolve_plain` for short scalars: keys, names and small numbers repeat across documents
(the composer reads it inline; :func:`plain` fills it)."""
MISS = object()


def plain(raw: str) -> Any:
    """:func:`resolve_plain`, memoized."""
    value = PLAIN.get(raw, MISS)
    if value is MISS:
        value = resolve_plain(raw)
        if len(raw) <= 64 and len(PLAIN) < 100_000:
            PLAIN[raw] = value
    return value


_KNOWN_TAGS = "virtnet reads only !!str, !!int, !!float, !!bool, !!null, !!map and !!seq"
_TYPES = {
    "int": (int, "an integer"),
    "float": (float, "a float"),
    "bool": (bool, "a boolean"),
    "null": (type(None), "null"),
}


def short_tag(tag: str) -> str:
    return "!!" + tag.removeprefix(_TAG) if tag.startswith(_TAG) else tag


def tagged(tag: str, raw: str) -> Any:
    """The value of an explicitly tagged scalar, or a :class:`Bad`."""
    if tag in ("!", STR_TAG):
        return raw
    kind = tag.removeprefix(_TAG) if tag.startswith(_TAG) else ""
    if kind not in _TYPES:
        return Bad(f"YAML tag {short_tag(tag)} is not supported: {_KNOWN_TAGS}")
    value = plain(raw)
    if isinstance(value, Bad):
        return value
    if kind == "float" and type(value) is int:
        return float(value)
    wanted, name = _TYPES[kind]
    return value if type(value) is wanted else Bad(f"'{shown(raw)}' is not {name} (tagged !!{kind})")


def collection_tag(tag: str | None, mapping: bool) -> str | None:
    """Why a tag on a mapping or sequence is refused, or None when it is no tag or its own kind's."""
    if tag is None or tag in ("!", _TAG + ("map" if mapping else "seq")):
        return None
    what = "mapping" if mapping else "sequence"
    return f"YAML tag {short_tag(tag)} on a {what} is not supported: {_KNOWN_TAGS}"
