"""Errors of every stage, and the source locations they point at.

The tree::

    VirtnetError
     ├── SourceError      git fetch/auth/signature problems (nothing rendered)
     ├── ModelError       the repository does not validate; holds *every* Problem found
     ├── RenderError      a model that validated but cannot be turned into objects (a bug, or a missing rule)
     ├── ApplyError       the cluster refused or failed a change; names the object
     ├── HealthError      an object did not become healthy in time, or went Degraded
     └── AgentError       the node agent cannot observe or change the node (e.g. a missing kernel capability)

Users read these messages in terminals, PR comments and status commits, so each one leads with where the
problem is (``file:line: field`` or ``Kind/ns/name``) and then says what is wrong.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, order=True)
class SourceRef:
    """A place in the config repository: a file relative to the repo root, a 1-based line, a field path."""

    file: str
    line: int = 0
    field: str = ""

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.field}" if self.field else where


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with the repository. ``severity`` is ``error`` (blocks apply) or ``warning``."""

    ref: SourceRef
    message: str
    severity: str = "error"

    def __str__(self) -> str:
        return f"{self.ref}: {self.message}"

    def as_dict(self) -> dict[str, object]:
        return {
            "file": self.ref.file,
            "line": self.ref.line,
            "field": self.ref.field,
            "message": self.message,
            "severity": self.severity,
        }


class VirtnetError(Exception):
    """Base of every error virtnet raises on purpose."""


class SourceError(VirtnetError):
    """Fetching or verifying the config repository failed."""


@dataclass
class ModelError(VirtnetError):
    """The repository does not validate. Carries all problems, sorted by file and line."""

    problems: list[Problem] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.problems = sorted(self.problems)
        super().__init__(str(self))

    def __str__(self) -> str:
        n = len(self.problems)
        head = f"{n} problem{'s' if n != 1 else ''} in the repository"
        return "\n".join([head, *(f"  {p}" for p in self.problems)])


class RenderError(VirtnetError):
    """A validated model could not be rendered (a rule the validator missed)."""


class ApplyError(VirtnetError):
    """The cluster refused or failed a change. ``obj`` is ``Kind/namespace/name``."""

    def __init__(self, obj: str, message: str) -> None:
        self.obj = obj
        self.message = message
        super().__init__(f"{obj}: {message}")


class HealthError(ApplyError):
    """An object went Degraded or did not become healthy in time."""


class AgentError(VirtnetError):
    """The node agent cannot observe or change the node."""
