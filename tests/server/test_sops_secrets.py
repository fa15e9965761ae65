"""A SOPS-encrypted Secret through the whole loop: the cluster gets the plaintext, nothing else does.

The repository holds a Secret encrypted by the real ``sops`` for an ``age`` key; the controller reads the key
file (as the chart mounts it from a Kubernetes Secret), applies, emits Events and writes its status commit.
Neither the decrypted values nor the key may appear in a log line, the plan (text, JSON, Markdown), the PR
comment, the status branch or an Event.
"""

from __future__ import annotations

import base64
import io
import secrets
from pathlib import Path

import pytest

from reconciler.clients.kube import Kube
from reconciler.clients.status import read_status
from reconciler.engine.apply import ApplyOptions
from reconciler.logs import setup_logging
from reconciler.model.sops import Keyring
from reconciler.output import comment
from reconciler.output import text as report
from reconciler.server.controller import Controller, Settings
from reconciler.server.metrics import Metrics
from reconciler.testing import ApiDouble
from reconciler.testing.nodes import demo_nodes, seed_hyperconverged
from tests.gitutil import isolate_git, make_remote, preserved_logging, push_commit
from tests.repos import BASE
from tests.sopstools import age_keygen, secret_doc, sops_encrypt


def test_decrypted_values_reach_the_cluster_and_nothing_else(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    isolate_git(monkeypatch, tmp_path / "home")
    monkeypatch.delenv("SOPS_AGE_KEY", raising=False)
    monkeypatch.delenv("SOPS_AGE_KEY_FILE", raising=False)
    tag = secrets.token_hex(6)
    password, key_line = f"pw-canary-{tag}", f"b3BlbnNzaC1rZXktdjEAAAAAcanary{tag}"
    age = age_keygen(tmp_path)
    plain = tmp_path / "plain" / "db.yaml"
    plain.parent.mkdir()
    plain.write_text(secret_doc(password, key_line))
    sops_encrypt(plain, age.recipient)
    remote = make_remote(tmp_path, dict(BASE))
    stream = io.StringIO()
    with (
        preserved_logging(),
        ApiDouble(controllers=("nmstate", "kubevirt"), nodes=demo_nodes(workers=2, control_plane=0)) as api,
    ):
        setup_logging("DEBUG", stream=stream)
        seed_hyperconverged(api.store)
        settings = Settings(
            repo_url=remote.as_uri(),
            cache_root=tmp_path / "cache",
            apply=ApplyOptions(poll=0.02, timeout=20),
            keys=lambda: Keyring.from_file(age.file),
        )
        ctl = Controller(settings, Kube(api.api_client()), Metrics())
        assert ctl.reconcile("poll").ok
        push_commit(remote, {"secrets/db.yaml": plain.read_text()}, "add the database credentials")
        outcome = ctl.reconcile("poll")
        assert outcome.ok, outcome.message
        live = api.store.find("v1", "Secret", "db-credentials", "apps")
        assert live is not None
        values = {
            **{k: base64.b64decode(v).decode() for k, v in live.get("data", {}).items()},
            **live.get("stringData", {}),
        }
        assert values["password"] == password and key_line in values["id_ed25519"] and values["token"] == password
        events = [e for e in api.store.objects("v1", "Event") if "db-credentials" in str(e)]
        assert events  # the Secret's own Event was recorded
        # a second commit changing the password: the plan shows that it changes, not what it is
        new_password = f"pw-canary-new-{tag}"
        plain.write_text(secret_doc(new_password, key_line))
        sops_encrypt(plain, age.recipient)
        push_commit(remote, {"secrets/db.yaml": plain.read_text()}, "rotate the password")
        rotated = ctl.reconcile("poll")
        assert rotated.ok and rotated.plan is not None and rotated.plan.has_changes
        texts = {
            "log": stream.getvalue(),
            "plan text": report.plan_text(rotated.plan, verbose=True),
            "plan json": report.plan_json(rotated.plan, rotated.safety),
            "plan markdown": report.plan_markdown(rotated.plan),
            "comment": comment.pull_request_comment(rotated, "test", rotated.revision or ""),
            "events": str(api.store.objects("v1", "Event")),
            **{
                f"status {k}": str(v)
                for k, v in read_status(remote.as_uri(), "test", cache_root=tmp_path / "c2").items()
            },
        }
    assert "Secret/apps/db-credentials" in texts["plan text"]  # the change is shown ...
    assert "reconcile finished" in texts["log"] and "<redacted sha256:" in texts["plan text"]
    for where, text in texts.items():
        for canary in (password, new_password, key_line, age.identity):
            assert canary not in text, f"{where} leaks a secret"
            assert base64.b64encode(canary.encode()).decode() not in text, f"{where} leaks a secret in base64"
