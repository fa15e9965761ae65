"""The client's connection pool holds as many connections as a wave may have writes in flight."""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace

import click
import pytest
from kubernetes import client

from reconciler.cli import apply_command
from reconciler.clients.kube import Kube
from reconciler.engine.window import MAX_PARALLEL


def test_the_pool_keeps_a_connection_for_every_write_the_largest_window_allows() -> None:
    kube = Kube(client.ApiClient(client.Configuration()))
    try:
        assert kube.api.rest_client.pool_manager.connection_pool_kw["maxsize"] >= MAX_PARALLEL
    finally:
        kube.api.close()


def test_the_cli_allows_no_more_parallel_writes_than_the_pool_holds() -> None:
    option = next(p for p in apply_command.params if p.name == "parallel")
    assert isinstance(option.type, click.IntRange)
    assert option.type.max == MAX_PARALLEL
    with pytest.raises(click.BadParameter):
        option.type.convert(MAX_PARALLEL + 1, option, None)


class Stream:
    """A urllib3 response that streams two watch events and records what is done to it."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def stream(self, *args: object, **kwargs: object) -> Iterator[bytes]:
        yield b'{"type": "ADDED", "object": {}}\n{"type": "ADDED", "object": {}}\n'

    def close(self) -> None:
        self.calls.append("close")

    def release_conn(self) -> None:
        self.calls.append("release_conn")


def test_a_watch_left_early_closes_its_stream_before_giving_the_connection_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stream = Stream()
    kube = Kube(client.ApiClient(client.Configuration()))
    monkeypatch.setattr(kube.api, "call_api", lambda *a, **k: SimpleNamespace(status=200, response=stream))
    try:
        events = kube.watch("ConfigMap", None, "ns", "1", 5)
        assert next(events)["type"] == "ADDED"
        events.close()  # the consumer stops after one event
        assert stream.calls[:1] == ["close"], stream.calls
    finally:
        kube.api.close()
