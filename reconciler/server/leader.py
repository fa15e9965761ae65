"""Leader election on a ``coordination.k8s.io/v1`` Lease, so the controller can run with replicas >= 2.

Why: only one replica may apply changes and write status at a time, but a standby replica should take
over quickly when the leader dies. This is the same protocol client-go uses (a Lease whose holder renews
it every ``retry_period``; anyone may take it once ``renewTime + leaseDurationSeconds`` has passed), kept
small and fully testable: the clock is injectable and :meth:`LeaderElector.step` runs exactly one round,
so tests drive time instead of sleeping.

Safety rules (the Lease reads and writes are :class:`reconciler.clients.lease.Lease`, shared with the node
agent's rollout slots):

* every write is a ``replace`` carrying the ``resourceVersion`` we read, so two candidates racing for an
  expired lease cannot both win: the loser gets ``409 Conflict`` and stays a follower;
* a leader that cannot renew for ``renew_deadline`` seconds steps down (calls ``on_stopped_leading``)
  *before* its lease can expire (``renew_deadline < lease_duration``), so there is never a moment when a
  follower may take over while the old leader still believes it leads;
* on graceful shutdown the leader releases the lease (empty ``holderIdentity``,
  ``leaseDurationSeconds: 1``) so a standby takes over on its next round instead of waiting for expiry.

Expiry is judged from the lease's own ``renewTime``, as written by the holder; this assumes node clocks
are roughly in sync (NTP), which OpenShift guarantees.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable
from typing import Any

import urllib3
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from reconciler.clients.lease import Lease, aware, utc_now

log = logging.getLogger(__name__)

Clock = Callable[[], dt.datetime]


class LeaderElector:
    """Campaigns for the Lease ``namespace/name`` as ``identity``.

    ``on_started_leading`` / ``on_stopped_leading`` are called from the election thread (or from the
    caller of :meth:`step` / :meth:`stop`) on each transition; they must return quickly and start or
    signal the real work elsewhere. ``api`` replaces the ``CoordinationV1Api`` built from ``api_client``
    (tests use it to inject doubles).
    """

    def __init__(
        self,
        api_client: client.ApiClient | None,
        name: str,
        namespace: str,
        identity: str,
        lease_duration: float = 15,
        renew_deadline: float = 10,
        retry_period: float = 2,
        on_started_leading: Callable[[], None] | None = None,
        on_stopped_leading: Callable[[], None] | None = None,
        *,
        clock: Clock = utc_now,
        api: Any | None = None,
    ) -> None:
        if not identity:
            raise ValueError("identity must not be empty")
        if not 0 < retry_period < renew_deadline < lease_duration:
            raise ValueError("need 0 < retry_period < renew_deadline < lease_duration")
        self.name = name
        self.namespace = namespace
        self.identity = identity
        self.lease_duration = lease_duration
        self.renew_deadline = renew_deadline
        self.retry_period = retry_period
        self.on_started_leading = on_started_leading
        self.on_stopped_leading = on_stopped_leading
        self._clock = clock
        self._lease = Lease(api if api is not None else client.CoordinationV1Api(api_client), name, namespace)
        self._leader = False
        self._last_renew: dt.datetime | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.RLock()

    # ------------------------------------------------------------------ state

    @property
    def is_leader(self) -> bool:
        """True while we hold the lease and our last renewal is within ``renew_deadline``."""
        with self._lock:
            if not self._leader or self._last_renew is None:
                return False
            age = (aware(self._clock()) - self._last_renew).total_seconds()
            return age < self.renew_deadline

    @property
    def observed_holder(self) -> str:
        """The holder seen on the last read of the lease ("" when free or unknown)."""
        return self._lease.holder

    # ------------------------------------------------------------------ one round

    def try_acquire_or_renew(self) -> bool:
        """One attempt: create, renew, or take over the lease. True if we hold it afterwards.

        Returns False when another live holder has it or when we lost a race (``409``). Other API
        errors propagate; :meth:`step` counts them as a failed attempt.
        """
        return self._lease.acquire(self.identity, max(1, round(self.lease_duration)), self._clock())

    def step(self) -> bool:
        """Run one election round, fire transition callbacks, and return whether we lead now."""
        with self._lock:
            now = aware(self._clock())
            try:
                ok = self.try_acquire_or_renew()
            except (ApiException, urllib3.exceptions.HTTPError, OSError) as exc:
                log.warning("lease %s/%s: %s", self.namespace, self.name, exc)
                ok = False
            if ok:
                self._last_renew = now
                if not self._leader:
                    self._leader = True
                    log.info("lease %s/%s: %s started leading", self.namespace, self.name, self.identity)
                    if self.on_started_leading:
                        self.on_started_leading()
                return True
            if self._leader:
                taken = self.observed_holder not in ("", self.identity)
                stale = self._last_renew is None or (now - self._last_renew).total_seconds() >= self.renew_deadline
                if taken or stale:
                    self._step_down("lease taken by " + self.observed_holder if taken else "renew deadline")
            return self._leader

    def _step_down(self, why: str) -> None:
        self._leader = False
        log.info("lease %s/%s: %s stopped leading (%s)", self.namespace, self.name, self.identity, why)
        if self.on_stopped_leading:
            self.on_stopped_leading()

    def release(self) -> bool:
        """Give the lease up if we hold it, so a standby can take it at once. True if released."""
        with self._lock:
            released = False
            try:
                released = self._lease.release(self.identity, self._clock())
            except (ApiException, urllib3.exceptions.HTTPError, OSError) as exc:
                log.warning("lease %s/%s: release failed: %s", self.namespace, self.name, exc)
            if self._leader:
                self._step_down("released")
            return released

    # ------------------------------------------------------------------ loop

    def run(self) -> None:
        """Campaign until :meth:`stop`: one :meth:`step` every ``retry_period`` seconds."""
        while not self._stop.is_set():
            self.step()
            self._stop.wait(self.retry_period)

    def start(self) -> threading.Thread:
        """Run :meth:`run` in a daemon thread and return it."""
        if self._thread is not None and self._thread.is_alive():
            return self._thread
        self._stop.clear()
        self._thread = threading.Thread(target=self.run, name=f"leader-{self.name}", daemon=True)
        self._thread.start()
        return self._thread

    def stop(self, release: bool = True, timeout: float | None = None) -> None:
        """Stop campaigning; if ``release``, hand the lease back so a standby takes over at once."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        if release:
            self.release()
        else:
            with self._lock:
                if self._leader:
                    self._step_down("stopped")
