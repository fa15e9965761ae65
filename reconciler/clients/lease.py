"""One ``coordination.k8s.io/v1`` Lease: acquire (create, renew or take over), release, delete.

Why: two things in virtnet hold a Lease — the controller's leader election (``reconciler.server.leader``)
and the node agent's ``maxUnavailable`` slots (``reconciler.agent.api``) — and both need the same care,
so there is one implementation:

* a lease is free when it has no holder or when ``renewTime + leaseDurationSeconds`` has passed (judged
  from the lease's own times as the holder wrote them; node clocks are assumed roughly in sync, NTP);
* every write after a read is a ``replace`` carrying the ``resourceVersion`` read, so of two candidates
  racing for a free lease exactly one wins: the other gets ``409 Conflict`` and is told it lost; a lost
  create race (``409`` on create) is a loss the same way;
* times are sent as RFC 3339 with exactly six fractional digits (``MicroTime``), which the API server
  requires and ``datetime.isoformat()`` does not produce when the microseconds are zero.

Side effects: requests through a ``CoordinationV1Api`` (or any object with its four Lease calls; tests
pass doubles). Other API errors than the 404/409 answers above propagate to the caller.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Protocol

from kubernetes import client
from kubernetes.client.exceptions import ApiException

log = logging.getLogger(__name__)


class CoordinationApi(Protocol):
    """The Lease calls of ``kubernetes.client.CoordinationV1Api`` that :class:`Lease` makes."""

    def read_namespaced_lease(self, name: str, namespace: str) -> client.V1Lease: ...
    def create_namespaced_lease(self, namespace: str, body: client.V1Lease) -> client.V1Lease: ...
    def replace_namespaced_lease(self, name: str, namespace: str, body: client.V1Lease) -> client.V1Lease: ...
    def delete_namespaced_lease(
        self, name: str, namespace: str, *, body: client.V1DeleteOptions | None = None
    ) -> object: ...


class _MicroTime(dt.datetime):
    """A datetime that always serialises with microseconds (the API server's ``MicroTime``)."""

    def isoformat(self, sep: str = "T", timespec: str = "microseconds") -> str:
        return super().isoformat(sep, "microseconds")


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def aware(t: dt.datetime) -> dt.datetime:
    """``t`` with a time zone (UTC when it has none)."""
    return t if t.tzinfo is not None else t.replace(tzinfo=dt.UTC)


def micro(t: dt.datetime) -> _MicroTime:
    t = aware(t)
    return _MicroTime(t.year, t.month, t.day, t.hour, t.minute, t.second, t.microsecond, tzinfo=t.tzinfo)


def expired(spec: client.V1LeaseSpec, now: dt.datetime) -> bool:
    """Whether a lease may be taken: never renewed, or ``renewTime + leaseDurationSeconds`` has passed."""
    if spec.renew_time is None:
        return True
    return aware(now) >= aware(spec.renew_time) + dt.timedelta(seconds=spec.lease_duration_seconds or 0)


def _resource_version(lease: client.V1Lease) -> str | None:
    return lease.metadata.resource_version if lease.metadata is not None else None


class Lease:
    """The Lease ``namespace/name``. :attr:`holder` is the holder seen on the last read or write."""

    def __init__(self, api: CoordinationApi, name: str, namespace: str) -> None:
        self.api = api
        self.name = name
        self.namespace = namespace
        self.holder = ""

    def _body(
        self,
        now: dt.datetime,
        acquired: dt.datetime,
        transitions: int,
        resource_version: str | None,
        holder: str,
        duration: int,
    ) -> client.V1Lease:
        return client.V1Lease(
            api_version="coordination.k8s.io/v1",
            kind="Lease",
            metadata=client.V1ObjectMeta(name=self.name, namespace=self.namespace, resource_version=resource_version),
            spec=client.V1LeaseSpec(
                holder_identity=holder,
                lease_duration_seconds=duration,
                acquire_time=micro(acquired),
                renew_time=micro(now),
                lease_transitions=transitions,
            ),
        )

    def _read(self) -> client.V1Lease | None:
        try:
            return self.api.read_namespaced_lease(self.name, self.namespace)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def acquire(self, identity: str, duration: int, now: dt.datetime) -> bool:
        """Create, renew, or take over the lease for ``identity`` for ``duration`` seconds from ``now``.

        True if ``identity`` holds it afterwards; False when another live holder has it or when a racing
        writer won (``409``). Renewing keeps ``acquireTime``; a new holder counts one more transition.
        """
        now = aware(now)
        lease = self._read()
        if lease is None:
            try:
                self.api.create_namespaced_lease(self.namespace, self._body(now, now, 0, None, identity, duration))
            except ApiException as exc:
                if exc.status == 409:
                    log.info("lease %s/%s: lost the create race", self.namespace, self.name)
                    return False
                raise
            self.holder = identity
            return True
        spec = lease.spec or client.V1LeaseSpec()
        self.holder = spec.holder_identity or ""
        if self.holder and self.holder != identity and not expired(spec, now):
            return False
        transitions = spec.lease_transitions or 0
        if self.holder == identity and spec.acquire_time is not None:
            acquired = aware(spec.acquire_time)
        else:
            acquired = now  # a new holder: taking over from someone else or from a released lease
            transitions += 1
        body = self._body(now, acquired, transitions, _resource_version(lease), identity, duration)
        try:
            self.api.replace_namespaced_lease(self.name, self.namespace, body)
        except ApiException as exc:
            if exc.status == 409:
                log.info("lease %s/%s: lost an update race (409)", self.namespace, self.name)
                return False
            raise
        self.holder = identity
        return True

    def release(self, identity: str, now: dt.datetime) -> bool:
        """Hand the lease back if ``identity`` holds it (empty holder, one second), so whoever tries next takes
        it at once. True if released; False when someone else holds it."""
        lease = self._read()
        spec = (lease.spec if lease is not None else None) or client.V1LeaseSpec()
        if lease is None or spec.holder_identity != identity:
            return False
        body = self._body(aware(now), aware(now), spec.lease_transitions or 0, _resource_version(lease), "", 1)
        self.api.replace_namespaced_lease(self.name, self.namespace, body)
        self.holder = ""
        return True

    def delete(self, identity: str) -> bool:
        """Delete the lease if ``identity`` holds it, on the condition that nobody changed it since it was read
        (for short-lived leases that should not pile up). True if deleted; gone or changed meanwhile is False."""
        try:
            lease = self._read()
            if lease is None or (lease.spec is None or lease.spec.holder_identity != identity):
                return False
            pre = client.V1Preconditions(resource_version=_resource_version(lease))
            self.api.delete_namespaced_lease(self.name, self.namespace, body=client.V1DeleteOptions(preconditions=pre))
        except ApiException as exc:
            if exc.status in (404, 409):
                return False
            raise
        self.holder = ""
        return True
