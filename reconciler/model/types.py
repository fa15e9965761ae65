"""Constrained value types shared by the models, each with the error message users will read.

These are the single-field rules (names, interface names, VLAN ids, MTUs, MACs, addresses); rules that
need more than one document live in ``reconciler.model.rules``.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from decimal import Decimal
from typing import Annotated

from pydantic import AfterValidator, ConfigDict, Field
from pydantic import BaseModel as _PydanticModel
from pydantic.alias_generators import to_camel


# Parsed once per distinct text: a 10,000-VM repository checks the same addresses in its schema, in the VM's
# own checks and in the cross-document rules (14.8k parses before; ipaddress objects are immutable).
@functools.lru_cache(maxsize=1 << 16)
def ip_interface(value: str) -> ipaddress.IPv4Interface | ipaddress.IPv6Interface:
    return ipaddress.ip_interface(value)


@functools.lru_cache(maxsize=1 << 16)
def ip_address(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    return ipaddress.ip_address(value)


#: ``resource.Quantity`` syntax, here because the models (VM memory against its page size) and the render
#: checks both read quantities
_QUANTITY = re.compile(r"^([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))([KMGTPE]i|[mkMGTPE]|[eE][-+]?[0-9]+)?$")
_SUFFIX: dict[str, Decimal | int] = {
    "": 1,
    "m": Decimal("0.001"),
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "P": 10**15,
    "E": 10**18,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "Ei": 2**60,
}


@functools.lru_cache(maxsize=1024)
def quantity(value: str | int) -> Decimal | None:
    """A Kubernetes quantity (``512Mi``, ``2Gi``, ``1.5G``, ``100m``, ``1e3``) as a number, or None."""
    if isinstance(value, int):
        return Decimal(value)
    m = _QUANTITY.match(value)
    if not m:
        return None
    number, suffix = m.group(1), m.group(2) or ""
    try:
        if suffix[:1] in ("e", "E"):
            return Decimal(number) * (Decimal(10) ** int(suffix[1:]))
        return Decimal(number) * _SUFFIX[suffix]
    except (ArithmeticError, ValueError, KeyError):  # decimal's InvalidOperation and Overflow among them
        return None


#: a PCI vendor or device id (nicSelector.vendor, deviceID): lower-case, as the SR-IOV operator compares it with
#: the ids sysfs reports (``15B3`` would select no NIC at all)
PCI_ID = re.compile(r"^[0-9a-f]{4}$")
_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_MAC = re.compile(r"^([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}$")
_IFNAME_BAD = re.compile(r"[\s/:]")
_RESOURCE_NAME = re.compile(r"^[A-Za-z0-9_]+$")


class Model(_PydanticModel):
    """Base of every repo model: camelCase keys in YAML, unknown keys are errors (typos must not pass).

    Strict: a value must already have its field's type. Pydantic's lax mode would read ``true`` as 1 in
    an integer field (``vlan: true`` → VLAN 1, ``cpu: true`` → one core), ``"100"`` or ``100.0`` as 100,
    and ``1`` or ``"on"`` as true in a boolean field. The loader already gives every scalar one meaning
    (``reconciler.model.scalars``: plain decimal numbers, ``true``/``false`` booleans); the models take
    that meaning and never convert it. A float field still takes an integer (``maxShare: 1``).
    """

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        str_strip_whitespace=True,
        strict=True,
    )


def _dns_label(value: str) -> str:
    if len(value) > 63 or not _DNS1123_LABEL.match(value):
        raise ValueError(
            f"{value!r} is not a DNS-1123 label (lower-case letters, digits and '-', "
            "starting and ending with a letter or digit, at most 63 characters)"
        )
    return value


def dns_subdomain(value: str) -> str:
    if len(value) > 253 or not _DNS1123_SUBDOMAIN.match(value):
        raise ValueError(f"{value!r} is not a DNS-1123 subdomain (lower-case, digits, '-', '.')")
    return value


def _ifname(value: str) -> str:
    if not value or len(value) > 15:
        raise ValueError(f"interface name {value!r} must be 1 to 15 characters (Linux IFNAMSIZ)")
    if _IFNAME_BAD.search(value) or value in (".", ".."):
        raise ValueError(f"interface name {value!r} must not contain whitespace, '/' or ':'")
    return value


def _mac(value: str) -> str:
    if not _MAC.match(value):
        raise ValueError(f"{value!r} is not a MAC address like 02:00:00:00:00:01")
    if int(value[:2], 16) & 1:
        raise ValueError(f"{value} is a multicast MAC address (the first octet must be even)")
    return value.lower()


def _resource_name(value: str) -> str:
    if not _RESOURCE_NAME.match(value):
        raise ValueError(f"{value!r} must contain only letters, digits and '_'")
    return value


def _interface_cidr(value: str) -> str:
    try:
        ip_interface(value)
    except ValueError:
        raise ValueError(f"{value!r} is not an address with prefix length, like 192.0.2.10/24") from None
    if "/" not in value:
        raise ValueError(f"{value!r} needs a prefix length, like {value}/24")
    return value


def _network_cidr(value: str) -> str:
    try:
        ipaddress.ip_network(value, strict=True)
    except ValueError as exc:
        raise ValueError(f"{value!r} is not a network like 192.0.2.0/24 ({exc})") from None
    return value


def _ip(value: str) -> str:
    try:
        ip_address(value)
    except ValueError:
        raise ValueError(f"{value!r} is not an IP address") from None
    return value


DNSLabel = Annotated[str, AfterValidator(_dns_label)]
DNSSubdomain = Annotated[str, AfterValidator(dns_subdomain)]
IfName = Annotated[str, AfterValidator(_ifname)]
Mac = Annotated[str, AfterValidator(_mac)]
ResourceName = Annotated[str, AfterValidator(_resource_name)]
InterfaceCIDR = Annotated[str, AfterValidator(_interface_cidr)]
NetworkCIDR = Annotated[str, AfterValidator(_network_cidr)]
IPAddress = Annotated[str, AfterValidator(_ip)]
VlanId = Annotated[int, Field(ge=1, le=4094, description="802.1Q VLAN id, 1-4094")]
Mtu = Annotated[int, Field(ge=576, le=9216, description="MTU in bytes, 576-9216")]
Port = Annotated[int, Field(ge=1, le=65535)]
NodeSelector = dict[str, str]
