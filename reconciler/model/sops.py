"""SOPS-encrypted documents, decrypted at load time with age identities, as Flux's kustomize-controller does.

Why here: a Secret is committed encrypted (``sops --encrypt --age <recipient>``), and virtnet must apply
the plaintext; everything after the model (render, plan, safety, output) sees ordinary documents. Each
decrypted value is registered with :func:`reconciler.logs.register_secret`, so any text that leaves the
process (logs, status commits, comments, events) passes through the redactor with those values known;
plans show Secret values as digests only (``reconciler.output.text``).

Cryptography is not written here: the age stanza that wraps the data key is opened by ``pyrage`` (the
Python binding of ``rage``, a maintained age implementation), the values by ``cryptography``'s AES-GCM.
What this module adds is the SOPS file format as sops v3 writes it (``sops.go``: ``Tree.Decrypt``,
``aes/cipher.go``, ``decrypt/decrypt.go``): which leaves are encrypted (the suffix and regex rules), the
additional data of a value (its key path joined by ``:``), and the MAC, a SHA-512 over the leaves in
document order that is checked before anything is returned, so a tampered or truncated file is refused.
There is no maintained Python SOPS library (PyPI's ``sops`` is the 2018 Python 2 era tool without age),
and calling the ``sops`` binary would put a Go tool into the controller image; the tests decrypt files
that the real ``sops`` and ``age`` tools (built from their Go modules) made.

Only ``kind: Secret`` may be encrypted: any other kind's values would be printed in plans in clear.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyrage
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from reconciler import labels
from reconciler.errors import Problem
from reconciler.logs import register_secret
from reconciler.model.loader import Document

_VALUE = re.compile(r"^ENC\[AES256_GCM,data:(.+),iv:(.+),tag:(.+),type:(.+)\]")
_ARMOR = re.compile(r"-----BEGIN AGE ENCRYPTED FILE-----(.*?)-----END AGE ENCRYPTED FILE-----", re.S)
#: metadata keys that need what this reader does not have (comments, other key services, key groups)
_UNSUPPORTED = ("encrypted_comment_regex", "unencrypted_comment_regex", "key_groups", "shamir_threshold")
_OTHER_KEY_SERVICES = ("kms", "gcp_kms", "azure_kv", "hc_vault", "hckms", "pgp")


class SopsError(ValueError):
    """A document that cannot be decrypted; the message never contains a decrypted value."""


@dataclass(frozen=True)
class Keyring:
    """The age identities to decrypt with, and where they came from (for messages; never the keys)."""

    identities: tuple[Any, ...] = ()
    source: str = "no age key"

    @classmethod
    def from_text(cls, text: str, source: str) -> Keyring:
        """An age key file's text: ``AGE-SECRET-KEY-1…`` lines, ``#`` comments and blank lines."""
        found = []
        for number, line in enumerate(text.splitlines(), 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            try:
                found.append(pyrage.x25519.Identity.from_str(line))
            except pyrage.IdentityError:
                raise SopsError(f"{source}: line {number} is not an age identity (AGE-SECRET-KEY-1…)") from None
            register_secret(line)
        if not found:
            raise SopsError(f"{source}: no age identity (AGE-SECRET-KEY-1…) in it")
        return cls(tuple(found), source)

    @classmethod
    def from_file(cls, path: Path) -> Keyring:
        try:
            return cls.from_text(path.read_text(encoding="utf-8"), str(path))
        except (OSError, UnicodeDecodeError) as exc:
            raise SopsError(f"cannot read the age key file {path}: {getattr(exc, 'strerror', None) or exc}") from None


def keys_from_env(env: dict[str, str] | None = None) -> Keyring:
    """The identities the ``sops`` tool itself would use: ``SOPS_AGE_KEY``, ``SOPS_AGE_KEY_FILE``, then
    ``$XDG_CONFIG_HOME/sops/age/keys.txt`` (``~/.config``). None of them: an empty keyring (an encrypted
    document then says how to give a key)."""
    env = dict(os.environ if env is None else env)
    if env.get("SOPS_AGE_KEY"):
        return Keyring.from_text(env["SOPS_AGE_KEY"], "$SOPS_AGE_KEY")
    if env.get("SOPS_AGE_KEY_FILE"):
        return Keyring.from_file(Path(env["SOPS_AGE_KEY_FILE"]))
    config = Path(env.get("XDG_CONFIG_HOME") or Path(env.get("HOME", "~")).expanduser() / ".config")
    default = config / "sops" / "age" / "keys.txt"
    return Keyring.from_file(default) if default.is_file() else Keyring()


#: what ``load_repo`` calls for the keys the first time a document is encrypted (never when none is)
KeySource = Callable[[], Keyring]


def is_encrypted(data: Any) -> bool:
    """Whether a document is a SOPS file: a top-level ``sops`` mapping with a ``mac``."""
    return isinstance(data, dict) and isinstance(data.get("sops"), dict) and "mac" in data["sops"]


@dataclass
class _Walk:
    key: bytes
    meta: dict[str, Any]
    hash: Any = field(default_factory=hashlib.sha512)
    values: list[str] = field(default_factory=list)


def decrypt_document(data: dict[str, Any], keys: Keyring) -> dict[str, Any]:
    """The document without its ``sops`` block and with every encrypted value in clear; the MAC checked."""
    meta = data["sops"]
    for name in _UNSUPPORTED:
        if meta.get(name):
            raise SopsError(f"sops.{name} is not supported: encrypt for age recipients without it")
    key = _data_key(meta, keys)
    walk = _Walk(key, meta)
    if meta.get("mac_only_encrypted"):
        walk.hash.update(bytes.fromhex("8a3fd2ad54ce66527b1034f3d147be0b0b975b3bf44f72c6fdadec8176f27d69"))
    tree = {k: v for k, v in data.items() if k != "sops"}
    clear = _branch(walk, tree, [])
    stamp = _rfc3339(meta.get("lastmodified"))
    try:
        expected = _decrypt_value(str(meta.get("mac", "")), key, stamp)
    except SopsError:
        raise SopsError("sops.mac cannot be opened: the file was changed after it was encrypted") from None
    if not isinstance(expected, str) or expected.upper() != walk.hash.hexdigest().upper():
        raise SopsError("the MAC does not match the values: the file was changed after it was encrypted")
    for value in walk.values:
        register_secret(value)
    return clear


def _data_key(meta: dict[str, Any], keys: Keyring) -> bytes:
    stanzas = meta.get("age") or []
    others = [name for name in _OTHER_KEY_SERVICES if meta.get(name)]
    if not stanzas:
        found = f" (it has {', '.join(others)})" if others else ""
        raise SopsError(f"encrypted for no age recipient{found}: virtnet decrypts age only")
    if not keys.identities:
        raise SopsError(
            "SOPS-encrypted, but no age key was given (SOPS_AGE_KEY_FILE or SOPS_AGE_KEY for the command line,"
            " decryption.ageKeyFile from a Secret for the controller)"
        )
    for stanza in stanzas:
        armored = _ARMOR.search(str(stanza.get("enc", "")) if isinstance(stanza, dict) else "")
        if armored is None:
            continue
        try:
            body = base64.b64decode("".join(armored.group(1).split()), validate=True)
            key = pyrage.decrypt(body, list(keys.identities))
        except (ValueError, pyrage.DecryptError):
            continue
        if len(key) == 32:
            return bytes(key)
    recipients = ", ".join(str(s.get("recipient", "?")) for s in stanzas if isinstance(s, dict))
    raise SopsError(f"none of the age identities from {keys.source} opens it (recipients: {recipients})")


def _encrypted(walk: _Walk, path: list[str]) -> bool:
    """sops' ``shouldBeEncrypted`` for the path rules (suffixes and regexes; the last matching rule wins)."""
    meta, encrypted = walk.meta, True
    if meta.get("unencrypted_suffix") and any(p.endswith(meta["unencrypted_suffix"]) for p in path):
        encrypted = False
    if meta.get("encrypted_suffix"):
        encrypted = any(p.endswith(meta["encrypted_suffix"]) for p in path)
    if meta.get("unencrypted_regex") and any(re.search(meta["unencrypted_regex"], p) for p in path):
        encrypted = False
    if meta.get("encrypted_regex"):
        encrypted = any(re.search(meta["encrypted_regex"], p) for p in path)
    return encrypted


def _branch(walk: _Walk, node: Any, path: list[str]) -> Any:
    """Depth first in document order, as sops walks: mappings by key, lists item by item (same path)."""
    if isinstance(node, dict):
        return {k: _branch(walk, v, [*path, str(k)]) for k, v in node.items()}
    if isinstance(node, list):
        return [_branch(walk, v, path) for v in node]
    if node is None:
        return None
    encrypted = _encrypted(walk, path)
    if encrypted:
        if not isinstance(node, str):
            raise SopsError(f"{':'.join(path)}: expected an encrypted value (ENC[…]), found a {type(node).__name__}")
        value = _decrypt_value(node, walk.key, ":".join(path) + ":")
        if isinstance(value, str) and path[:1] in (["data"], ["stringData"]):
            # the Secret's payload only: a file encrypted whole also hides its name and namespace, and masking
            # a word like "apps" everywhere would garble every log line, plan and comment that names it
            walk.values.append(value)
    else:
        value = node
    if not walk.meta.get("mac_only_encrypted") or encrypted:
        walk.hash.update(_to_bytes(value))
    return value


def _decrypt_value(text: str, key: bytes, additional: str) -> Any:
    if text == "":
        return ""
    match = _VALUE.match(text)
    if match is None:
        raise SopsError("a value is not in sops' ENC[AES256_GCM,…] form")
    data, iv, tag, kind = match.groups()
    try:
        nonce = base64.b64decode(iv)
        plain = AESGCM(key).decrypt(nonce, base64.b64decode(data) + base64.b64decode(tag), additional.encode())
    except (InvalidTag, ValueError):
        raise SopsError("a value does not decrypt with the file's data key (changed or moved?)") from None
    return _typed(plain, kind)


def _typed(plain: bytes, kind: str) -> Any:
    text = plain.decode("utf-8", "surrogateescape")
    if kind in ("str", "bytes"):
        return text
    if kind == "int":
        return int(text)
    if kind == "float":
        return float(text)
    if kind == "bool":
        return text.lower() in ("1", "t", "true")
    raise SopsError(f"values of type {kind!r} are not supported")


def _to_bytes(value: Any) -> bytes:
    """sops' ``ToBytes``: the text the MAC hashes for a leaf."""
    if isinstance(value, bool):
        return b"True" if value else b"False"
    if isinstance(value, int):
        return str(value).encode()
    if isinstance(value, float):
        return (repr(value) if not value.is_integer() else str(int(value))).encode()
    return str(value).encode("utf-8", "surrogateescape")


def _rfc3339(value: Any) -> str:
    """``lastmodified`` as Go's ``time.RFC3339`` formats it (the MAC's additional data)."""
    stamp = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if stamp.utcoffset() == UTC.utcoffset(None):
        return stamp.strftime("%Y-%m-%dT%H:%M:%SZ")
    return stamp.isoformat(timespec="seconds")


def open_documents(docs: list[Document], key_source: KeySource) -> list[Problem]:
    """Decrypt the SOPS documents in place and refuse plaintext Secret data that is not marked deliberate.

    The keys are asked for once, at the first encrypted document, so a repository without any never
    reads a key file (and one whose key file is unreadable reads it once: each encrypted document reports that
    first error). A document that cannot be decrypted is left out with its problem.
    """
    problems: list[Problem] = []
    keys: Keyring | SopsError | None = None
    for doc in list(docs):
        data = doc.data
        if is_encrypted(data):
            try:
                if keys is None:
                    try:
                        keys = key_source()
                    except SopsError as exc:  # kept: every other document gets the same answer, not another read
                        keys = exc
                if isinstance(keys, SopsError):
                    raise keys
                clear = decrypt_document(data, keys)
            except SopsError as exc:
                problems.append(Problem(doc.ref(("sops",)), str(exc)))
                docs.remove(doc)
                continue
            if clear.get("kind") != "Secret":  # decrypted first: sops without a regex encrypts kind too
                message = "only a Secret may be SOPS-encrypted (plans print other kinds' values in clear)"
                problems.append(Problem(doc.ref(("kind",)), message))
                docs.remove(doc)
                continue
            # a copy, never the document itself: a parse cache (``virtnet run``) keeps it for the next load
            docs[docs.index(doc)] = dataclasses.replace(doc, data=clear)
        elif isinstance(data, dict) and data.get("kind") == "Secret" and str(data.get("apiVersion")) == "v1":
            problems += _plaintext(doc)
    return problems


def _plaintext(doc: Document) -> list[Problem]:
    """A plain Secret with values: refused unless its annotation says the plaintext is deliberate."""
    meta = doc.data.get("metadata")
    annotations = meta.get("annotations") if isinstance(meta, dict) else None
    if isinstance(annotations, dict) and annotations.get(labels.PLAINTEXT_SECRET) == "true":
        return []
    return [
        Problem(
            doc.ref((key,)),
            f"plaintext Secret {key}: encrypt the file with sops (age) or, if committing it in clear is "
            f'deliberate, annotate the Secret {labels.PLAINTEXT_SECRET}: "true"',
        )
        for key in ("data", "stringData")
        if doc.data.get(key)
    ]
