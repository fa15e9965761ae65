"""The real server as a benchmark backend: kube-apiserver + etcd with the simulated nmstate controller.

Why a second backend: the API double is Python serving JSON, so its figures mix virtnet's cost with the
double's. The real control plane (:mod:`reconciler.testing.controlplane`, kube-apiserver v1.37 + etcd built
from Go modules and cached) answers as a cluster does; figures on both, side by side in one run, say how
much of a figure is the client and how much the server.

What is set up, and kept out of the figures:

* one fresh control plane per size and client (virtnet, kubectl), so etcd's size never carries over; its
  start (build check, etcd, apiserver, CRDs, seed objects) is timed on its own (``server.start_seconds``);
* for virtnet, the simulated kubernetes-nmstate controller in a process of its own
  (``reconciler.testing.controlplane.launch``), polling every ``sim_interval`` seconds: ``apply`` always waits
  for node policies to become Available. Its start is timed on its own too; its polling is part of the
  cold apply's "health-wait sleep" (reported apart, as on the double). kubectl waits for nothing, so its
  control plane runs no simulator;
* requests are counted on the client: every HTTP request virtnet's ``ApiClient`` sends (retries included,
  as the double counts them on the server), and kubectl's from its own ``-v=6`` request log. The server
  cannot count for us: its metrics do not say which client sent a request (the simulator polls too).
"""

from __future__ import annotations

import contextlib
import inspect
import re
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from bench.cluster import Counts, cpu_seconds

SIM_CONTROLLERS = ("nmstate",)
DEFAULT_SIM_INTERVAL = 0.1  # seconds between the simulator's passes (the double ticks every 0.02 s)
_WRITE_VERBS = ("create", "update", "patch", "apply", "delete")
_APPLY_PATCH = "application/apply-patch+yaml"


def available() -> str | None:
    """None when a real control plane and its nmstate simulator can run here, else why not.

    Builds kube-apiserver and etcd on first use (``scripts/kube-build``, minutes; cached per version).
    """
    try:
        import cryptography  # noqa: F401  (the control plane's certificates)

        from reconciler.testing.controlplane import ControlPlaneError, ControlPlaneUnavailable, crds, launch, procs
    except ImportError as exc:
        return f"no real control plane in this checkout: {exc}"
    start = getattr(launch, "start", None)
    if not callable(start) or not {"interval", "admission"} <= set(inspect.signature(start).parameters):
        return "no launch.start(cp, names, interval=, admission=) to run the simulated nmstate for the real server"
    try:
        crds.directory()
        procs.binaries()
    except ControlPlaneUnavailable as exc:
        return exc.reason
    except ControlPlaneError as exc:
        return f"kube-apiserver/etcd could not be built: {exc}"
    return None


# ---- counting requests on the client --------------------------------------------------------------------


def classify(method: str, url: str, content_type: str = "", patch_verb: str | None = None) -> tuple[str, str, bool]:
    """``(verb, resource, dry_run)`` of one request, keyed as the API double counts them; resource ``""`` for a
    non-resource request (discovery, health), whose verb is then its path.

    ``patch_verb`` overrides how a PATCH counts when the content type is not known (kubectl's request log).
    """
    parts_url = urlsplit(url)
    query = parse_qs(parts_url.query)
    dry_run = "All" in query.get("dryRun", [])
    parts = [p for p in parts_url.path.split("/") if p]
    if parts[:1] == ["api"] and len(parts) >= 2:
        group, rest = "", parts[2:]
    elif parts[:1] == ["apis"] and len(parts) >= 3:
        group, rest = parts[1], parts[3:]
    else:
        return parts_url.path, "", dry_run
    if not rest:
        return parts_url.path, "", dry_run  # /api/v1, /apis/<group>/<version>: discovery
    if rest[0] == "namespaces" and len(rest) >= 3:
        rest = rest[2:]
    plural, name = rest[0], rest[1] if len(rest) >= 2 else ""
    resource = (f"{group}/{plural}" if group else plural) + (f"/{rest[2]}" if len(rest) >= 3 else "")
    if method == "GET":
        verb = ("watch" if query.get("watch", [""])[0] in ("1", "true", "True") else "list") if not name else "get"
    elif method == "PATCH":
        verb = patch_verb or ("apply" if content_type.split(";")[0].strip() == _APPLY_PATCH else "patch")
    else:
        verb = {"POST": "create", "PUT": "update", "DELETE": "delete"}.get(method, method.lower())
    return verb, resource, dry_run


@dataclass
class Tally:
    """Requests as the double's counters have them: ``(verb, resource)``, non-resource paths, writes.

    :meth:`sent` only appends (it runs inside the timed client call); :meth:`snapshot` classifies, outside it.
    """

    counts: Counter[tuple[str, str]] = field(default_factory=Counter)
    nonresource: Counter[str] = field(default_factory=Counter)
    writes: int = 0
    unread: list[tuple[str, str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def sent(self, method: str, url: str, content_type: str = "") -> None:
        self.unread.append((method, url, content_type))  # atomic under the GIL: no lock on the timed path

    def add(self, verb: str, resource: str, dry_run: bool) -> None:
        with self.lock:
            if not resource:
                self.nonresource[verb] += 1
                return
            self.counts[(verb, resource)] += 1
            if verb in _WRITE_VERBS and not dry_run:
                self.writes += 1

    def reset(self) -> None:
        with self.lock:
            self.unread.clear()
            self.counts.clear()
            self.nonresource.clear()
            self.writes = 0

    def snapshot(self) -> Counts:
        unread, self.unread = self.unread, []
        for method, url, content_type in unread:
            self.add(*classify(method, url, content_type))
        with self.lock:
            by_key = {f"{verb} {res}": n for (verb, res), n in sorted(self.counts.items())}
            return Counts(by_key, dict(self.nonresource), self.writes)


@contextlib.contextmanager
def counting_requests(tally: Tally) -> Iterator[Tally]:
    """Record every ``ApiClient.call_api`` of this process in ``tally`` (class-wide: virtnet makes its clients
    itself). The cost on the timed path is one list append per request; nothing else in this process talks to
    the server while a figure is timed."""
    from kubernetes.client import ApiClient

    original = ApiClient.call_api

    def call_api(self: Any, method: str, url: str, header_params: Any = None, *args: Any, **kwargs: Any) -> Any:
        try:
            return original(self, method, url, header_params, *args, **kwargs)
        finally:
            tally.sent(method, url, (header_params or {}).get("Content-Type", ""))

    ApiClient.call_api = call_api  # type: ignore[method-assign]
    try:
        yield tally
    finally:
        ApiClient.call_api = original  # type: ignore[method-assign]


# kubectl -v=6: I... round_trippers.go:632] "Response" verb="PATCH" url="https://..." status="201 Created" ...
_KUBECTL_RESPONSE = re.compile(r'"Response" verb="(?P<method>[A-Z]+)" url="(?P<url>[^"]+)"')


def kubectl_counts(log: str, patch_verb: str = "apply") -> Counts:
    """The requests in a ``kubectl -v=6`` log (stderr). kubectl's ``apply``/``diff --server-side`` PATCHes are all
    server-side applies; the log does not say the content type, hence ``patch_verb``."""
    tally = Tally()
    for m in _KUBECTL_RESPONSE.finditer(log):
        tally.add(*classify(m["method"], m["url"], patch_verb=patch_verb))
    return tally.snapshot()


# ---- the server ----------------------------------------------------------------------------------------------

#: Services get a ClusterIP each: L renders 2,300 Services, the control plane's own /24 holds 254 (past it
#: kube-apiserver answers 500 "range is full"). A /16 holds every size; its first address stays the
#: ``kubernetes`` Service IP the serving certificate names.
SERVICE_CIDR = "10.0.0.0/16"


@contextlib.contextmanager
def service_cidr(cidr: str) -> Iterator[str]:
    """The control plane's service range for the ``ControlPlane.start`` inside, if it can be set from here.

    Why here: ``ControlPlane.start`` has no parameter for it; its argv reads the module's ``SERVICE_CIDR``
    when the apiserver starts. Yields the range in effect (the control plane's own when it cannot be set).
    """
    import ipaddress

    from reconciler.testing.controlplane import cluster

    own, service_ip = getattr(cluster, "SERVICE_CIDR", None), getattr(cluster, "SERVICE_IP", None)
    if own is None or service_ip is None or ipaddress.ip_address(service_ip) not in ipaddress.ip_network(cidr):
        yield str(own)
        return
    cluster.SERVICE_CIDR = cidr
    try:
        yield cidr
    finally:
        cluster.SERVICE_CIDR = own


class RealServer:
    """A fresh control plane in ``directory`` seeded with ``nodes``, with the nmstate simulator when
    ``simulate``; requests of this process are counted while it runs (see :func:`counting_requests`).

    Same surface as :class:`bench.cluster.DoubleProcess`: ``kubeconfig``, ``reset()``, ``counts()``, and
    ``info`` (start times, versions) for the JSON.
    """

    name = "real"
    kubectl_log_counts = True  # kubectl's requests come from its -v=6 log, not from the server

    def __init__(
        self,
        directory: Path,
        nodes: list[dict[str, Any]],
        *,
        simulate: bool,
        sim_interval: float = DEFAULT_SIM_INTERVAL,
    ) -> None:
        from reconciler.testing.controlplane import ControlPlane, launch

        self.tally = Tally()
        self._counting: contextlib.ExitStack | None = None
        t = time.perf_counter()
        with service_cidr(SERVICE_CIDR) as cidr:
            self.plane = ControlPlane.start(directory, nodes=nodes)
        self.info: dict[str, Any] = {"start_seconds": time.perf_counter() - t, "service_cidr": cidr}
        try:
            status, version = self.plane.rest().get("/version")
            self.info["version"] = version.get("gitVersion") if status == 200 else None
            if simulate:
                t = time.perf_counter()
                launch.start(self.plane, SIM_CONTROLLERS, interval=sim_interval, admission=False)
                self.info.update(
                    simulator_start_seconds=time.perf_counter() - t,
                    simulator=list(SIM_CONTROLLERS),
                    simulator_interval_seconds=sim_interval,
                )
            self._cpu_at_reset = cpu_seconds(self.plane.pids().values())
            self._counting = contextlib.ExitStack()
            self._counting.enter_context(counting_requests(self.tally))
        except BaseException:
            self.plane.stop()
            raise

    @property
    def kubeconfig(self) -> Path:
        return self.plane.kubeconfig

    def reset(self) -> None:
        self.tally.reset()
        self._cpu_at_reset = cpu_seconds(self.plane.pids().values())

    def counts(self) -> Counts:
        counts = self.tally.snapshot()
        counts.server_cpu_seconds = cpu_seconds(self.plane.pids().values()) - self._cpu_at_reset
        return counts

    def close(self) -> None:
        if self._counting is not None:
            self._counting.close()
            self._counting = None
        self.plane.stop()

    def __enter__(self) -> RealServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
