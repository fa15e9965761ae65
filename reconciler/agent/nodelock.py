"""One writer per node: an exclusive ``flock`` on ``/run/virtnet/<node>.lock`` held for a whole enforce pass.

Why: two agents enforcing on one node (a DaemonSet rollout that overlaps the old and the new pod, an
operator running ``virtnet agent --mode enforce`` by hand next to the DaemonSet) diff the same kernel
state, both decide to create ``br1``, and the loser rolls back into the winner's work. Rollback only
undoes what its own pass created (``reconciler.agent.rollback``), but two writers still interleave
changes to the same links. So an enforce pass first takes this lock; a second agent waits up to
``wait`` seconds and then refuses the pass (no write; it tries again next interval).

Why a file lock and not the per-node Kubernetes Lease the agent already uses for ``maxUnavailable``:

* the kernel enforces it on the node itself: it needs no API server, and the agent must still be able to
  refuse or roll back exactly when the node has lost the API (that is what a bad change does);
* it has no TTL: a Lease held by a pass that runs longer than its TTL (slow probes, a 120 s deadline, a
  stalled renewal) is taken over while the first writer is still writing, and nothing fences that writer;
* it is released by the kernel when the holder dies (SIGKILL included), so a crashed agent never blocks
  the node for a TTL, and a live one is never presumed dead.

It works across pods only when every agent on the node sees the same directory: the DaemonSet mounts the
host's ``/run/virtnet`` (hostPath, ``DirectoryOrCreate``). A lock directory that cannot be written is an
error in enforce mode (fail closed: without the lock there is no guarantee of a single writer).

The lock file is never deleted: unlinking it would let a waiter lock the old inode while a newcomer
locks a new file of the same name. Its content (pid, time) is only for the refusal message.

Side effects: creates ``lock_dir`` (mode 0700) and the lock file; holds an open descriptor while locked.
"""

from __future__ import annotations

import fcntl
import os
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime

from reconciler.errors import AgentError

LOCK_DIR = "/run/virtnet"


class LockBusy(AgentError):
    """Another agent holds this node's lock (the pass made no change)."""


def lock_path(lock_dir: str, node: str, netns: str | None = None) -> str:
    """``<lock_dir>/<node>.lock``; with a named network namespace (tests, ``--netns``) ``<node>@<netns>.lock``."""

    def safe(text: str) -> str:
        return re.sub(r"[^A-Za-z0-9._-]", "_", text)

    return os.path.join(lock_dir, safe(node) + (f"@{safe(netns)}" if netns else "") + ".lock")


class NodeLock:
    """The node's writer lock. :meth:`acquire` (waiting up to ``wait`` seconds), then :meth:`release`."""

    def __init__(
        self,
        lock_dir: str,
        node: str,
        netns: str | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        poll: float = 0.1,
    ) -> None:
        self.lock_dir = lock_dir
        self.node = node
        self.path = lock_path(lock_dir, node, netns)
        self.clock, self.sleep, self.poll = clock, sleep, poll
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self, wait: float = 0.0) -> None:
        """Take the lock, waiting up to ``wait`` seconds; :class:`LockBusy` when another agent keeps it."""
        if self._fd is not None:
            raise AgentError(f"node lock {self.path} is already held by this agent")
        try:
            os.makedirs(self.lock_dir, mode=0o700, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as e:
            raise AgentError(
                f"cannot open the node lock {self.path}: {e.strerror or e}; enforce mode needs a writable lock "
                "directory that every agent on the node shares (the DaemonSet mounts the host's /run/virtnet)"
            ) from e
        deadline = self.clock() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if self.clock() >= deadline:
                    holder = _read(fd)
                    os.close(fd)
                    raise LockBusy(
                        f"another agent is enforcing on node {self.node} ({holder or 'holder unknown'}; lock "
                        f"{self.path}); waited {wait:g}s, made no change, will retry"
                    ) from None
                self.sleep(self.poll)
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} since {stamp}".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        """Give the lock back (closing the descriptor releases the flock); a no-op when not held."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    def __enter__(self) -> NodeLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _read(fd: int) -> str:
    try:
        return os.pread(fd, 200, 0).decode("utf-8", "replace").strip()
    except OSError:
        return ""
