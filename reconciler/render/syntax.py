"""The syntax Kubernetes and the kernel hold names, keys and sizes to (pure), as the API server validates them.

Each check returns ``None`` for a good value, or the end of a sentence saying what is wrong (the caller
puts the subject in front: ``name 'web_1' is not a DNS-1123 subdomain ...``). The rules follow
``k8s.io/apimachinery/pkg/util/validation``: names per kind (:data:`NAME_RULES`), qualified names (label
and annotation keys), label values, ConfigMap keys, IANA service names (port names); quantities follow
``resource.Quantity``; interface names follow the kernel's ``dev_valid_name`` (``IFNAMSIZ`` is 16 with the
terminating NUL, so 15 characters).

The checks run on every rendered object (10,000 VMs: some 300,000 keys and names, mostly the same few
label keys), so the common ones are memoized.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable

from reconciler.model.types import quantity as quantity  # the one parser, re-exported for the checks

_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_LABEL = re.compile(rf"^{_LABEL}$")
_DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUBDOMAIN = re.compile(rf"^{_LABEL}(\.{_LABEL})*$")
_QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_CONFIG_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
_PORT_NAME = re.compile(r"^[-a-z0-9]+$")
_IFNAME_BAD = re.compile(r"[\s/:]")
RESOURCE_NAME = re.compile(r"^[A-Za-z0-9_]+$")


@functools.lru_cache(maxsize=8192)
def dns_label(value: str) -> str | None:
    if len(value) > 63 or not _DNS1123_LABEL.match(value):
        return (
            f"{value!r} is not a DNS-1123 label (lower-case letters, digits and '-', starting and ending "
            "with a letter or digit, at most 63 characters)"
        )
    return None


@functools.lru_cache(maxsize=8192)
def dns1035_label(value: str) -> str | None:
    if len(value) > 63 or not _DNS1035_LABEL.match(value):
        return (
            f"{value!r} is not a DNS-1035 label (lower-case letters, digits and '-', starting with a letter, "
            "ending with a letter or digit, at most 63 characters)"
        )
    return None


@functools.lru_cache(maxsize=8192)
def dns_subdomain(value: str) -> str | None:
    if len(value) > 253 or not _DNS1123_SUBDOMAIN.match(value):
        return (
            f"{value!r} is not a DNS-1123 subdomain (lower-case letters, digits, '-' and '.', starting and "
            "ending with a letter or digit, at most 253 characters)"
        )
    return None


#: how Kubernetes validates ``metadata.name`` per kind (custom resources, ConfigMaps, Secrets: subdomain)
NAME_RULES: dict[str, Callable[[str], str | None]] = {
    "Namespace": dns_label,
    "Service": dns1035_label,
}


@functools.lru_cache(maxsize=8192)
def qualified_name(key: str) -> str | None:
    """A label or annotation key: ``[prefix/]name``, the prefix a DNS subdomain, the name at most 63."""
    prefix, _, name = key.rpartition("/")
    if "/" in key and (not prefix or dns_subdomain(prefix)):
        return f"{key!r} has a prefix that is not a DNS-1123 subdomain (like example.com/name)"
    if not name or len(name) > 63 or not _QUALIFIED_NAME.match(name):
        return (
            f"{key!r} is not a qualified name (at most 63 letters, digits, '-', '_' or '.', starting and "
            "ending with a letter or digit, with an optional DNS subdomain prefix and '/')"
        )
    return None


@functools.lru_cache(maxsize=8192)
def label_value(value: str) -> str | None:
    if len(value) > 63 or not _LABEL_VALUE.match(value):
        return (
            f"{value!r} is not a label value (at most 63 letters, digits, '-', '_' or '.', starting and "
            "ending with a letter or digit, or empty)"
        )
    return None


def config_key(key: str) -> str | None:
    if len(key) > 253 or not _CONFIG_KEY.match(key) or key in (".", "..") or key.startswith(".."):
        return f"{key!r} must be letters, digits, '-', '_' or '.' (not starting with '..'), at most 253"
    return None


@functools.lru_cache(maxsize=8192)
def port_name(value: str) -> str | None:
    """An IANA service name: at most 15 lower-case letters, digits and '-', with a letter, no '--'."""
    if (
        len(value) > 15
        or not _PORT_NAME.match(value)
        or not re.search(r"[a-z]", value)
        or "--" in value
        or value.startswith("-")
        or value.endswith("-")
    ):
        return (
            f"{value!r} is not an IANA service name (at most 15 lower-case letters, digits and '-', with at "
            "least one letter, no '--', not starting or ending with '-')"
        )
    return None


def ifname(value: str) -> str | None:
    if not value or len(value) > 15:
        return f"is {len(value)} characters; Linux interface names are 1 to 15 characters (IFNAMSIZ)"
    if _IFNAME_BAD.search(value) or value in (".", ".."):
        return "must not contain whitespace, '/' or ':'"
    return None
