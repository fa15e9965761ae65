"""One test, two API servers: the API double and a real kube-apiserver (the ``realapi`` tier).

Why: the double is a convenience; a real apiserver is the judge of server-side apply, namespaces, pagination,
CRD schemas and RBAC. A test parametrised over :data:`BACKENDS` builds a :class:`Backend` with
:func:`backend_for` and talks to the cluster only through it:

* ``kube``: the engine's client. Every call through ``Kube.request`` in this process (the CLI's own client
  included) is recorded in ``log``, client-side, so "a no-op reconcile makes 0 writes" is counted the same
  way on both servers;
* ``admin``: set-up and inspection (``find``, ``put``, ``replace``), never counted;
* ``options``: apply options that fit the backend.

The real server is one control plane per session, reset to its seed state before each test
(``realapi/cluster.py``; a fresh one per test would cost ~10 s each), with ``reconciler.testing``'s simulated
nmstate, KubeVirt (KubeMacPool, virt-api's restart) and garbage collector running beside it as a process.
Tests that need the double's own instruments (fault injection, its request hooks, stepped controllers) stay
on the double and say why.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from kubernetes import config
from kubernetes.client.exceptions import ApiException
from realapi.cluster import quiet, reset, shared_plane

from reconciler import labels
from reconciler.clients.kube import RESOURCES, Kube
from reconciler.engine.apply import ApplyOptions
from reconciler.objects import Obj
from reconciler.testing import ApiDouble
from reconciler.testing.controlplane import ControlPlane
from reconciler.testing.nodes import demo_nodes, seed_hyperconverged

DOUBLE, REAL = "double", "real"
#: parametrise a test with ``@pytest.mark.parametrize("backend_name", BACKENDS)``
BACKENDS = [pytest.param(DOUBLE, id=DOUBLE), pytest.param(REAL, id=REAL, marks=pytest.mark.realapi)]
_UNCOUNTED = "_virtnet_test_uncounted"
_WRITE_METHODS = ("POST", "PUT", "PATCH", "DELETE")


# ---------------------------------------------------------------------------------------------- counting


@dataclass(frozen=True)
class Call:
    """One ``Kube.request``: ``status`` is 200 for any success (the client does not say which 2xx)."""

    method: str
    path: str
    query: dict[str, Any]
    content_type: str
    status: int

    @property
    def dry_run(self) -> bool:
        return bool(self.query.get("dryRun"))

    @property
    def is_write(self) -> bool:
        return self.method in _WRITE_METHODS and not self.dry_run

    @property
    def _parts(self) -> tuple[str, str, str]:
        """(group, plural, name) of the path."""
        parts = [p for p in self.path.split("/") if p]
        group, rest = ("", parts[2:]) if parts[0] == "api" else (parts[1], parts[3:])
        if rest[0] == "namespaces" and len(rest) >= 3:
            rest = rest[2:]
        return group, rest[0], rest[1] if len(rest) >= 2 else ""

    @property
    def resource(self) -> str:
        """``group/plural`` (``plural`` for the core group): the API double's accounting key."""
        group, plural, _ = self._parts
        return f"{group}/{plural}" if group else plural

    @property
    def verb(self) -> str:
        if self.method == "GET":
            return "get" if self._parts[2] else "list"
        if self.method == "PATCH":
            return "apply" if self.content_type == "application/apply-patch+yaml" else "patch"
        return {"POST": "create", "PUT": "update", "DELETE": "delete"}[self.method]


@dataclass
class RequestLog:
    """Every counted ``Kube.request`` of this process while :meth:`recording`, in order."""

    calls: list[Call] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    #: called with each counted request just before it is sent (its ``status`` is 0): a test's spy
    before: Callable[[Call], None] | None = None

    def writes(self) -> int:
        """Mutating requests (dry runs excluded), whatever their answer: the API double's ``writes()``."""
        return sum(1 for c in self.calls if c.is_write)

    def counts(self) -> Counter[tuple[str, str]]:
        return Counter((c.verb, c.resource) for c in self.calls)

    def deletes(self) -> list[str]:
        return [c.path for c in self.calls if c.method == "DELETE"]

    def reset(self) -> None:
        with self.lock:
            self.calls.clear()

    @contextlib.contextmanager
    def recording(self) -> Iterator[RequestLog]:
        """Wrap ``Kube.request`` (class-wide, so clients made inside the code under test count too)."""
        original = Kube.request

        def request(kube: Kube, method: str, path: str, query: dict[str, Any] | None = None, body: Any = None,
                    content_type: str = "application/json") -> Any:
            if getattr(kube, _UNCOUNTED, False):
                return original(kube, method, path, query, body, content_type)
            sent = {k: v for k, v in (query or {}).items() if v is not None}
            if self.before is not None:
                self.before(Call(method, path, sent, content_type, 0))
            status = -1
            try:
                out = original(kube, method, path, query, body, content_type)
                status = 200
                return out
            except ApiException as exc:
                status = exc.status
                raise
            finally:
                with self.lock:
                    self.calls.append(Call(method, path, sent, content_type, status))

        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(Kube, "request", request)
            yield self


def uncounted(kube: Kube) -> Kube:
    setattr(kube, _UNCOUNTED, True)
    return kube


# ---------------------------------------------------------------------------------------------- backend


@dataclass
class Backend:
    name: str
    kubeconfig: Path
    kube: Kube  # the engine's client (counted)
    admin: Kube  # set-up and inspection (not counted)
    log: RequestLog
    double: ApiDouble | None = None
    plane: ControlPlane | None = None

    @property
    def real(self) -> bool:
        return self.plane is not None

    def options(self, **kwargs: Any) -> ApplyOptions:
        if self.double is not None and self.double.tick_interval is None:  # stepped: each poll is one tick
            double = self.double
            kwargs.setdefault("poll", 0)
            kwargs.setdefault("sleep", lambda _seconds: double.tick())
        kwargs.setdefault("poll", 0.02 if self.double else 0.05)
        kwargs.setdefault("timeout", 20)
        return ApplyOptions(**kwargs)

    def quiesce(self) -> None:
        """Wait until the simulated controllers have caught up with every write so far: on the real server they
        are another process; on the double the engine's own health waits already waited for them."""
        if self.plane is not None:
            quiet(self.plane.rest())

    def client(self, field_manager: str = labels.FIELD_MANAGER) -> Kube:
        """Another (counted) client of the same server, e.g. as another field manager."""
        if self.double is not None:
            return Kube(self.double.api_client(), field_manager=field_manager)
        return Kube(config.new_client_from_config(config_file=str(self.kubeconfig)), field_manager=field_manager)

    def find(self, kind: str, name: str, namespace: str | None = None) -> Obj | None:
        return self.admin.get(kind, name, namespace)

    def objects(self, kind: str) -> list[Obj]:
        return self.admin.list(kind)

    def put(self, obj: Obj, manager: str) -> Obj:
        """Server-side apply ``obj`` as ``manager``, taking over conflicting fields (a person or a tool)."""
        return uncounted(Kube(self.admin.api, field_manager=manager)).apply(obj, force=True)

    def replace(self, obj: Obj, manager: str) -> Obj:
        """PUT ``obj`` as ``manager`` (``kubectl edit``): fields it leaves out are removed, whoever owned them."""
        res = RESOURCES[obj["kind"]]
        meta = obj["metadata"]
        path = res.path(meta.get("namespace"), meta["name"])
        return self.admin.request("PUT", path, {"fieldManager": manager}, body=obj)


def _double(tmp: Path, nodes: Sequence[dict[str, Any]], controllers: Sequence[str], log: RequestLog,
            stepped: bool) -> contextlib.AbstractContextManager[Backend]:
    @contextlib.contextmanager
    def run() -> Iterator[Backend]:
        with ApiDouble(controllers=controllers, nodes=nodes, tick_interval=None if stepped else 0.02) as api:
            seed_hyperconverged(api.store)
            kube, admin = Kube(api.api_client()), uncounted(Kube(api.api_client()))
            try:
                yield Backend(DOUBLE, api.kubeconfig(tmp / "kubeconfig"), kube, admin, log, double=api)
            finally:
                kube.api.close()
                admin.api.close()

    return run()


def _real(request: pytest.FixtureRequest, nodes: Sequence[dict[str, Any]], controllers: Sequence[str],
          log: RequestLog) -> contextlib.AbstractContextManager[Backend]:
    @contextlib.contextmanager
    def run() -> Iterator[Backend]:
        cp = shared_plane(request)
        # the caller's simulators, as on the double, plus the garbage collector: without it a real server's
        # Foreground deletes never finish
        reset(cp, nodes, tuple(dict.fromkeys((*controllers, "gc"))))
        kube = Kube.from_kubeconfig(str(cp.kubeconfig))
        admin = uncounted(Kube.from_kubeconfig(str(cp.kubeconfig)))
        try:
            yield Backend(REAL, cp.kubeconfig, kube, admin, log, plane=cp)
        finally:
            kube.api.close()
            admin.api.close()

    return run()


@contextlib.contextmanager
def backend_for(request: pytest.FixtureRequest, name: str, tmp: Path, nodes: Sequence[dict[str, Any]] | None = None,
                controllers: Sequence[str] = ("nmstate", "kubevirt"), *, stepped: bool = False) -> Iterator[Backend]:
    """The demo cluster (or ``nodes``) on ``name``'s server, requests recorded from the start. The double is
    new; the real server is this session's control plane, reset to its seed state (realapi/cluster.py).

    ``stepped``: the double's controllers move only when the engine sleeps, one tick per poll, so a test sees the
    worst case of a race every time; a real server's simulators are another process, racing the engine anyway.
    """
    nodes = demo_nodes() if nodes is None else nodes
    log = RequestLog()
    if name == DOUBLE:
        server = _double(tmp, nodes, controllers, log, stepped)
    else:
        server = _real(request, nodes, controllers, log)
    with server as backend, log.recording():
        yield backend


def backend_fixture(nodes: Sequence[dict[str, Any]] | None = None,
                    controllers: Sequence[str] = ("nmstate", "kubevirt"), *, stepped: bool = False,
                    name: str = "backend") -> Any:
    """A fixture ``name`` parametrised over :data:`BACKENDS`; in a test module: ``backend = backend_fixture()``."""

    @pytest.fixture(params=BACKENDS, name=name)
    def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
        with backend_for(request, request.param, tmp_path, nodes, controllers, stepped=stepped) as made:
            yield made

    return backend


def eventually(check: Callable[[], bool], timeout: float = 90.0) -> bool:
    """Poll ``check`` until true (bounded): what a controller does happens after the request that caused it.

    The bound is generous on purpose: it only costs time when the check fails, and a loaded CI machine slows the
    real server's simulators (a process of their own) far more than the test (a VM restart took over 30 s at a
    load average of 14)."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def settle(backend: Backend, path: Path, **kwargs: Any) -> Path:
    """Reconcile ``path`` onto ``backend`` once (it must succeed) and clear the request log: the steady state."""
    from reconciler.pipeline import reconcile  # the pipeline is what the tests test: imported where used

    kwargs.setdefault("apply_options", backend.options())
    outcome = reconcile(path, backend.kube, **kwargs)
    assert outcome.ok, outcome.message
    assert outcome.changes is not None and outcome.changes.ok
    backend.quiesce()
    backend.log.reset()
    return path
