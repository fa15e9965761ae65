"""Shared fixtures: a running Kubernetes API double and a client configured for it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

from reconciler import logs
from reconciler.testing import ApiDouble
from reconciler.testing.controlplane import ControlPlane, ControlPlaneUnavailable


@pytest.fixture(autouse=True)
def _forget_registered_secrets() -> Iterator[None]:
    """What a test registers with the log redactor (a decrypted value, a token) is forgotten after it. The
    registry is process-wide, as it must be in the controller; across tests it made results depend on order
    (a value one test registered masked text another test asserted on)."""
    with logs._lock:
        saved = set(logs._secrets), logs._secret_re
    yield
    with logs._lock:
        logs._secrets.clear()
        logs._secrets.update(saved[0])
        logs._secret_re = saved[1]


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


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    """One real kube-apiserver + etcd for the session (``realapi`` tier); skips with the reason where it
    cannot be built or started (no Go). Tests that share it must keep to their own namespaces and names."""
    try:
        cp = ControlPlane.start(tmp_path_factory.mktemp("controlplane"))
    except ControlPlaneUnavailable as exc:
        pytest.skip(exc.reason)
    with cp:
        yield cp


@pytest.fixture
def fresh_control_plane(tmp_path: Path) -> Iterator[ControlPlane]:
    """A control plane of the test's own (~8 s to start): for tests that write cluster-scoped objects
    (node policies) or count on an empty cluster."""
    try:
        cp = ControlPlane.start(tmp_path / "controlplane")
    except ControlPlaneUnavailable as exc:
        pytest.skip(exc.reason)
    with cp:
        yield cp
