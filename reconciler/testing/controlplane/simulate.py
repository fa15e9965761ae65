"""``python -m reconciler.testing.controlplane.simulate --kubeconfig K``: the double's simulated controllers
run against a real kube-apiserver, as a process of their own.

Why a separate process: on a real cluster nmstate, virt-controller, virt-handler, KubeMacPool and virt-api are
other processes that race the client; running them beside the apiserver (``scripts/kube-up`` starts this by
default, ``ControlPlane.start(dir, simulate=(...))`` in tests) gives the engine that, with the real server's
semantics, while the controller logic stays the one in :mod:`reconciler.testing.controllers` (through
:class:`~reconciler.testing.kubestore.KubeStore`). Polling every ``--interval`` seconds stands in for watches.

With the control plane's PKI (``--pki``, default ``<kubeconfig dir>/pki``) and the ``kubevirt`` controller it
also serves KubeMacPool's mutating webhook (:mod:`.kubemacpool`) and virt-api's restart subresource
(:mod:`.virtapi`), registers both, and waits until the aggregator reports the APIService Available before
writing ``--ready-file``. SIGTERM/SIGINT unregister them and stop.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from reconciler.testing.controllers import KUBEVIRT, NMSTATE_V1B1, build_controllers
from reconciler.testing.controlplane import kubemacpool, virtapi
from reconciler.testing.controlplane.gc import GarbageCollector
from reconciler.testing.controlplane.https import HttpsServer
from reconciler.testing.controlplane.pki import Pki, issue
from reconciler.testing.controlplane.rest import Rest, poll
from reconciler.testing.errors import ApiError
from reconciler.testing.kubestore import KubeStore

log = logging.getLogger("virtnet.simulate")
# gc: kube-controller-manager's garbage collector and namespace controller
KNOWN = ("nmstate", "kubevirt", "sriov", "gc")
VIRT_API_NAMESPACE = "openshift-cnv"  # OpenShift Virtualization's namespace (upstream KubeVirt: kubevirt)
SYNC_EVERY = 2.0  # seconds between KubeMacPool's pool syncs from the VM list (its release of deleted VMs)
GC_EVERY = 1.0  # seconds between garbage collector passes (each lists every kind virtnet touches)


def nodes_from_api(store: KubeStore) -> list[dict[str, Any]]:
    """The nodes as the controllers need them: name, labels and the NICs their NodeNetworkState reports."""
    nodes = []
    for node in store.objects("v1", "Node"):
        name = node["metadata"]["name"]
        nns = store.find(NMSTATE_V1B1, "NodeNetworkState", name) or {}
        current = (nns.get("status") or {}).get("currentState") or {}
        nodes.append({"name": name, "labels": node["metadata"].get("labels") or {},
                      "interfaces": current.get("interfaces") or [], "routes": current.get("routes") or {}})
    return nodes


class Simulator:
    """Controllers over ``rest``, plus the webhook and the aggregated API when ``pki`` is given."""

    def __init__(self, rest: Rest, names: Sequence[str], *, pki: Pki | None, delay_ticks: int = 2,
                 namespace: str = VIRT_API_NAMESPACE) -> None:
        if unknown := set(names) - set(KNOWN):
            raise ValueError(f"unknown simulated controllers {sorted(unknown)}; known: {list(KNOWN)}")
        self.rest, self.names, self.pki, self.namespace = rest, tuple(names), pki, namespace
        self.store = KubeStore(rest)
        self.controllers = build_controllers([n for n in self.names if n != "gc"], self.store,
                                             nodes_from_api(self.store), delay_ticks=delay_ticks, seed_nodes=False)
        self.gc = GarbageCollector(self.store) if "gc" in self.names else None
        self.webhook: kubemacpool.KubeMacPoolWebhook | None = None
        self.servers: list[HttpsServer] = []
        self._last_error: dict[str, str] = {}
        self._next_sync = self._next_gc = 0.0

    @property
    def serving(self) -> bool:
        return self.pki is not None and "kubevirt" in self.names

    def start(self, timeout: float = 60.0) -> dict[str, str]:
        """Serve and register the webhook and the aggregated API; returns their URLs (empty without PKI)."""
        if not self.serving:
            return {}
        assert self.pki is not None
        ca = self.pki.ca_crt.read_bytes()
        cert, key = issue(self.pki, "kubemacpool", "kubemacpool-service", hosts=("127.0.0.1",))
        self.webhook = kubemacpool.KubeMacPoolWebhook()
        self.webhook.sync(self.store.objects(KUBEVIRT, "VirtualMachine"))
        hook_server = HttpsServer("kubemacpool", self.webhook, cert, key)
        self.servers.append(hook_server)
        kubemacpool.register(self.rest, hook_server.url + kubemacpool.PATH, ca)
        svc = f"{virtapi.SERVICE}.{self.namespace}.svc"
        cert, key = issue(self.pki, "virt-api", virtapi.SERVICE, hosts=(svc, "127.0.0.1"))
        api_server = HttpsServer("virt-api", virtapi.VirtApi(self.rest), cert, key,
                                 client_ca=self.pki.path("front-proxy-ca.crt"))
        self.servers.append(api_server)
        virtapi.register(self.rest, self.namespace, api_server.port, ca)
        poll(f"APIService {virtapi.APISERVICE} Available", lambda: virtapi.available(self.rest), timeout=timeout,
             interval=0.2)
        return {"kubemacpool": hook_server.url, "virt-api": api_server.url}

    def tick(self) -> None:
        """One pass of every controller; a failure is logged (once per distinct message) and retried next tick."""
        now = time.monotonic()
        due = self.gc is not None and now >= self._next_gc
        if due:
            self._next_gc = now + GC_EVERY
        for controller in self.controllers + ([self.gc] if due else []):
            name = type(controller).__name__
            try:
                controller.tick()
            except ApiError as exc:
                self._report(name, f"{exc.code} {exc.reason}: {exc.message}", quiet=exc.code == 409)
            except Exception as exc:  # a controller racing a client must not stop the simulation
                self._report(name, f"{type(exc).__name__}: {exc}")
            else:
                self._last_error.pop(name, None)
        if self.webhook is not None and time.monotonic() >= self._next_sync:
            self._next_sync = time.monotonic() + SYNC_EVERY
            try:
                self.webhook.sync(self.store.objects(KUBEVIRT, "VirtualMachine"))
            except Exception as exc:
                self._report("KubeMacPool", f"{type(exc).__name__}: {exc}")

    def _report(self, who: str, what: str, *, quiet: bool = False) -> None:
        if self._last_error.get(who) != what:
            log.log(logging.DEBUG if quiet else logging.WARNING, "%s: %s (retrying)", who, what)
        self._last_error[who] = what

    def run(self, stop: threading.Event, interval: float) -> None:
        while not stop.is_set():
            started = time.monotonic()
            self.tick()
            stop.wait(max(0.0, interval - (time.monotonic() - started)))

    def close(self) -> None:
        """Unregister first (so the apiserver stops calling), then stop serving."""
        if self.servers:
            for what, undo in (("APIService", lambda: virtapi.unregister(self.rest, self.namespace)),
                               ("webhook", lambda: kubemacpool.unregister(self.rest))):
                try:
                    undo()
                except OSError as exc:
                    log.warning("could not unregister the %s: %s", what, exc)
        for server in self.servers:
            server.stop()
        self.servers.clear()


def _default_pki(kubeconfig: Path) -> Path | None:
    pki = kubeconfig.resolve().parent / "pki"
    return pki if (pki / "ca.key").is_file() else None


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m reconciler.testing.controlplane.simulate",
                                     description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--kubeconfig", required=True, type=Path)
    parser.add_argument("--controllers", default=",".join(KNOWN), help="comma-separated: nmstate,kubevirt,gc")
    parser.add_argument("--interval", type=float, default=0.2, help="seconds between controller passes")
    parser.add_argument("--delay-ticks", type=int, default=2, help="passes an NNCP stays Progressing")
    parser.add_argument("--pki", type=Path, help="the control plane's pki dir (CA key: serving certificates); "
                        "default <kubeconfig dir>/pki")
    parser.add_argument("--no-admission", action="store_true",
                        help="serve neither the KubeMacPool webhook nor virt-api's subresources")
    parser.add_argument("--namespace", default=VIRT_API_NAMESPACE, help="where virt-api's Service lives")
    parser.add_argument("--ready-file", type=Path, help="written (JSON) once everything is registered")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    pki_dir = None if args.no_admission else (args.pki or _default_pki(args.kubeconfig))
    names = [n for n in args.controllers.split(",") if n]
    sim = Simulator(Rest.from_kubeconfig(args.kubeconfig), names, pki=Pki(pki_dir) if pki_dir else None,
                    delay_ticks=args.delay_ticks, namespace=args.namespace)
    try:
        urls = sim.start()
        log.info("simulating %s every %.2f s against %s:%d%s", ",".join(names), args.interval, sim.rest.host,
                 sim.rest.port, "".join(f"; {k} at {v}" for k, v in urls.items()))
        if args.ready_file:
            tmp = args.ready_file.with_suffix(".tmp")
            tmp.write_text(json.dumps({"controllers": names, **urls}) + "\n")
            tmp.replace(args.ready_file)
        sim.run(stop, args.interval)
    finally:
        sim.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
