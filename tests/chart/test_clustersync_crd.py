"""The chart ships the ClusterSync CRD (helm installs ``crds/`` before the templates): valid, and its printer
columns read fields its schema has, so ``kubectl get csync`` never shows a column that is always empty."""

from __future__ import annotations

import re
from typing import Any

import kubernetes_validate
import yaml
from kubernetes_validate import utils as kv_utils

from reconciler import labels
from reconciler.output.conditions import RunReport, sync_status
from tests.chart import CHART, NAMESPACE, RELEASE, helm


def crd() -> dict[str, Any]:
    result = helm("template", RELEASE, str(CHART), "--namespace", NAMESPACE, "--include-crds",
                  "--set", "config.clusterName=c", "--set", "config.repo.url=https://git.example/c.git")  # fmt: skip
    assert result.returncode == 0, result.stderr
    [found] = [d for d in yaml.safe_load_all(result.stdout) if d and d["kind"] == "CustomResourceDefinition"]
    return found


def _schema_has(schema: dict[str, Any], path: str) -> bool:
    node = schema
    for part in re.sub(r"\[\?\(@\.type==\"\w+\"\)\]", "[]", path).strip(".").split("."):
        if part.endswith("[]"):
            node = node["properties"][part[:-2]]["items"]
            continue
        if part not in node.get("properties", {}):
            return False
        node = node["properties"][part]
    return True


def test_the_crd_is_valid_and_names_our_kind() -> None:
    found = crd()
    kubernetes_validate.validate(found, kv_utils.latest_version(), strict=True)
    spec = found["spec"]
    assert f"{spec['group']}/{spec['versions'][0]['name']}" == labels.SYNC_API_VERSION
    assert (spec["names"]["kind"], spec["names"]["plural"]) == (labels.SYNC_KIND, labels.SYNC_PLURAL)
    assert spec["versions"][0]["subresources"] == {"status": {}}


def test_printer_columns_and_the_controller_report_fit_the_schema() -> None:
    version = crd()["spec"]["versions"][0]
    schema = version["schema"]["openAPIV3Schema"]
    for column in version["additionalPrinterColumns"]:
        assert _schema_has(schema, column["jsonPath"]), column
    report = RunReport("prod", labels.APPLIED, revision="a" * 40, counts={"objects": 3, "inSync": 3})
    status = sync_status(report, None, "2026-11-30T12:00:00Z")
    status_schema = schema["properties"]["status"]["properties"]
    assert set(status) <= set(status_schema)  # every field the controller writes is in the schema
    condition_fields = set(status_schema["conditions"]["items"]["properties"])
    assert all(set(c) <= condition_fields for c in status["conditions"])
    assert {c["type"] for c in status["conditions"]} == {"Ready", "Reconciling", "Stalled"}
