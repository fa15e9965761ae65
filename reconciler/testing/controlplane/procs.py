"""Building, starting and stopping the etcd and kube-apiserver processes.

Why detached (own session, pid files in DIR): ``scripts/kube-up`` must leave the control plane running after
the Python process exits, and ``scripts/kube-down DIR`` (another process) must stop exactly what was started,
so the pids live in DIR rather than in memory. A pid is only signalled if ``/proc/<pid>/cmdline`` still names
our binary and DIR, so a recycled pid is never killed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from reconciler.testing.controlplane.errors import ControlPlaneError, ControlPlaneUnavailable

REPO = Path(__file__).resolve().parents[3]
BIN_ENV = "VIRTNET_KUBE_BIN"  # a directory holding prebuilt kube-apiserver and etcd: skips the Go build
_BUILD_TIMEOUT = 3600.0


def binaries() -> Path:
    """The bin dir with ``kube-apiserver`` and ``etcd``, built (and cached) by ``scripts/kube-build`` if needed.

    Raises :class:`ControlPlaneUnavailable` where they cannot be built (no Go), so tests skip rather than fail.
    """
    if env := os.environ.get(BIN_ENV):
        bin_dir = Path(env)
        if not all((bin_dir / b).is_file() for b in ("kube-apiserver", "etcd")):
            raise ControlPlaneUnavailable(f"${BIN_ENV}={env} does not hold kube-apiserver and etcd")
        return bin_dir
    script = REPO / "scripts" / "kube-build"
    if not script.is_file():
        raise ControlPlaneUnavailable(f"{script} not found (not running from a checkout)")
    try:
        proc = subprocess.run([str(script)], capture_output=True, text=True, timeout=_BUILD_TIMEOUT, check=False)
    except subprocess.TimeoutExpired as exc:
        raise ControlPlaneError(f"scripts/kube-build did not finish in {_BUILD_TIMEOUT:.0f} s") from exc
    if proc.returncode == 3:  # kube-build's "no go on PATH"
        raise ControlPlaneUnavailable(proc.stderr.strip() or "no Go toolchain to build kube-apiserver/etcd")
    if proc.returncode != 0:
        raise ControlPlaneError(f"scripts/kube-build failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return Path(proc.stdout.strip().splitlines()[-1])


def free_ports(count: int) -> list[int]:
    """``count`` distinct loopback ports that were free a moment ago (the usual envtest race, kept short)."""
    socks = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def spawn(name: str, argv: Sequence[str], directory: Path, *,
          env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Start ``argv`` detached, logging to ``DIR/<name>.log``; record its pid in ``DIR/<name>.pid``.

    The starter keeps the ``Popen`` to watch its children (``/proc/<pid>/cmdline`` still shows Python between
    fork and exec, so :func:`running` is for other processes, e.g. kube-down, long after the start).
    """
    log = (directory / f"{name}.log").open("ab")
    try:
        proc = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                cwd=directory, start_new_session=True, env=env)
    finally:
        log.close()
    (directory / f"{name}.pid").write_text(f"{proc.pid}\n")
    return proc


def _ours(pid: int, name: str, directory: Path) -> bool:
    """Whether ``pid`` is still the ``name`` process started for ``directory`` (not a recycled pid)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    # a binary by its name, a Python process by its module (``python -m reconciler...simulate``)
    if not cmdline or (Path(cmdline[0].decode(errors="replace")).name != name
                       and not any(arg.decode(errors="replace").endswith(f".{name}") for arg in cmdline[1:3])):
        return False
    return any(str(directory).encode() in arg for arg in cmdline)


def running(name: str, directory: Path) -> int | None:
    """The pid of our ``name`` process for ``directory`` if it is alive (zombies count as dead)."""
    try:
        pid = int((directory / f"{name}.pid").read_text().strip())
    except (OSError, ValueError):
        return None
    if not _ours(pid, name, directory):
        return None
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None
    return None if state == "Z" else pid


def _reap(pid: int) -> None:
    """Collect ``pid`` if it is our child (started by this process), so it does not linger as a zombie."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def stop(name: str, directory: Path, *, grace: float = 10.0) -> bool:
    """SIGTERM, then SIGKILL after ``grace`` s; True if something was stopped. Already stopped is fine."""
    pid = running(name, directory)
    pid_file = directory / f"{name}.pid"
    if pid is None:
        pid_file.unlink(missing_ok=True)
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while running(name, directory) is not None:
        _reap(pid)
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + grace
        time.sleep(0.05)
    _reap(pid)
    pid_file.unlink(missing_ok=True)
    return True


def log_tail(name: str, directory: Path, lines: int = 30) -> str:
    """The end of ``DIR/<name>.log``, for error messages that say why a process died."""
    try:
        text = (directory / f"{name}.log").read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def end_child(proc: subprocess.Popen[bytes], *, grace: float = 10.0) -> None:
    """Make sure a child this process started is gone and reaped (its pid file may already be stale)."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
