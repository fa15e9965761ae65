""":class:`ControlPlane`: etcd + kube-apiserver on loopback with CRDs and seed objects, envtest-style.

Why a real apiserver next to the double: server-side apply, pruning, strict field validation, namespace
lifecycle and CRD structural schemas are the apiserver's own code; testing against it catches what a
re-implementation gets subtly wrong. Nothing runs the objects (no kubelet, scheduler or controller-manager);
``simulate=("nmstate", "kubevirt")`` starts the double's simulated controllers, the KubeMacPool webhook and
virt-api's aggregated restart as a process of their own (:mod:`.launch`, :mod:`.simulate`). Other additions
plug in via ``hooks`` (run after seeding, with the started ControlPlane) and ``on_stop`` (run first in
:meth:`stop`).

Everything lives in ``DIR``: ``pki/``, ``etcd/`` (data), ``*.log``, ``*.pid``, ``state.json``, ``kubeconfig``.
"""

from __future__ import annotations

import atexit
import base64
import json
import subprocess
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import yaml

from reconciler.testing.controlplane import crds, launch, procs, seed
from reconciler.testing.controlplane.errors import ControlPlaneError
from reconciler.testing.controlplane.pki import FRONT_PROXY_CLIENT, Pki, make_all
from reconciler.testing.controlplane.rest import Rest, poll

SERVICE_CIDR, SERVICE_IP = "10.0.0.0/24", "10.0.0.1"
_ETCD, _APISERVER = "etcd", "kube-apiserver"
Hook = Callable[["ControlPlane"], None]


def _etcd_argv(bin_dir: Path, directory: Path, client: int, peer: int) -> list[str]:
    peer_url, client_url = f"http://127.0.0.1:{peer}", f"http://127.0.0.1:{client}"
    return [str(bin_dir / _ETCD), "--name=virtnet", f"--data-dir={directory / 'etcd'}",
            f"--listen-client-urls={client_url}", f"--advertise-client-urls={client_url}",
            f"--listen-peer-urls={peer_url}", f"--initial-advertise-peer-urls={peer_url}",
            f"--initial-cluster=virtnet={peer_url}", "--unsafe-no-fsync", "--log-level=warn"]


def _apiserver_argv(bin_dir: Path, pki: Pki, etcd_port: int, port: int) -> list[str]:
    p = pki.path
    return [
        str(bin_dir / _APISERVER), f"--etcd-servers=http://127.0.0.1:{etcd_port}",
        "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", f"--secure-port={port}",
        f"--cert-dir={pki.dir}", f"--tls-cert-file={p('apiserver.crt')}",
        f"--tls-private-key-file={p('apiserver.key')}",
        f"--client-ca-file={pki.ca_crt}", "--authorization-mode=RBAC", "--allow-privileged=true",
        f"--service-cluster-ip-range={SERVICE_CIDR}", f"--service-account-issuer=https://127.0.0.1:{port}",
        f"--service-account-key-file={p('sa.pub')}", f"--service-account-signing-key-file={p('sa.key')}",
        # aggregated APIs (a later step): the apiserver proxies to them as front-proxy-client
        f"--requestheader-client-ca-file={p('front-proxy-ca.crt')}",
        f"--requestheader-allowed-names={FRONT_PROXY_CLIENT}", "--requestheader-username-headers=X-Remote-User",
        "--requestheader-group-headers=X-Remote-Group", "--requestheader-extra-headers-prefix=X-Remote-Extra-",
        f"--proxy-client-cert-file={p('front-proxy-client.crt')}",
        f"--proxy-client-key-file={p('front-proxy-client.key')}", "--enable-aggregator-routing=true",
        # 1.37 refuses a loopback advertise address for the endpoint reconciler; k8s' own test server
        # (cmd/kube-apiserver/app/testing) turns it off the same way. No `kubernetes` Endpoints, then.
        "--endpoint-reconciler-type=none", "--profiling=false",
    ]


def _b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


@dataclass
class ControlPlane:
    """A running control plane rooted in ``dir``; see the module docstring. Use :meth:`start`."""

    dir: Path
    port: int
    etcd_port: int
    bin_dir: Path
    pki: Pki
    on_stop: list[Callable[[], None]] = field(default_factory=list)
    _children: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict, repr=False, compare=False)

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def kubeconfig(self) -> Path:
        return self.dir / "kubeconfig"

    def pids(self) -> dict[str, int]:
        """Process ids of etcd and kube-apiserver (the bench reads their CPU time from ``/proc``)."""
        return {name: child.pid for name, child in self._children.items()}

    def rest(self) -> Rest:
        """An admin client for setup-style requests (the tests use the ``kubernetes`` client on kubeconfig)."""
        return Rest("127.0.0.1", self.port, str(self.pki.ca_crt), str(self.pki.admin_crt), str(self.pki.admin_key))

    @classmethod
    def start(cls, directory: Path | str, *, nodes: Sequence[dict[str, Any]] | None = None,
              install_crds: bool = True, seed_objects: bool = True, hooks: Sequence[Hook] = (),
              simulate: Sequence[str] = (), timeout: float = 120.0, detach: bool = False,
              apiserver_flags: Sequence[str] = ()) -> ControlPlane:
        """Build if needed, start etcd + kube-apiserver, install CRDs, seed, start the ``simulate`` controllers
        (``"nmstate"``, ``"kubevirt"``; with kubevirt also KubeMacPool and virt-api), run ``hooks``; stop all on
        failure.

        The processes run in their own session so they can outlive this one: ``detach=True`` (kube-up) leaves
        them running at exit; otherwise an ``atexit`` hook stops them if :meth:`stop` was never reached.
        Raises :class:`ControlPlaneUnavailable` (skip) where it cannot run here, :class:`ControlPlaneError`
        when it should have run and did not. ``apiserver_flags`` are added to kube-apiserver's command line
        (e.g. ``--watch-cache=false``, so a watch from a compacted revision meets etcd's 410).
        """
        directory = Path(directory).resolve()
        directory.mkdir(parents=True, exist_ok=True)
        if procs.running(_APISERVER, directory) or procs.running(_ETCD, directory):
            raise ControlPlaneError(f"a control plane is already running in {directory}; stop it first")
        pki = make_all(directory / "pki", SERVICE_IP)  # first: fails fast (skip) without `cryptography`
        bin_dir = procs.binaries()
        procs.remove_tree(directory / "etcd")
        etcd_port, peer_port, port = procs.free_ports(3)
        cp = cls(directory, port, etcd_port, bin_dir, pki)
        try:
            cp._boot(peer_port, timeout, list(apiserver_flags))
            if install_crds:
                crds.install(cp.rest(), crds.load(), timeout=timeout)
            if seed_objects:
                seed.seed(cp.rest(), nodes)
            for hook in [launch.simulators(simulate)] * bool(simulate) + list(hooks):
                hook(cp)
        except BaseException:
            cp.stop(keep_data=True)  # keep logs and data for the post-mortem
            raise
        if not detach:
            atexit.register(cp.stop)
            cp.on_stop.append(lambda: atexit.unregister(cp.stop))
        return cp

    def _boot(self, peer_port: int, timeout: float, flags: list[str]) -> None:
        argv = _etcd_argv(self.bin_dir, self.dir, self.etcd_port, peer_port)
        self._children[_ETCD] = procs.spawn(_ETCD, argv, self.dir)
        poll("etcd /health", self._etcd_healthy, timeout=timeout, alive=self._dead)
        argv = _apiserver_argv(self.bin_dir, self.pki, self.etcd_port, self.port) + flags
        self._children[_APISERVER] = procs.spawn(_APISERVER, argv, self.dir)
        rest = self.rest()
        poll("kube-apiserver /readyz", lambda: True if rest.get("/readyz")[0] == 200 else None,
             timeout=timeout, interval=0.2, alive=self._dead)
        self._write_state()

    def compact_etcd(self) -> int:
        """Compact etcd's history up to now (what etcd does on a schedule): a watch from an older revision
        then gets 410 Gone. Returns the revision compacted to."""
        def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
            request = urllib.request.Request(f"http://127.0.0.1:{self.etcd_port}{path}", json.dumps(body).encode(),
                                             method="POST")
            with urllib.request.urlopen(request, timeout=10) as resp:
                return dict(json.load(resp))

        revision = int(post("/v3/kv/range", {"key": "AA=="})["header"]["revision"])
        post("/v3/kv/compaction", {"revision": revision, "physical": True})
        return revision

    def _etcd_healthy(self) -> bool | None:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.etcd_port}/health", timeout=2) as resp:
            return True if json.load(resp).get("health") == "true" else None

    def _dead(self) -> str | None:
        for name, child in self._children.items():
            if (code := child.poll()) is not None:
                log = self.dir / f"{name}.log"
                return f"{name} exited with {code}; end of {log}:\n{procs.log_tail(name, self.dir)}"
        return None

    def _write_state(self) -> None:
        user = {"client-certificate-data": _b64(self.pki.admin_crt), "client-key-data": _b64(self.pki.admin_key)}
        config = {
            "apiVersion": "v1", "kind": "Config", "preferences": {},
            "clusters": [{"name": "virtnet-test", "cluster": {"server": self.server,
                                                              "certificate-authority-data": _b64(self.pki.ca_crt)}}],
            "users": [{"name": "admin", "user": user}],
            "contexts": [{"name": "virtnet-test", "context": {"cluster": "virtnet-test", "user": "admin"}}],
            "current-context": "virtnet-test",
        }
        self.kubeconfig.write_text(yaml.safe_dump(config, sort_keys=False))
        self.kubeconfig.chmod(0o600)
        state = {"port": self.port, "etcd_port": self.etcd_port, "bin_dir": str(self.bin_dir)}
        (self.dir / "state.json").write_text(json.dumps(state) + "\n")

    @classmethod
    def attach(cls, directory: Path | str) -> ControlPlane:
        """The control plane a previous :meth:`start` (e.g. ``scripts/kube-up``) left in ``directory``."""
        directory = Path(directory).resolve()
        try:
            state = json.loads((directory / "state.json").read_text())
        except (OSError, ValueError) as exc:
            raise ControlPlaneError(f"no control plane state in {directory}") from exc
        return cls(directory, state["port"], state["etcd_port"], Path(state["bin_dir"]), Pki(directory / "pki"))

    def stop(self, *, keep_data: bool = False) -> None:
        """Run ``on_stop`` hooks, stop kube-apiserver then etcd, remove etcd's data. Already stopped is fine."""
        errors: list[BaseException] = []
        for callback in reversed(self.on_stop):
            try:
                callback()
            except Exception as exc:  # keep stopping the processes whatever a hook did
                errors.append(exc)
        self.on_stop.clear()
        stop_dir(self.dir, keep_data=keep_data)
        for child in self._children.values():
            procs.end_child(child)
        if errors:
            raise ControlPlaneError(f"on_stop hooks failed: {errors}") from errors[0]

    def __enter__(self) -> ControlPlane:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def stop_dir(directory: Path | str, *, keep_data: bool = False) -> bool:
    """Stop whatever runs in ``directory`` (pid files), remove its etcd data; True if anything was running."""
    directory = Path(directory).resolve()
    stopped = launch.stop(directory)  # first: it unregisters its webhook and APIService from the apiserver
    stopped = procs.stop(_APISERVER, directory) or stopped
    stopped = procs.stop(_ETCD, directory) or stopped
    if not keep_data:
        procs.remove_tree(directory / "etcd")
        (directory / "state.json").unlink(missing_ok=True)
    return stopped
