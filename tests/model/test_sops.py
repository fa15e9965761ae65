"""SOPS-encrypted Secrets, made by the real ``sops`` and ``age`` tools, decrypted at load time; plaintext
Secret data refused at its file and line unless the repository marks it deliberate."""

from __future__ import annotations

import base64
import re
import secrets
from pathlib import Path

import pytest

from reconciler.errors import ModelError
from reconciler.model import load_repo
from reconciler.model.sops import Keyring, SopsError, keys_from_env
from reconciler.render import render
from tests.repos import write_repo
from tests.sopstools import AgeKey, age_keygen, secret_doc, sops_encrypt


@pytest.fixture
def canary() -> tuple[str, str]:
    tag = secrets.token_hex(6)
    return f"pw-canary-{tag}", f"b3BlbnNzaC1rZXktdjEAAAAAcanary{tag}"


@pytest.fixture
def age(tmp_path: Path) -> AgeKey:
    return age_keygen(tmp_path)


def encrypted_repo(tmp_path: Path, age: AgeKey, canary: tuple[str, str], *extra: str) -> Path:
    root = write_repo(tmp_path / "repo", {"secrets/db.yaml": secret_doc(*canary)})
    sops_encrypt(root / "secrets" / "db.yaml", age.recipient, extra=extra)
    return root


def keyring(age: AgeKey) -> Keyring:
    return Keyring.from_file(age.file)


def secret_of(root: Path, keys: Keyring) -> dict[str, object]:
    objects = render(load_repo(root, keys=lambda: keys)).objects
    return next(o for o in objects if o["kind"] == "Secret" and o["metadata"]["name"] == "db-credentials")


def test_a_secret_encrypted_by_the_real_tools_renders_decrypted(
    tmp_path: Path, age: AgeKey, canary: tuple[str, str]
) -> None:
    password, key_line = canary
    root = encrypted_repo(tmp_path, age, canary)
    on_disk = (root / "secrets" / "db.yaml").read_text()
    assert password not in on_disk and key_line not in on_disk and "ENC[AES256_GCM," in on_disk  # really encrypted
    secret = secret_of(root, keyring(age))
    assert "sops" not in secret
    assert secret["stringData"]["password"] == password  # type: ignore[index]
    assert key_line in secret["stringData"]["id_ed25519"]  # type: ignore[index]
    assert base64.b64decode(secret["data"]["token"]).decode() == password  # type: ignore[index]
    assert secret["metadata"]["name"] == "db-credentials"  # type: ignore[index]


@pytest.mark.parametrize(
    ("regex", "flags", "config"),
    [
        (None, (), ""),
        ("^(data|stringData)$", (), "mac_only_encrypted: true"),
        (None, ("--unencrypted-suffix", "_plain"), ""),
        (None, (), "unencrypted_regex: ^(apiVersion|kind|metadata|type)$"),
    ],
    ids=["all-values", "mac-only-encrypted", "suffix", "unencrypted-regex"],
)
def test_the_other_sops_layouts_decrypt_too(
    tmp_path: Path, age: AgeKey, canary: tuple[str, str], regex: str | None, flags: tuple[str, ...], config: str
) -> None:
    root = write_repo(tmp_path / "repo", {"secrets/db.yaml": secret_doc(*canary)})
    sops_encrypt(root / "secrets" / "db.yaml", age.recipient, regex=regex, extra=flags, config=config)
    if config:
        (root / "secrets" / ".sops.yaml").unlink()
    assert secret_of(root, keyring(age))["stringData"]["password"] == canary[0]  # type: ignore[index]


def test_the_key_comes_from_sops_age_key_file_like_the_sops_tool(
    tmp_path: Path, age: AgeKey, canary: tuple[str, str]
) -> None:
    root = encrypted_repo(tmp_path, age, canary)
    keys = keys_from_env({"SOPS_AGE_KEY_FILE": str(age.file)})
    assert secret_of(root, keys)["stringData"]["password"] == canary[0]  # type: ignore[index]
    inline = keys_from_env({"SOPS_AGE_KEY": age.identity})
    assert secret_of(root, inline)["stringData"]["password"] == canary[0]  # type: ignore[index]


def problems(root: Path, keys: Keyring) -> list[str]:
    with pytest.raises(ModelError) as info:
        load_repo(root, keys=lambda: keys)
    return [str(p) for p in info.value.problems]


def test_no_key_wrong_key_and_tampering_are_problems_at_the_file(
    tmp_path: Path, age: AgeKey, canary: tuple[str, str]
) -> None:
    root = encrypted_repo(tmp_path, age, canary)
    path = root / "secrets" / "db.yaml"
    sops_line = next(i for i, line in enumerate(path.read_text().splitlines(), 1) if line.startswith("sops:"))
    [none] = problems(root, Keyring())
    assert none.startswith(f"secrets/db.yaml:{sops_line}: sops: ") and "no age key was given" in none
    other = age_keygen(tmp_path, "other.agekey")
    [wrong] = problems(root, keyring(other))
    assert "none of the age identities" in wrong and age.recipient in wrong
    # two encrypted values swapped: each decrypts only under its own path (the additional data)
    text = path.read_text()
    values = re.findall(r"ENC\[AES256_GCM,[^\]]+\]", text)
    swapped = text.replace(values[0], "@@").replace(values[1], values[0]).replace("@@", values[1])
    path.write_text(swapped)
    [moved] = problems(root, keyring(age))
    assert "does not decrypt" in moved
    # a changed plaintext field (under the MAC, not encrypted): the MAC no longer matches
    path.write_text(text.replace("type: Opaque", "type: kubernetes.io/opaque"))
    [tampered] = problems(root, keyring(age))
    assert "MAC does not match" in tampered
    for message in (none, wrong, moved, tampered):
        assert canary[0] not in message and canary[1] not in message


def test_only_a_secret_may_be_encrypted(tmp_path: Path, age: AgeKey) -> None:
    config = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: apps}\ndata: {k: hidden-value}\n"
    root = write_repo(tmp_path / "repo", {"manifests/c.yaml": config})
    sops_encrypt(root / "manifests" / "c.yaml", age.recipient, regex="^data$")
    [message] = problems(root, keyring(age))
    assert message.startswith("manifests/c.yaml:2: kind: only a Secret may be SOPS-encrypted")
    assert "hidden-value" not in message


def test_plaintext_secret_data_is_refused_at_its_line(tmp_path: Path, canary: tuple[str, str]) -> None:
    root = write_repo(tmp_path / "repo", {"secrets/db.yaml": secret_doc(*canary)})
    found = problems(root, Keyring())
    assert [m.split(": ", 2)[:2] for m in found] == [
        ["secrets/db.yaml:7", "stringData"],
        ["secrets/db.yaml:13", "data"],
    ]
    assert all("encrypt the file with sops" in m and "virtnet.io/plaintext-secret" in m for m in found)
    assert all(canary[0] not in m for m in found)


def test_plaintext_marked_deliberate_is_applied(tmp_path: Path, canary: tuple[str, str]) -> None:
    mark = '\n  annotations:\n    virtnet.io/plaintext-secret: "true"'
    root = write_repo(tmp_path / "repo", {"secrets/db.yaml": secret_doc(*canary, extra=mark)})
    secret = secret_of(root, Keyring())
    assert secret["stringData"]["password"] == canary[0]  # type: ignore[index]
    # any other value of the annotation is not a yes
    root = write_repo(tmp_path / "repo2", {"secrets/db.yaml": secret_doc(*canary, extra=mark.replace("true", "yes"))})
    assert len(problems(root, Keyring())) == 2


def test_a_secret_without_values_needs_no_mark(tmp_path: Path) -> None:
    empty = "apiVersion: v1\nkind: Secret\nmetadata: {name: s, namespace: apps}\ntype: Opaque\n"
    root = write_repo(tmp_path / "repo", {"secrets/s.yaml": empty})
    assert any(o["kind"] == "Secret" for o in render(load_repo(root, keys=Keyring)).objects)


def test_a_key_file_that_is_not_an_age_identity_is_named_not_quoted(tmp_path: Path) -> None:
    bad = tmp_path / "keys.txt"
    bad.write_text("# created: now\nAGE-SECRET-KEY-1NOTAKEY\n")
    with pytest.raises(ValueError, match=r"keys.txt: line 2 is not an age identity") as info:
        Keyring.from_file(bad)
    assert "NOTAKEY" not in str(info.value)


def test_virtnet_render_decrypts_with_the_key_file_from_the_environment(
    tmp_path: Path, age: AgeKey, canary: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from reconciler.cli import main

    root = encrypted_repo(tmp_path, age, canary)
    monkeypatch.delenv("SOPS_AGE_KEY", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "no-config"))
    monkeypatch.delenv("SOPS_AGE_KEY_FILE", raising=False)
    refused = CliRunner().invoke(main, ["render", str(root)])
    assert refused.exit_code == 1 and "no age key was given" in refused.output
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(age.file))
    rendered = CliRunner().invoke(main, ["render", str(root)])
    assert rendered.exit_code == 0 and f"password: {canary[0]}" in rendered.output


def test_a_file_encrypted_whole_masks_its_payload_not_its_name_and_namespace(
    tmp_path: Path, age: AgeKey, canary: tuple[str, str]
) -> None:
    """Without an encrypted regex sops hides every value, metadata too; only the Secret's data is secret, and
    masking ``apps`` (its namespace) would garble every later line that names the namespace."""
    from reconciler.logs import MASK, redact

    password, _ = canary
    root = write_repo(tmp_path / "repo", {"secrets/db.yaml": secret_doc(*canary)})
    sops_encrypt(root / "secrets" / "db.yaml", age.recipient, regex=None)
    assert "db-credentials" not in (root / "secrets" / "db.yaml").read_text()  # the name was encrypted too
    secret = secret_of(root, keyring(age))
    assert secret["metadata"] == {"name": "db-credentials", "namespace": "apps"} | secret["metadata"]  # type: ignore[operator]
    assert redact(f"Secret/apps/db-credentials: {password}") == f"Secret/apps/db-credentials: {MASK}"


def test_a_parse_cache_never_keeps_a_decrypted_secret(tmp_path: Path, age: AgeKey, canary: tuple[str, str]) -> None:
    """``virtnet run`` keeps a parse cache across loads: the second load of an unchanged encrypted file must
    decrypt it again, not find the first load's clear text in the cache (and refuse it as plaintext)."""
    from reconciler.model import ParseCache

    root = encrypted_repo(tmp_path, age, canary)
    cache, keys = ParseCache(), keyring(age)
    for _ in range(2):
        repo = load_repo(root, keys=lambda: keys, cache=cache)
        secret = next(o for o in render(repo).objects if o["metadata"]["name"] == "db-credentials")
        assert secret["stringData"]["password"] == canary[0]
    assert cache.hits > 0  # the file itself was served from the cache the second time


def test_a_key_source_that_fails_is_asked_once_and_its_error_given_to_every_document(
    tmp_path: Path, age: AgeKey, canary: tuple[str, str]
) -> None:
    root = encrypted_repo(tmp_path, age, canary)
    second = root / "secrets" / "db2.yaml"
    second.write_text(secret_doc(*canary).replace("name: db-credentials", "name: db-other"))
    sops_encrypt(second, age.recipient)
    calls: list[int] = []

    def unreadable() -> Keyring:
        calls.append(1)
        raise SopsError("the age key file keys.txt cannot be read")

    with pytest.raises(ModelError) as err:
        load_repo(root, keys=unreadable)
    messages = [str(p) for p in err.value.problems]
    assert [m.split(":")[0] for m in messages] == ["secrets/db.yaml", "secrets/db2.yaml"]
    assert all(m.endswith("sops: the age key file keys.txt cannot be read") for m in messages)
    assert len(calls) == 1
