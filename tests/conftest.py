"""Shared fixtures: a running Kubernetes API double and a client configured for it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kubernetes import client

from reconciler.testing import ApiDouble


@pytest.fixture
def kube_api() -> Iterator[ApiDouble]:
    """A fresh API double (no simulated controllers) on an ephemeral loopback port."""
    with ApiDouble(bookmark_interval=0.2) as api:
        yield api


@pytest.fixture
def kube_client(kube_api: ApiDouble) -> Iterator[client.ApiClient]:
    """An ``ApiClient`` for :func:`kube_api`, closed after the test."""
    api_client = kube_api.api_client()
    yield api_client
    api_client.close()
