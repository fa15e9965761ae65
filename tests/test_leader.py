"""Leader election: two electors on one Lease, driven by a fake clock (no sleeping, no wall-clock asserts);
and the same Lease as the node agent's short-lived rollout slot (acquire, refuse, delete, take over).

Runs against the project's HTTP API double (``reconciler.testing.apiserver.ApiDouble``) when it is
importable, and always against a small in-memory ``CoordinationV1Api`` fake that enforces
``resourceVersion`` the way the API server does. Races and API failures are produced by a wrapper that
interleaves or fails calls, so they run on both backends.
"""

from __future__ import annotations

import copy
import datetime as dt
import importlib
import re
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from reconciler.clients.lease import Lease
from reconciler.server.leader import LeaderElector

NS = "virtnet-system"
NAME = "virtnet-controller"
T0 = dt.datetime(2030, 1, 1, 12, 0, 0, tzinfo=dt.UTC)


class FakeClock:
    def __init__(self, start: dt.datetime = T0) -> None:
        self.now = start

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


class MemoryCoordinationApi:
    """The Lease calls ``reconciler.clients.lease.Lease`` makes, with API-server semantics for
    404/409/resourceVersion (and a delete's ``preconditions.resourceVersion``)."""

    def __init__(self) -> None:
        self.leases: dict[tuple[str, str], dict[str, Any]] = {}
        self._rv = 0
        self._lock = threading.Lock()
        self._api_client = client.ApiClient()

    def _store(self, namespace: str, body: client.V1Lease) -> client.V1Lease:
        self._rv += 1
        data = self._api_client.sanitize_for_serialization(body)
        data["metadata"]["resourceVersion"] = str(self._rv)
        data["metadata"]["namespace"] = namespace
        self.leases[(namespace, body.metadata.name)] = data
        return self._load(data)

    @staticmethod
    def _load(data: dict[str, Any]) -> client.V1Lease:
        return client.V1Lease.from_dict(copy.deepcopy(data))

    def read_namespaced_lease(self, name: str, namespace: str) -> client.V1Lease:
        with self._lock:
            data = self.leases.get((namespace, name))
            if data is None:
                raise ApiException(status=404, reason="Not Found")
            return self._load(data)

    def create_namespaced_lease(self, namespace: str, body: client.V1Lease) -> client.V1Lease:
        with self._lock:
            if (namespace, body.metadata.name) in self.leases:
                raise ApiException(status=409, reason="AlreadyExists")
            return self._store(namespace, body)

    def replace_namespaced_lease(self, name: str, namespace: str, body: client.V1Lease) -> client.V1Lease:
        with self._lock:
            current = self.leases.get((namespace, name))
            if current is None:
                raise ApiException(status=404, reason="Not Found")
            if body.metadata.resource_version != current["metadata"]["resourceVersion"]:
                raise ApiException(status=409, reason="Conflict")
            return self._store(namespace, body)

    def delete_namespaced_lease(
        self, name: str, namespace: str, *, body: client.V1DeleteOptions | None = None
    ) -> dict[str, Any]:
        with self._lock:
            current = self.leases.get((namespace, name))
            if current is None:
                raise ApiException(status=404, reason="Not Found")
            pre = body.preconditions if body is not None else None
            if pre is not None and pre.resource_version not in (None, current["metadata"]["resourceVersion"]):
                raise ApiException(status=409, reason="Conflict")
            del self.leases[(namespace, name)]
            return {"status": "Success"}


class Interposer:
    """Wraps a CoordinationV1Api: can fail calls, or run a hook right after a read (to force races)."""

    def __init__(self, api: Any) -> None:
        self.api = api
        self.fail_with: int | None = None
        self.after_read: Callable[[], None] | None = None
        self.writes: list[client.V1Lease] = []

    def _maybe_fail(self) -> None:
        if self.fail_with is not None:
            raise ApiException(status=self.fail_with, reason="injected")

    def read_namespaced_lease(self, name: str, namespace: str) -> client.V1Lease:
        self._maybe_fail()
        try:
            return self.api.read_namespaced_lease(name, namespace)
        finally:
            hook, self.after_read = self.after_read, None
            if hook:
                hook()

    def create_namespaced_lease(self, namespace: str, body: client.V1Lease) -> client.V1Lease:
        self._maybe_fail()
        self.writes.append(body)
        return self.api.create_namespaced_lease(namespace, body)

    def replace_namespaced_lease(self, name: str, namespace: str, body: client.V1Lease) -> client.V1Lease:
        self._maybe_fail()
        self.writes.append(body)
        return self.api.replace_namespaced_lease(name, namespace, body)


def _api_double() -> Any | None:
    try:
        mod = importlib.import_module("reconciler.testing.apiserver")
    except ImportError:
        return None
    return getattr(mod, "ApiDouble", None)


@pytest.fixture(params=["apidouble", "memory"])
def coordination(request: pytest.FixtureRequest) -> Iterator[Callable[[], Any]]:
    """A factory of CoordinationV1Api-like objects that all see the same Leases."""
    if request.param == "memory":
        shared = MemoryCoordinationApi()
        yield lambda: shared
        return
    double_cls = _api_double()
    if double_cls is None:
        pytest.skip("reconciler.testing.apiserver.ApiDouble is not available yet")
    with double_cls() as double:
        double.store.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})  # the release's
        yield lambda: client.CoordinationV1Api(double.api_client())


class Pair:
    def __init__(self, factory: Callable[[], Any], clock: FakeClock) -> None:
        self.clock = clock
        self.events: list[str] = []
        self.raw = factory()
        self.api_a = Interposer(factory())
        self.api_b = Interposer(factory())
        self.a = self._elector("a", self.api_a)
        self.b = self._elector("b", self.api_b)

    def _elector(self, ident: str, api: Interposer) -> LeaderElector:
        return LeaderElector(
            None,
            NAME,
            NS,
            ident,
            lease_duration=15,
            renew_deadline=10,
            retry_period=2,
            on_started_leading=lambda: self.events.append(f"{ident}+"),
            on_stopped_leading=lambda: self.events.append(f"{ident}-"),
            clock=self.clock,
            api=api,
        )

    def lease(self) -> client.V1Lease:
        return self.raw.read_namespaced_lease(NAME, NS)

    def holder(self) -> str:
        return self.lease().spec.holder_identity or ""


@pytest.fixture
def pair(coordination: Callable[[], Any]) -> Pair:
    return Pair(coordination, FakeClock())


def test_first_candidate_acquires_and_second_follows(pair: Pair) -> None:
    assert pair.a.step() is True
    assert pair.b.step() is False
    assert pair.a.is_leader and not pair.b.is_leader
    lease = pair.lease()
    assert lease.spec.holder_identity == "a"
    assert lease.spec.lease_duration_seconds == 15
    assert pair.b.observed_holder == "a"
    assert pair.events == ["a+"]


def test_renew_moves_renew_time_and_keeps_acquire_time(pair: Pair) -> None:
    pair.a.step()
    first = pair.lease()
    pair.clock.advance(2)
    assert pair.a.step() is True
    second = pair.lease()
    assert second.metadata.resource_version != first.metadata.resource_version
    assert second.spec.renew_time - first.spec.renew_time == dt.timedelta(seconds=2)
    assert second.spec.acquire_time == first.spec.acquire_time
    assert second.spec.lease_transitions == first.spec.lease_transitions
    assert pair.events == ["a+"]  # renewing is not a new transition


def test_follower_stays_follower_while_leader_renews(pair: Pair) -> None:
    pair.a.step()
    for _ in range(30):  # 60 s of fake time, 4x the lease duration
        pair.clock.advance(2)
        assert pair.b.step() is False
        assert pair.a.step() is True
    assert pair.events == ["a+"]
    assert pair.holder() == "a"


def test_follower_takes_over_only_after_expiry_when_leader_dies(pair: Pair) -> None:
    pair.a.step()  # renewTime = T0; a then "dies": it never steps again
    pair.clock.advance(14.9)
    assert pair.b.step() is False, "lease still valid: renewTime + 15s not reached"
    assert not pair.a.is_leader, "a has not renewed for longer than renew_deadline"
    pair.clock.advance(0.1)
    assert pair.b.step() is True
    lease = pair.lease()
    assert lease.spec.holder_identity == "b"
    assert lease.spec.lease_transitions == 1
    assert lease.spec.acquire_time == lease.spec.renew_time
    # the old leader comes back (a zombie): it must see b and step down, not steal the lease
    assert pair.a.step() is False
    assert pair.holder() == "b"
    assert pair.events == ["a+", "b+", "a-"]


def test_leader_that_sees_another_holder_steps_down_at_once(pair: Pair) -> None:
    pair.a.step()
    # c's clock runs 20 s ahead (skew), so to c a's lease has expired and c takes it
    c = LeaderElector(None, NAME, NS, "c", clock=FakeClock(T0 + dt.timedelta(seconds=20)), api=pair.raw)
    assert c.step() is True
    pair.clock.advance(2)  # a is well inside its renew deadline, but the lease is no longer its own
    assert pair.a.step() is False
    assert not pair.a.is_leader
    assert pair.events == ["a+", "a-"]


def test_graceful_release_lets_the_follower_take_over_at_once(pair: Pair) -> None:
    pair.a.step()
    pair.b.step()
    pair.a.stop()  # never started as a thread: stop() only releases
    lease = pair.lease()
    assert lease.spec.holder_identity in (None, "")
    assert lease.spec.lease_duration_seconds == 1
    assert not pair.a.is_leader
    assert pair.b.step() is True  # no clock advance needed
    assert pair.holder() == "b"
    assert pair.events == ["a+", "a-", "b+"]


def test_release_by_non_holder_changes_nothing(pair: Pair) -> None:
    pair.a.step()
    before = pair.lease()
    assert pair.b.release() is False
    after = pair.lease()
    assert after.metadata.resource_version == before.metadata.resource_version
    assert after.spec.holder_identity == "a"


def test_update_race_on_expired_lease_has_one_winner(pair: Pair) -> None:
    pair.a.step()
    pair.clock.advance(20)  # a's lease has expired; a and b both try to take it
    third = Interposer(pair.raw)
    c = LeaderElector(None, NAME, NS, "c", clock=pair.clock, api=third)
    # b reads the expired lease, then c takes it before b writes: b's replace carries a stale
    # resourceVersion and must get 409.
    pair.api_b.after_read = c.step
    assert pair.b.step() is False
    assert c.is_leader
    assert pair.holder() == "c"
    assert not pair.b.is_leader
    assert pair.api_b.writes, "b did try to write (and lost with 409)"


def test_create_race_has_one_winner(pair: Pair) -> None:
    # both see no lease (404); a creates it first; b's create gets 409
    pair.api_b.after_read = pair.a.step
    assert pair.b.step() is False
    assert pair.a.is_leader
    assert pair.holder() == "a"
    assert pair.events == ["a+"]


def test_leader_steps_down_after_renew_deadline_before_lease_expires(pair: Pair) -> None:
    pair.a.step()
    pair.api_a.fail_with = 500  # a loses the API server
    for _ in range(4):  # 8 s without a renewal: still within renew_deadline (10 s)
        pair.clock.advance(2)
        assert pair.a.step() is True
    pair.clock.advance(2)  # 10 s
    assert pair.a.step() is False
    assert pair.events == ["a+", "a-"]
    # a stepped down at 10 s, before the lease expires at 15 s: b cannot take it yet
    assert pair.b.step() is False
    pair.clock.advance(5)
    assert pair.b.step() is True
    assert pair.events == ["a+", "a-", "b+"]


def test_renew_conflict_alone_does_not_drop_leadership(pair: Pair) -> None:
    pair.a.step()
    pair.clock.advance(2)
    pair.api_a.fail_with = 409
    assert pair.a.step() is True, "one failed renewal inside renew_deadline keeps the leader"
    pair.api_a.fail_with = None
    pair.clock.advance(2)
    assert pair.a.step() is True
    assert pair.events == ["a+"]


def test_times_are_sent_as_rfc3339_micro(pair: Pair) -> None:
    pair.a.step()  # T0 has microsecond == 0, the case isoformat() would shorten
    body = client.ApiClient().sanitize_for_serialization(pair.api_a.writes[-1])
    micro = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}(Z|[+-]\d\d:\d\d)$")
    assert micro.match(body["spec"]["renewTime"]), body["spec"]["renewTime"]
    assert micro.match(body["spec"]["acquireTime"]), body["spec"]["acquireTime"]


def test_threaded_run_hands_over_on_stop(pair: Pair) -> None:
    started = {"a": threading.Event(), "b": threading.Event()}
    a = LeaderElector(
        None, NAME, NS, "a", retry_period=0.01, clock=pair.clock, api=pair.api_a,
        on_started_leading=started["a"].set,
    )
    b = LeaderElector(
        None, NAME, NS, "b", retry_period=0.01, clock=pair.clock, api=pair.api_b,
        on_started_leading=started["b"].set,
    )
    a.start()
    assert started["a"].wait(30)
    b.start()
    try:
        assert not b.is_leader
        a.stop()
        assert started["b"].wait(30), "b took over after a released"
        assert pair.holder() == "b"
    finally:
        a.stop(release=False)
        b.stop()
    assert pair.holder() in (None, "")


@pytest.mark.parametrize(
    ("duration", "deadline", "retry"),
    [(15, 15, 2), (15, 10, 10), (15, 10, 0), (10, 15, 2)],
)
def test_rejects_inconsistent_timings(duration: float, deadline: float, retry: float) -> None:
    with pytest.raises(ValueError):
        LeaderElector(
            None, NAME, NS, "a", lease_duration=duration, renew_deadline=deadline,
            retry_period=retry, api=MemoryCoordinationApi(),
        )


# ---------------------------------------------------------------------------------------------- slots


def test_slot_lease_is_held_refused_deleted_and_taken_again(coordination: Callable[[], Any]) -> None:
    """The agent's maxUnavailable slot: one node holds it, another is refused, deleting frees it at once."""
    a, b = Lease(coordination(), "virtnet-nncp-br-0", NS), Lease(coordination(), "virtnet-nncp-br-0", NS)
    assert a.acquire("node-a", 300, T0) and a.holder == "node-a"
    assert not b.acquire("node-b", 300, T0 + dt.timedelta(seconds=299)) and b.holder == "node-a"
    assert not b.delete("node-b"), "only the holder deletes its slot"
    assert a.acquire("node-a", 300, T0 + dt.timedelta(seconds=10)), "the holder renews"
    assert a.delete("node-a") and a.holder == ""
    assert not a.delete("node-a"), "deleting a slot that is gone is a no-op"
    assert b.acquire("node-b", 300, T0 + dt.timedelta(seconds=11))
    spec = coordination().read_namespaced_lease("virtnet-nncp-br-0", NS).spec
    assert (spec.holder_identity, spec.lease_duration_seconds, spec.lease_transitions) == ("node-b", 300, 0)


def test_slot_of_a_dead_node_is_taken_over_after_it_expires(coordination: Callable[[], Any]) -> None:
    api = coordination()
    assert Lease(api, "virtnet-nncp-br-0", NS).acquire("node-gone", 60, T0)
    b = Lease(coordination(), "virtnet-nncp-br-0", NS)
    assert not b.acquire("node-b", 300, T0 + dt.timedelta(seconds=59))
    assert b.acquire("node-b", 300, T0 + dt.timedelta(seconds=60))
    spec = api.read_namespaced_lease("virtnet-nncp-br-0", NS).spec
    assert (spec.holder_identity, spec.lease_transitions) == ("node-b", 1)
    assert spec.acquire_time == spec.renew_time == T0 + dt.timedelta(seconds=60)
