"""The double's ``/openapi/v3`` documents, where they do not depend on which schemas are at hand."""

from __future__ import annotations

from typing import Any

import pytest

from reconciler.testing import openapi
from reconciler.testing.resources import Registry


def _patch_params(doc: dict[str, Any], kind: str) -> set[str]:
    [op] = [op["patch"] for op in doc["paths"].values()
            if op["patch"]["x-kubernetes-group-version-kind"]["kind"] == kind]
    return {p["name"] for p in op["parameters"]}


def test_a_kind_without_a_known_schema_is_published_open_with_its_patch(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without ``shared/crds`` the double knows no CRD schema; kubectl must still find the kind's PATCH with
    ``fieldValidation`` (or it refuses to apply: "failed to download openapi")."""
    monkeypatch.setattr(openapi, "schema_for", lambda group, version, kind: None)
    doc = openapi.group_version_doc(Registry(), "apis/nmstate.io/v1")
    assert doc is not None
    assert "fieldValidation" in _patch_params(doc, "NodeNetworkConfigurationPolicy")
    published = doc["components"]["schemas"]["io.nmstate.v1.NodeNetworkConfigurationPolicy"]
    assert published["x-kubernetes-preserve-unknown-fields"] is True and published["type"] == "object"
    assert published["x-kubernetes-group-version-kind"] == [
        {"group": "nmstate.io", "version": "v1", "kind": "NodeNetworkConfigurationPolicy"}]


def test_an_unknown_group_version_has_no_document() -> None:
    assert openapi.group_version_doc(Registry(), "apis/example.com/v9") is None
