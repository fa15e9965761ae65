"""The client's connection pool holds as many connections as a wave may have writes in flight."""

from __future__ import annotations

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
