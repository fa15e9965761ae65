"""The real ``sops`` and ``age`` tools for the SOPS tests, built from hack/tools/go.mod by scripts/tools-build.

The fixtures are encrypted at test time with these tools, so virtnet's decryption is checked against the
format the tools write, not against a copy of it. Without Go the tests skip and say so.
"""

from __future__ import annotations

import base64
import functools
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
#: the environment at import: tests that isolate git move HOME, which would point the build at an empty cache
_ENV = dict(os.environ)


@functools.cache
def _bin_dir() -> Path | str:
    """The bin dir, or why there is none (a string)."""
    if shutil.which("go") is None:
        return "no 'go' on PATH: cannot build sops and age (scripts/tools-build)"
    proc = subprocess.run([REPO / "scripts" / "tools-build"], capture_output=True, text=True, timeout=1800, env=_ENV)
    if proc.returncode != 0:
        raise RuntimeError(f"scripts/tools-build failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return Path(proc.stdout.strip())


def tools() -> Path:
    found = _bin_dir()
    if isinstance(found, str):
        pytest.skip(found)
    return found


@dataclass(frozen=True)
class AgeKey:
    identity: str  # AGE-SECRET-KEY-1…
    recipient: str  # age1…
    file: Path


def age_keygen(folder: Path, name: str = "age.agekey") -> AgeKey:
    """A fresh age identity made by the real ``age-keygen``."""
    path = folder / name
    subprocess.run([tools() / "age-keygen", "-o", path], check=True, capture_output=True)
    text = path.read_text()
    identity = next(line for line in text.splitlines() if line.startswith("AGE-SECRET-KEY-1"))
    recipient = next(line.split(": ", 1)[1] for line in text.splitlines() if "public key:" in line)
    return AgeKey(identity, recipient, path)


def sops_encrypt(
    path: Path,
    *recipients: str,
    regex: str | None = "^(data|stringData)$",
    extra: tuple[str, ...] = (),
    config: str = "",
) -> None:
    """Encrypt ``path`` in place with the real ``sops`` for age ``recipients`` (Flux's usual regex by default);
    ``config`` is a ``.sops.yaml`` creation rule's extra settings (some, like ``mac_only_encrypted``, exist
    only there)."""
    args = [str(tools() / "sops")]
    if config:
        rules = path.parent / ".sops.yaml"
        rules.write_text(f"creation_rules:\n  - age: {','.join(recipients)}\n    {config}\n")
        args += ["--config", str(rules)]
    args += ["encrypt", "--in-place", "--age", ",".join(recipients)]
    if regex:
        args += ["--encrypted-regex", regex]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOPS_")}
    env["SOPS_DISABLE_VERSION_CHECK"] = "1"  # it would ask the internet for the latest release
    proc = subprocess.run([*args, *extra, str(path)], capture_output=True, text=True, env=env)
    if proc.returncode:
        raise AssertionError(f"sops encrypt failed ({proc.returncode}): {proc.stderr}")


def secret_doc(password: str, key_line: str, extra: str = "") -> str:
    """A Secret ``apps/db-credentials`` carrying ``password`` and ``key_line`` in stringData and data (the
    canaries a test looks for in output); ``extra`` is appended to its metadata (an annotations block)."""
    return f"""\
apiVersion: v1
kind: Secret
metadata:
  name: db-credentials
  namespace: apps{extra}
type: Opaque
stringData:
  password: {password}
  id_ed25519: |
    -----BEGIN OPENSSH PRIVATE KEY-----
    {key_line}
    -----END OPENSSH PRIVATE KEY-----
data:
  token: {base64.b64encode(password.encode()).decode()}
"""
