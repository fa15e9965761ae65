"""The chart and the binary agree: the rendered ConfigMap loads, and the rendered args parse.

Why: the Deployment runs ``virtnet run --config /etc/virtnet/config.yaml --leader-elect --leader-namespace
<ns> --http-port 8080`` and the DaemonSet ``virtnet agent --node $(NODE_NAME) ...``; a key the config model
does not know, a key it silently drops, or a flag the CLI lost only shows when the pod crash-loops.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import pytest
import yaml

from reconciler.agent.cli import agent_command
from reconciler.cli import main
from reconciler.server.cli import run_command
from reconciler.server.config import Config, load_config
from tests.chart import CI_VALUES, NAMESPACE, Manifest, config_map, one, rbac_rules, render

VALUE_SETS = sorted(p.name for p in CI_VALUES.glob("*-values.yaml"))


@pytest.fixture(scope="module", params=VALUE_SETS)
def rendered(request: pytest.FixtureRequest) -> tuple[str, list[Manifest]]:
    return request.param, render([CI_VALUES / request.param])


def _leaves(doc: Any, prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], Any]:
    if isinstance(doc, dict):
        out: dict[tuple[str, ...], Any] = {}
        for k, v in doc.items():
            out.update(_leaves(v, (*prefix, k)))
        return out
    return {prefix: doc}


def _config_file(docs: list[Manifest], tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    text = config_map(docs)["data"]["config.yaml"]
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return path, yaml.safe_load(text)


def test_config_map_loads_and_every_key_is_mapped(rendered: tuple[str, list[Manifest]], tmp_path: Path) -> None:
    _, docs = rendered
    path, raw = _config_file(docs, tmp_path)
    cfg = load_config(path)  # extra="forbid": an unknown key is an error, not silently ignored
    assert isinstance(cfg, Config)
    parsed = _leaves(cfg.model_dump(by_alias=True))
    for key, value in _leaves(raw).items():
        assert key in parsed, f"{'.'.join(key)} is written by the chart but not a config field"
        assert parsed[key] == value, f"{'.'.join(key)}: chart wrote {value!r}, the config holds {parsed[key]!r}"


def test_lease_name_is_the_one_the_role_allows(rendered: tuple[str, list[Manifest]], tmp_path: Path) -> None:
    _, docs = rendered
    cfg = load_config(_config_file(docs, tmp_path)[0])
    named = {
        name
        for role in rbac_rules(docs, "controller")
        for rule in role.rules
        if "leases" in rule["resources"]
        for name in rule.get("resourceNames", [])
    }
    assert named == {cfg.leader_election.lease_name}
    assert named == {"rel-virtnet"}  # the release's full name (release "rel")


def _parse(command: click.Command, name: str, args: list[str]) -> click.Context:
    assert isinstance(main, click.Group)
    with click.Context(main) as parent:
        assert main.get_command(parent, name) is command, f"`virtnet {name}` is not {command.name}"
    return command.make_context(name, list(args), parent=None)


def test_deployment_args_parse_with_virtnet_run(rendered: tuple[str, list[Manifest]], tmp_path: Path) -> None:
    _, docs = rendered
    path, raw = _config_file(docs, tmp_path)
    container = one(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    args = list(container["args"])
    assert args[0] == "run"
    mount = next(m for m in container["volumeMounts"] if m["name"] == "config")
    assert args[args.index("--config") + 1] == mount["mountPath"]
    args[args.index("--config") + 1] = str(path)  # the mounted file, here
    ctx = _parse(run_command, "run", args[1:])
    params = ctx.params
    assert params["config_file"] == path
    assert params["leader_elect"] is True
    assert params["leader_namespace"] == NAMESPACE
    assert params["http_port"] == raw["http"]["port"] == container["ports"][0]["containerPort"]


def test_daemonset_args_parse_with_virtnet_agent(rendered: tuple[str, list[Manifest]]) -> None:
    name, docs = rendered
    container = one(docs, "DaemonSet")["spec"]["template"]["spec"]["containers"][0]
    args = [a.replace("$(NODE_NAME)", "worker-0") for a in container["args"]]
    assert args[0] == "agent"
    ctx = _parse(agent_command, "agent", args[1:])
    values = yaml.safe_load((CI_VALUES / name).read_text())
    assert ctx.params["node"] == "worker-0"
    assert ctx.params["mode"] == values.get("agent", {}).get("mode", "observe")
    assert ctx.params["lease_namespace"] == NAMESPACE


def test_a_config_key_the_model_does_not_know_is_refused(tmp_path: Path) -> None:
    """The check above can fail: an extra key (a typo in the chart) is an error, not ignored."""
    path, raw = _config_file(render(), tmp_path)
    raw["leaderElection"]["leaseNmae"] = "x"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(Exception, match="leaseNmae"):
        load_config(path)


def test_a_forge_login_reaches_the_config(tmp_path: Path) -> None:
    """A GitHub App's token cannot ask who it is: the chart passes the login it acts as."""
    forge = {"provider": "github", "url": "", "existingSecret": "virtnet-forge", "login": "virtnet-app[bot]"}
    cfg = load_config(_config_file(render(values={"config": {"forge": forge}}), tmp_path)[0])
    assert (cfg.forge.login, cfg.forge.url) == ("virtnet-app[bot]", "")
