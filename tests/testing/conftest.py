"""Fixtures of the differential contract suite: every test meets the API double and a real kube-apiserver.

Why both: the double re-implements apiserver semantics that virtnet depends on; the real server
(:class:`~reconciler.testing.controlplane.ControlPlane`, one per session, ~10 s to start once built) is the
judge. A test that takes ``backend`` runs twice, ``[double]`` and ``[real]``; the real run is marked
``realapi`` and skipped, with the reason, where the control plane cannot run (no Go toolchain).

A test of schema behaviour (strict field validation, pruning, typed errors, kubectl's validation) is marked
``upstream_schemas``: without the upstream CRDs beside the checkout the double has no CRD schemas and the real
server cannot start, so both runs skip with the reason.

A test that needs what only the double has (fault injection, request counts, the simulated controllers and
KubeMacPool, event-log compaction) says so with ``@pytest.mark.double_only("reason")`` and runs once.

Isolation on the shared real server: each test gets a namespace of its own (``backend.ns``, created on both
backends), names its other namespaces with :meth:`Backend.name`, and the cluster-scoped NNCPs it creates are
deleted after it.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import urllib3
from kubernetes import client, config
from kubernetes.client import ApiException

from reconciler.testing import ApiDouble
from reconciler.testing.controlplane import ControlPlane, ControlPlaneUnavailable, crds

_COUNTER = itertools.count(1)
NNCP = ("nmstate.io", "v1", "nodenetworkconfigurationpolicies")


@dataclass
class Backend:
    """One API server as a test sees it."""

    kind: str  # "double" | "real"
    client: client.ApiClient
    ns: str
    kubeconfig_file: Path
    double: ApiDouble | None = None  # the double itself, for double-only checks
    _pool: urllib3.PoolManager = field(init=False, repr=False)

    def __post_init__(self) -> None:
        cfg = self.client.configuration
        self._pool = (urllib3.PoolManager(cert_reqs="CERT_REQUIRED", ca_certs=cfg.ssl_ca_cert, cert_file=cfg.cert_file,
                                          key_file=cfg.key_file) if self.kind == "real" else urllib3.PoolManager())

    @property
    def api(self) -> ApiDouble:
        """The double (only in double-only code paths)."""
        assert self.double is not None, "a double-only check ran against the real server"
        return self.double

    def name(self, suffix: str) -> str:
        """A name unique to this test (other namespaces, cluster-scoped objects)."""
        return f"{self.ns}-{suffix}"

    def raw(self, method: str, path: str, headers: dict[str, str] | None = None, body: Any = None,
            ) -> tuple[int, Any, dict[str, str]]:
        """A request the typed client cannot express: (status, JSON body or text, headers)."""
        cfg = self.client.configuration
        sent = {"Content-Type": "application/json", **(headers or {})}
        if self.kind == "double":
            sent.setdefault("Authorization", "Bearer user:raw")
        data = body if isinstance(body, (bytes, str)) or body is None else json.dumps(body)
        resp = self._pool.request(method, cfg.host + path, headers=sent, body=data)
        ctype = resp.headers.get("Content-Type", "")
        text = resp.data.decode(errors="replace")
        out = json.loads(text) if "json" in ctype or text.startswith("{") else text
        return resp.status, out, {k: resp.headers.get(k, "") for k in resp.headers}

    def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Create any object through the API (seeding both backends the same way)."""
        api_version, kind = obj["apiVersion"], obj["kind"]
        from kubernetes import dynamic

        res = dynamic.DynamicClient(self.client).resources.get(api_version=api_version, kind=kind)
        ns = obj["metadata"].get("namespace") if res.namespaced else None
        out: dict[str, Any] = res.create(body=obj, namespace=ns).to_dict()
        return out


def _start_real(tmp: Path) -> ControlPlane | str:
    try:
        return ControlPlane.start(tmp)
    except ControlPlaneUnavailable as exc:
        return exc.reason


@pytest.fixture(scope="session")
def real_control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane | str]:
    """The session's real control plane, or why there is none (started on first use only)."""
    started = _start_real(tmp_path_factory.mktemp("contract-controlplane"))
    yield started
    if isinstance(started, ControlPlane):
        started.stop()


def _cleanup_real(api_client: client.ApiClient, ns: str) -> None:
    custom = client.CustomObjectsApi(api_client)
    for item in custom.list_cluster_custom_object(*NNCP)["items"]:
        try:
            custom.delete_cluster_custom_object(*NNCP, item["metadata"]["name"])
        except ApiException as e:
            if e.status != 404:
                raise
    core = client.CoreV1Api(api_client)
    for n in core.list_namespace().items:
        if n.metadata.name == ns or n.metadata.name.startswith(f"{ns}-"):
            core.delete_namespace(n.metadata.name)


@pytest.fixture
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """The API server of this run (see the module docstring); ``backend.ns`` exists and is empty."""
    ns = f"ct{next(_COUNTER)}"
    if request.node.get_closest_marker("upstream_schemas"):
        try:
            crds.directory()
        except ControlPlaneUnavailable as exc:
            pytest.skip(exc.reason)
    if request.param == "double":
        with ApiDouble(bookmark_interval=0.2) as api:
            api_client = api.api_client()
            b = Backend("double", api_client, ns, api.kubeconfig(tmp_path / "kubeconfig"), api)
            client.CoreV1Api(api_client).create_namespace({"metadata": {"name": ns}})
            yield b
            api_client.close()
        return
    cp = request.getfixturevalue("real_control_plane")
    if not isinstance(cp, ControlPlane):
        pytest.skip(f"no real control plane here: {cp}")
    api_client = config.new_client_from_config(config_file=str(cp.kubeconfig))
    client.CoreV1Api(api_client).create_namespace({"metadata": {"name": ns}})
    try:
        yield Backend("real", api_client, ns, cp.kubeconfig)
    finally:
        _cleanup_real(api_client, ns)
        api_client.close()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" not in metafunc.fixturenames:
        return
    double_only = metafunc.definition.get_closest_marker("double_only")
    params = [pytest.param("double", id="double")]
    if double_only is None:
        # the first real test may wait for a cold build of kube-apiserver (minutes on 2 cores)
        params.append(pytest.param("real", id="real", marks=[pytest.mark.realapi, pytest.mark.timeout(1800)]))
    metafunc.parametrize("backend", params, indirect=True)
