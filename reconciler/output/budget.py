"""Character budgets for Markdown that must fit a forge's limit (pure).

Why: GitHub refuses a comment over 65,536 characters (GitLab and Gitea have limits of their own), and a
refused plan comment is a plan nobody sees. A 1,000-VM change renders to more than half a million
characters in full, so the PR comment gives each section a share of :data:`COMMENT_LIMIT` and lists
what fits, most important rows first, then says how many rows it left out ("… and N more"). The full
plan goes to the status branch, where no limit applies, and the comment links to it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

COMMENT_LIMIT = 65_536  # GitHub's maximum comment body, in characters
#: what the comment aims at: room left for the redaction of secrets, the marker and the footer
COMMENT_TARGET = 60_000


class Budget:
    """Characters left for one piece of Markdown. ``fit`` takes whole rows while they fit."""

    def __init__(self, chars: int) -> None:
        self.left = chars

    def fit(self, rows: Sequence[str], more: Callable[[int], str], *, keep: int = 0) -> list[str]:
        """``rows`` (each one line or block, joined later with newlines) while they fit, then ``more(n)``
        for the ``n`` rows left out. The first ``keep`` rows are taken whatever they cost (what must
        always be named); a row is never cut in half."""
        out: list[str] = []
        for index, row in enumerate(rows):
            cost = len(row) + 1
            if index >= keep and cost + len(more(len(rows))) + 1 > self.left:
                tail = more(len(rows) - index)
                self.left -= len(tail) + 1
                return [*out, tail]
            out.append(row)
            self.left -= cost
        return out

    def text(self, value: str, more: str = "…") -> str:
        """``value`` cut to what is left (for one block of free text, like an error message)."""
        if len(value) <= self.left:
            self.left -= len(value)
            return value
        cut = value[: max(0, self.left - len(more))] + more
        self.left = 0
        return cut


def fit(budget: Budget | None, rows: Sequence[str], more: Callable[[int], str], *, keep: int = 0) -> list[str]:
    """``budget.fit(...)``, or every row when there is no budget (the full plan)."""
    return list(rows) if budget is None else budget.fit(rows, more, keep=keep)


def more_rows(noun: str, where: str = "the full plan") -> Callable[[int], str]:
    """The "… and N more" line of a list."""
    return lambda n: f"- … and {n} more {noun} (see {where})"


def more_table_row(columns: int, noun: str) -> Callable[[int], str]:
    """The "… and N more" row of a table with ``columns`` columns."""
    return lambda n: f"| … | and {n} more {noun} |" + " |" * (columns - 2)
