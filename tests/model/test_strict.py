"""Documents take the loader's one meaning of each value: the models are strict (a boolean is never a number,
a string never a number or a boolean), and a plain manifest's metadata has the types Kubernetes gives it."""

from __future__ import annotations

import textwrap

import pytest
from repos import BRIDGE, CLUSTER, VM

from reconciler.model.loader import Document, parse_text
from reconciler.model.repo import Entry, Raw, parse_document


def parse(text: str) -> tuple[Entry[object] | Raw | None, list[tuple[int, str, str]]]:
    docs, problems = parse_text(textwrap.dedent(text), "f.yaml")
    assert problems == [] and len(docs) == 1
    item, found = parse_document(docs[0])
    return item, [(p.ref.line, p.ref.field, p.message) for p in found]


def with_line(base: str, after: str, line: str) -> str:
    """``base`` with ``line`` inserted after the line starting with ``after``."""
    lines = base.splitlines()
    at = next(i for i, ln in enumerate(lines) if ln.startswith(after))
    return "\n".join([*lines[: at + 1], line, *lines[at + 1 :]]) + "\n"


@pytest.mark.parametrize(
    ("base", "after", "line", "problem"),
    [
        (BRIDGE, "  vlan:", "  mtu: true", (10, "spec.mtu", "Input should be a valid integer, got the boolean true")),
        (
            BRIDGE,
            "  vlan:",
            "  mtu: '1500'",
            (10, "spec.mtu", "Input should be a valid integer, got the string '1500'"),
        ),
        (
            BRIDGE,
            "  vlan:",
            "  mtu: 1500.0",
            (10, "spec.mtu", "Input should be a valid integer, got the number 1500.0"),
        ),
        (BRIDGE, "  vlan:", "  stp: 1", (10, "spec.stp", "Input should be a valid boolean, got the number 1")),
        (
            BRIDGE,
            "  vlan:",
            "  stp: 'true'",
            (10, "spec.stp", "Input should be a valid boolean, got the string 'true'"),
        ),
        (VM, "spec:", "  cpu: true", (7, "spec.cpu", "Input should be a valid integer, got the boolean true")),
        (VM, "spec:", "  podNetwork: 0", (7, "spec.podNetwork", "Input should be a valid boolean, got the number 0")),
        (VM, "spec:", "  memory: 2", (7, "spec.memory", "Input should be a valid string, got the number 2")),
        (
            VM,
            "spec:",
            "  sshKeys: ssh-ed25519 AAAA",
            (7, "spec.sshKeys", "Input should be a valid list, got the string 'ssh-ed25519 AAAA'"),
        ),
        (
            CLUSTER,
            "spec:",
            "  manageNamespaces: null",
            (6, "spec.manageNamespaces", "Input should be a valid boolean, got null"),
        ),
        (
            CLUSTER,
            "  name: test",
            "  labels: {tier: 1}",
            (5, "metadata.labels.tier", "Input should be a valid string, got the number 1"),
        ),
    ],
)
def test_no_value_changes_type(base: str, after: str, line: str, problem: tuple[int, str, str]) -> None:
    item, problems = parse(with_line(base, after, line))
    assert item is None and problems == [problem]


def test_a_float_field_takes_an_integer() -> None:
    item, problems = parse(CLUSTER + "  prune:\n    maxShare: 1\n")
    assert problems == [] and isinstance(item, Entry) and item.spec.prune.max_share == 1.0


def test_the_base_documents_are_valid() -> None:
    for text in (CLUSTER, BRIDGE, VM):
        item, problems = parse(text)
        assert problems == [] and isinstance(item, Entry)


CONFIGMAP = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: apps
data:
  a: b
"""


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("  namespace: [apps]", "metadata.namespace must be a non-empty string (not ['apps'])"),
        ("  namespace: 5", "metadata.namespace must be a non-empty string (not 5)"),
        ("  namespace: ''", "metadata.namespace must be a non-empty string (not '')"),
    ],
)
def test_plain_manifest_namespace_must_be_a_string(line: str, problem: str) -> None:
    item, problems = parse(CONFIGMAP.replace("  namespace: apps", line))
    assert item is None and problems == [(5, "metadata.namespace", problem)]


def test_plain_manifest_without_namespace_is_left_to_the_rules() -> None:
    item, problems = parse(CONFIGMAP.replace("  namespace: apps\n", ""))
    assert problems == [] and isinstance(item, Raw)


@pytest.mark.parametrize(
    ("labels", "problem"),
    [
        ({"tier": 1}, "metadata.labels must map strings to strings (not 'tier': 1)"),
        ({1: "one"}, "metadata.labels must map strings to strings (not 1: 'one')"),  # TypeError in sort before
        ({"tier": None}, "metadata.labels must map strings to strings (not 'tier': None)"),
        ([], "metadata.labels must map strings to strings"),
    ],
)
def test_plain_manifest_labels_map_strings_to_strings(labels: object, problem: str) -> None:
    """The loader refuses non-string keys already; a Document made another way is checked too."""
    data = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm", "namespace": "apps", "labels": labels}}
    doc = Document("f.yaml", 0, 1, data, {(): {"metadata": 3}, ("metadata",): {"labels": 6}})
    item, problems = parse_document(doc)
    assert item is None and [(p.ref.line, p.ref.field, p.message) for p in problems] == [
        (6, "metadata.labels", problem)
    ]


@pytest.mark.parametrize(
    ("field", "value", "family"),
    [
        ("ipv4", "2001:db8::5/64", 4),
        ("ipv6", "192.0.2.5/24", 6),
        ("gateway4", "2001:db8::1", 4),
        ("gateway6", "192.0.2.1", 6),
        ("ipv6", "::ffff:192.0.2.5/120", None),  # IPv4-mapped: still an IPv6 address
    ],
)
def test_an_address_of_the_other_family_is_refused(field: str, value: str, family: int | None) -> None:
    from pydantic import ValidationError

    from reconciler.model.vm import Interface

    given = {"network": "n", "mac": "02:00:00:00:00:01", field: value}
    if family is None:
        assert getattr(Interface.model_validate(given), field) == value
        return
    with pytest.raises(ValidationError, match=f"{field} {value} is not an IPv{family} address"):
        Interface.model_validate(given)
