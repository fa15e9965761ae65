"""After a run on the tracked branch: a commit status on the commit it was about, a comment on the pull
request that was merged into it, and the notification providers (``reconciler.clients.notify``).

Why: the merge is where people look next. Without this the result of an apply reaches the status branch
only: the merged commit shows no check and the pull request's plan comment is the last word, even when
the apply failed. The status context is per cluster (``virtnet/apply/<cluster>``) so several clusters
tracking one repository do not overwrite each other. A pull request is found from the commit message the
forges write on merge (merge commit or squash), so no extra API call is made per run.

Side effects: the forge API and the providers' webhooks; failures are logged, never raised (a reconcile
stands whatever the forge or the chat says).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field

from reconciler import labels
from reconciler.clients.forge import Forge, ForgeError
from reconciler.clients.notify import Event, Notifier
from reconciler.logs import redact

log = logging.getLogger(__name__)

#: "Merge pull request #12 from …" (GitHub, Gitea), "… (#12)" on a squash's first line (GitHub, Gitea),
#: "See merge request group/project!12" (GitLab)
_PR_PATTERNS = (
    re.compile(r"^Merge pull request #(\d+)\b"),
    re.compile(r"^Merge pull request '.*' \(#(\d+)\)"),
    re.compile(r"^[^\n]*\(#(\d+)\)\s*$"),
    re.compile(r"See merge request [\w./-]+!(\d+)\b"),
)


def merged_pull_requests(message: str) -> list[int]:
    """The pull request numbers a merge or squash commit message names (first match per pattern)."""
    first = message.splitlines()[0] if message else ""
    found: list[int] = []
    for pattern in _PR_PATTERNS:
        text = message if "merge request" in pattern.pattern else first
        match = pattern.search(text)
        if match and int(match.group(1)) not in found:
            found.append(int(match.group(1)))
    return found


def repo_slug(url: str) -> str:
    """``owner/name`` of a repository URL (https, ssh or scp-like ``git@host:owner/name``), for the forge API;
    "" when it has none."""
    if url.startswith(("file:", "/", ".")):  # a local repository has no forge
        return ""
    rest = re.sub(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", "", url).split("@", 1)[-1]
    scp = "://" not in url and ":" in rest.split("/", 1)[0]
    path = rest.split(":", 1)[1] if scp else rest.partition("/")[2]
    path = path.strip("/").removesuffix(".git")
    return path if "/" in path else ""


def apply_marker(cluster: str) -> str:
    return f"<!-- virtnet-apply:{cluster} -->"


@dataclass
class Announcer:
    forge: Forge | None
    repo: str
    notifier: Notifier = field(default_factory=lambda: Notifier([]))
    _done: set[tuple[str, bool]] = field(default_factory=set)

    def announce(self, event: Event, commit_message: str, applied: bool) -> None:
        """Tell the forge (once per revision and success or failure) and the providers about one run."""
        self.notifier.notify(event)
        if self.forge is None or not self.repo or not event.revision or event.result == labels.SUSPENDED:
            return
        ok = event.severity == "info"
        if (event.revision, ok) in self._done:  # Applied then InSync is one success for the commit
            return
        self._done.add((event.revision, ok))
        try:
            self.forge.set_status(
                self.repo,
                event.revision,
                "success" if ok else "failure",
                context=f"virtnet/apply/{event.cluster}",
                description=redact(event.text())[:140],
            )
            if applied:
                body = f"{apply_marker(event.cluster)}\n{':white_check_mark:' if ok else ':x:'} {event.text()}\n"
                for number in merged_pull_requests(commit_message):
                    self.forge.upsert_comment(self.repo, number, apply_marker(event.cluster), body)
        except (ForgeError, ValueError) as exc:  # ValueError: a repository name the forge client refuses
            log.warning("could not report the apply of %s on %s: %s", event.revision[:12], self.repo, exc)
