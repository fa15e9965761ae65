"""The Kubernetes API double tests hold: :class:`ApiDouble`, and ``main()`` to serve one from a shell.

Why a real HTTP server: the reconciler talks to clusters through the unmodified ``kubernetes`` client and
``kubectl``; serving them over loopback tests the exact bytes, headers, content types and status codes they
send and expect, which a mocked client object cannot. ``werkzeug``'s threaded server is used as-is (HTTP/1.1,
chunked responses, one thread per connection) so long-running watches do not block other calls.

The pieces: :mod:`.resources` (what is served), :mod:`.store` (objects and writes), :mod:`.eventlog`
(resourceVersions, watch history), :mod:`.errors` (Status errors), :mod:`.ssa` (managedFields and server-side
apply), :mod:`.patches` (patch formats, selectors), :mod:`.handler` (HTTP routing, counts, faults),
:mod:`.watch` (watch streams), :mod:`.faults` (fault plans) and :mod:`.controllers` (simulated nmstate and
KubeVirt controllers).

Usage::

    with ApiDouble(controllers=("nmstate",), nodes=[{"name": "worker-0", "interfaces": [...]}]) as api:
        v1 = kubernetes.client.CoreV1Api(api.api_client())
        ...
        assert api.counts[("apply", "nmstate.io/nodenetworkconfigurationpolicies")] == 1

    python -m reconciler.testing.apiserver --port 0 --kubeconfig out.yaml [--controllers nmstate,kubevirt]
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import threading
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client as k8s
from werkzeug.serving import BaseWSGIServer, make_server

from reconciler.testing.faults import FaultHook
from reconciler.testing.handler import Handler, RequestRecord
from reconciler.testing.resources import Registry
from reconciler.testing.responses import QuietRequestHandler
from reconciler.testing.store import Store

log = logging.getLogger(__name__)


class ApiDouble:
    """A Kubernetes API server double on ``127.0.0.1``; use as a context manager.

    ``controllers`` names simulated controllers (``"nmstate"``, ``"kubevirt"``), ``nodes`` the nodes they
    simulate (see :mod:`reconciler.testing.controllers`). ``tick_interval`` is the controllers' background
    period in seconds; ``None`` runs no thread, tests then call :meth:`tick` to advance deterministically.
    """

    def __init__(self, *, controllers: Sequence[str] = (), nodes: Sequence[dict[str, Any]] = (),
                 host: str = "127.0.0.1", port: int = 0, registry: Registry | None = None,
                 event_log_size: int = 1000, bookmark_interval: float = 1.0,
                 tick_interval: float | None = 0.02, nmstate_delay_ticks: int = 2,
                 require_namespaces: bool = True, faults: FaultHook | None = None) -> None:
        from reconciler.testing.controllers import build_controllers  # controllers import the store only

        self.store = Store(registry, event_log_size=event_log_size, require_namespaces=require_namespaces)
        self.handler = Handler(self.store, bookmark_interval=bookmark_interval)
        self.handler.faults = faults
        self.host, self.port = host, port
        self.tick_interval = tick_interval
        self._server: BaseWSGIServer | None = None
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()
        self._tick_lock = threading.Lock()
        # KubeVirt's restart (served by the handler) and a controller tick must not interleave: a tick that
        # read the VMI just before the restart deleted it would write the old VMI back
        self.handler.controller_lock = self._tick_lock
        for ns in ("default", "kube-system", "kube-public", "kube-node-lease"):  # what a new cluster has
            self.store.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
        self.controllers = build_controllers(controllers, self.store, nodes, delay_ticks=nmstate_delay_ticks)

    # ---- lifecycle -----------------------------------------------------------------------------------------

    def start(self) -> ApiDouble:
        self._server = make_server(self.host, self.port, self.handler, threaded=True,
                                   request_handler=QuietRequestHandler)
        self.port = self._server.server_port
        self._threads.append(threading.Thread(target=self._server.serve_forever, args=(0.05,), name="api-double",
                                              daemon=True))
        if self.controllers and self.tick_interval is not None:
            self._threads.append(threading.Thread(target=self._tick_loop, name="api-double-controllers",
                                                  daemon=True))
        for t in self._threads:
            t.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self.store.events.close()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        for t in self._threads:
            t.join(timeout=5)

    def __enter__(self) -> ApiDouble:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _tick_loop(self) -> None:
        while not self._stop.wait(self.tick_interval):
            try:
                self.tick()
            except Exception:  # a controller racing a delete must not stop the simulation for good
                log.exception("simulated controller tick failed; continuing")

    def tick(self, n: int = 1) -> None:
        """Advance every simulated controller by ``n`` steps (what the background thread does)."""
        with self._tick_lock:
            for _ in range(n):
                for c in self.controllers:
                    c.tick()

    # ---- clients -------------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def kubeconfig(self, path: str | Path, *, user: str = "virtnet", namespace: str = "default") -> Path:
        """Write a kubeconfig usable by kubectl and ``config.load_kube_config``.

        It carries the token ``user:<user>`` and ``as: <user>``: kubectl sends no token over plain HTTP but
        does send ``Impersonate-User``, so requests are attributed to ``user`` from both clients.
        """
        doc = {"apiVersion": "v1", "kind": "Config", "current-context": "double", "preferences": {},
               "clusters": [{"name": "double", "cluster": {"server": self.url}}],
               "users": [{"name": user, "user": {"token": f"user:{user}", "as": user}}],
               "contexts": [{"name": "double", "context": {"cluster": "double", "user": user,
                                                           "namespace": namespace}}]}
        out = Path(path)
        out.write_text(yaml.safe_dump(doc, sort_keys=False))
        return out

    def api_client(self, *, user: str = "virtnet") -> k8s.ApiClient:
        cfg = k8s.Configuration()
        cfg.host = self.url
        cfg.api_key = {"authorization": f"user:{user}"}
        cfg.api_key_prefix = {"authorization": "Bearer"}
        return k8s.ApiClient(cfg)

    # ---- accounting ----------------------------------------------------------------------------------------

    @property
    def faults(self) -> FaultHook | None:
        return self.handler.faults

    @faults.setter
    def faults(self, hook: FaultHook | None) -> None:
        self.handler.faults = hook

    @property
    def counts(self) -> Counter[tuple[str, str]]:
        """``Counter`` of ``(verb, resource)``; see the module docstring for the key format."""
        return self.handler.counts

    @property
    def fault_counts(self) -> Counter[tuple[str, str, str]]:
        """``Counter`` of ``(fault kind, verb, resource)``."""
        return self.handler.fault_counts

    @property
    def nonresource_counts(self) -> Counter[str]:
        return self.handler.nonresource_counts

    @property
    def requests(self) -> list[RequestRecord]:
        return self.handler.requests

    def writes(self) -> int:
        """Mutating requests served (create/update/patch/apply/delete, any status), dryRun excluded."""
        return self.handler.write_count

    def reset_counts(self) -> None:
        with self.handler.lock:
            self.handler.counts.clear()
            self.handler.fault_counts.clear()
            self.handler.nonresource_counts.clear()
            self.handler.requests.clear()
            self.handler.write_count = 0


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m reconciler.testing.apiserver --port 0 --kubeconfig out.yaml``: serve until killed."""
    parser = argparse.ArgumentParser(description="Serve the virtnet Kubernetes API double.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--kubeconfig", help="write a kubeconfig for the served double here")
    parser.add_argument("--controllers", default="", help="comma-separated: nmstate,kubevirt")
    parser.add_argument("--nodes", help="YAML file with a list of simulated nodes")
    opts = parser.parse_args(argv)
    nodes = yaml.safe_load(Path(opts.nodes).read_text()) if opts.nodes else []
    controllers = [c for c in opts.controllers.split(",") if c]
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    with ApiDouble(controllers=controllers, nodes=nodes, host=opts.host, port=opts.port) as api:
        if opts.kubeconfig:
            api.kubeconfig(opts.kubeconfig)
        print(f"serving the Kubernetes API double on {api.url}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            while not done.wait(0.1):  # a bounded wait lets the SIGTERM handler run promptly
                pass



if __name__ == "__main__":
    main()
