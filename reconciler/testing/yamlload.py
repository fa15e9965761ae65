"""YAML as the test doubles read it: PyYAML's safe loader, in C (libyaml) where it is installed.

Why a home of its own: the API double parses every YAML request body and the KubeVirt simulator every VM's
cloud-init networkData; the pure-Python parser was most of the double's time per write at 10,000 VMs.
"""

from __future__ import annotations

from typing import Any

import yaml

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_yaml(text: str | bytes) -> Any:
    """One YAML document, safely (no arbitrary tags); raises ``yaml.YAMLError`` like ``yaml.safe_load``."""
    return yaml.load(text, Loader=_LOADER)  # a safe loader: CSafeLoader or SafeLoader
