"""The API double's reading of YAML request bodies (apply, application/yaml): JSON first, then YAML."""

from __future__ import annotations

import pytest
import yaml

from reconciler.testing.handler import _yaml_or_json


def test_a_json_body_reads_as_kube_apiserver_reads_it() -> None:
    # PyYAML (YAML 1.1) took 1e-05 for a string; JSON, and kube-apiserver's YAML 1.2 reader, a number
    assert _yaml_or_json(b'{"spec": {"ratio": 1e-05, "big": 1e+20, "on": "yes"}}') == {
        "spec": {"ratio": 1e-05, "big": 1e20, "on": "yes"}
    }


def test_a_yaml_body_still_reads() -> None:
    body = b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata:\n  a: 'b'\n"
    assert _yaml_or_json(body) == {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "x"},
        "data": {"a": "b"},
    }


def test_a_body_that_is_neither_is_refused() -> None:
    with pytest.raises(yaml.YAMLError):
        _yaml_or_json(b"a: [unclosed\n")
    with pytest.raises(yaml.YAMLError):
        _yaml_or_json(b"!!python/object:os.system {}\n")  # a safe loader: no arbitrary tags
