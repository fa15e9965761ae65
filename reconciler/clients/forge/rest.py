"""What every forge client does: authenticated requests to one origin, retries, pagination, and the two
operations (upsert the plan comment, set a commit status) in terms of hooks a provider fills in.

Subclasses give the paths (``_comments_path``, ``_comment_path``), the status payload (``_post_status``), and
where they differ, the auth header, list parameters, next-page rule and the comment update method.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, TypeVar
from urllib.parse import urlsplit

import requests
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt

from reconciler.errors import VirtnetError

log = logging.getLogger(__name__)

STATES = ("success", "failure", "pending", "error")
T = TypeVar("T")

_SAFE_TOKEN = re.compile(r"^[\x21-\x7e]+$")  # printable ASCII, no spaces: safe in a header
_SHA = re.compile(r"^[0-9a-fA-F]{7,64}$")


class ForgeError(VirtnetError):
    """A forge request failed. ``status`` is the HTTP status (None for connection problems)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        self.status = status
        super().__init__(message)


class TransientForgeError(ForgeError):
    """429, 5xx or a connection problem: worth retrying. ``retry_after`` in seconds when the forge said."""

    def __init__(self, message: str, status: int | None = None, retry_after: float | None = None) -> None:
        self.retry_after = retry_after
        super().__init__(message, status)


@dataclass(frozen=True)
class PullRequest:
    """What a forge says of an open pull request (for a ``/virtnet plan`` comment, which names only its number)."""

    number: int
    head_sha: str
    head_ref: str
    head_url: str
    base_ref: str


class Forge(Protocol):
    """What the plan runner needs from a forge."""

    def upsert_comment(self, repo: str, pr_number: int, marker: str, body: str) -> int: ...

    def pull_request(self, repo: str, pr_number: int) -> PullRequest: ...

    def web_links(self, web_url: str) -> WebLinks: ...

    def set_status(
        self,
        repo: str,
        sha: str,
        state: str,
        context: str = "virtnet/plan",
        description: str = "",
        target_url: str | None = None,
    ) -> None: ...


def read_token(*, file: str | os.PathLike[str] | None = None, env: str | None = None) -> str:
    """Read a token from ``file`` (preferred) or the environment variable ``env``; stripped.

    Raises ValueError naming only the source, never the content.
    """
    if file is not None:
        with open(file, encoding="utf-8") as fh:
            token = fh.read().strip()
        source = f"file {os.fspath(file)}"
    elif env is not None:
        token = os.environ.get(env, "").strip()
        source = f"environment variable {env}"
    else:
        raise ValueError("read_token needs file= or env=")
    if not token:
        raise ValueError(f"no forge token in {source}")
    return token


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After", "")
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


@dataclass(frozen=True)
class WebLinks:
    """Pages of one repository on the forge's web site (not its API): a file at a ref, a pull request.
    Each provider spells them its own way (``/blob/``, ``/src/commit/``, ``/-/blob/``)."""

    repository: str  # https://host/owner/name
    blob: str  # format with ref= and path=
    pull: str  # format with number=

    def file(self, ref: str, path: str = "") -> str:
        return self.blob.format(repo=self.repository.rstrip("/"), ref=ref, path=path)

    def pull_request(self, number: int) -> str:
        return self.pull.format(repo=self.repository.rstrip("/"), number=int(number))


class RestForge:
    """Shared HTTP plumbing and the two operations; subclasses map them to one provider's endpoints."""

    provider: ClassVar[str] = "forge"
    #: the API of the provider's public service, for an empty base URL (``forge.url: ""``)
    default_url: ClassVar[str] = ""
    _user_path: ClassVar[str] = "/user"  # who the token belongs to
    _blob: ClassVar[str] = "{repo}/blob/{ref}/{path}"
    _pull: ClassVar[str] = "{repo}/pull/{number}"

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        login: str = "",
        timeout: float = 10.0,
        retries: int = 4,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        per_page: int = 100,
        max_pages: int = 50,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        token = token.strip()
        base_url = base_url.strip() or self.default_url
        if not base_url:
            raise ValueError(f"{self.provider} has no public default: give the base URL of the instance")
        if not token or not _SAFE_TOKEN.match(token):
            raise ValueError(f"{self.provider} token is empty or contains whitespace/control characters")
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"{self.provider} base URL must be http(s)://host[/prefix]")
        self.base_url = base_url.rstrip("/")
        self._origin = (parts.scheme, parts.netloc)
        self.__token = token
        self.timeout = timeout
        self.retries = max(0, retries)
        self.backoff = max(0.0, backoff)
        self.max_backoff = max_backoff
        self.per_page = per_page
        self.max_pages = max(1, max_pages)
        self._sleep = sleep
        self._session = session if session is not None else requests.Session()
        self._session.trust_env = False  # no .netrc credentials, no proxies from the environment
        self._login = login.strip()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.base_url!r}, token=***)"

    # -- subclass hooks ---------------------------------------------------------------------------------
    def _auth_headers(self, token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    def _next_page(self, response: requests.Response, page: int) -> tuple[str, dict[str, Any]] | None:
        link = response.links.get("next", {}).get("url")
        return (link, {}) if link else None

    # -- plumbing ---------------------------------------------------------------------------------------
    def _redact(self, text: str) -> str:
        return text.replace(self.__token, "***")

    def _request(
        self, method: str, target: str, *, params: dict[str, Any] | None = None, json: Any = None
    ) -> requests.Response:
        url = self.base_url + target if target.startswith("/") else target
        parts = urlsplit(url)
        if (parts.scheme, parts.netloc) != self._origin:
            raise ForgeError(f"{self.provider}: refusing to send credentials to another origin")
        where = self._redact(f"{self.provider} {method} {parts.path}")
        headers = {"Accept": "application/json", "User-Agent": "virtnet", **self._auth_headers(self.__token)}
        try:
            response = self._session.request(
                method,
                url,
                params=params,
                json=json,
                headers=headers,
                timeout=self.timeout,
                allow_redirects=False,
            )
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise TransientForgeError(f"{where}: {type(exc).__name__}") from None
        except requests.RequestException as exc:
            raise ForgeError(f"{where}: {type(exc).__name__}") from None
        log.debug("%s -> %d", where, response.status_code)
        status = response.status_code
        if status == 429 or status >= 500:
            raise TransientForgeError(f"{where}: HTTP {status}", status, _retry_after(response))
        if status >= 300:
            snippet = self._redact(response.text[:200].replace("\n", " "))
            raise ForgeError(f"{where}: HTTP {status}: {snippet}", status)
        return response

    def _json(self, response: requests.Response) -> Any:
        try:
            return response.json()
        except ValueError:
            raise ForgeError(f"{self.provider}: response is not JSON", response.status_code) from None

    def _wait(self, state: RetryCallState) -> float:
        exp = min(self.max_backoff, self.backoff * (2 ** (state.attempt_number - 1)))
        exc = state.outcome.exception() if state.outcome is not None else None
        hinted = exc.retry_after if isinstance(exc, TransientForgeError) and exc.retry_after else 0.0
        return min(self.max_backoff, max(exp, hinted))

    def _retrying(self, what: str, fn: Callable[[], T]) -> T:
        def before_sleep(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome is not None else None
            log.warning("%s: attempt %d failed (%s), retrying", what, state.attempt_number, exc)

        retrying = Retrying(
            stop=stop_after_attempt(self.retries + 1),
            wait=self._wait,
            retry=retry_if_exception_type(TransientForgeError),
            before_sleep=before_sleep,
            sleep=self._sleep,
            reraise=True,
        )
        return retrying(fn)

    def _pages(self, path: str, params: dict[str, Any]) -> Iterator[list[Any]]:
        target, query, page = path, dict(params), 1
        for _ in range(self.max_pages):
            response = self._request("GET", target, params=query or None)
            items = self._json(response)
            if not isinstance(items, list):
                raise ForgeError(f"{self.provider}: expected a list of comments")
            yield items
            nxt = self._next_page(response, page)
            if nxt is None:
                return
            target, query = nxt
            page += 1
        log.warning("%s: stopped after %d pages of comments", self.provider, self.max_pages)

    # -- operations -------------------------------------------------------------------------------------
    def _comments_path(self, repo: str, pr_number: int) -> str:
        raise NotImplementedError

    def _comment_path(self, repo: str, pr_number: int, comment_id: int) -> str:
        raise NotImplementedError

    def _list_params(self) -> dict[str, Any]:
        return {"per_page": self.per_page}

    _update_method: ClassVar[str] = "PATCH"

    def whoami(self) -> str:
        """The login the token acts as (``login=`` when given: a GitHub App's token cannot ask)."""
        if not self._login:
            data = self._json(self._retrying(f"{self.provider} user", lambda: self._request("GET", self._user_path)))
            login = data.get(self._login_key) if isinstance(data, dict) else None
            if not isinstance(login, str) or not login:
                raise ForgeError(f"{self.provider}: cannot tell who the token belongs to; set forge.login")
            self._login = login
        return self._login

    _login_key: ClassVar[str] = "login"
    _author_key: ClassVar[str] = "user"

    def _author(self, item: dict[str, Any]) -> str:
        who = item.get(self._author_key)
        return str(who.get(self._login_key) or "") if isinstance(who, dict) else ""

    def find_comment(self, repo: str, pr_number: int, marker: str) -> int | None:
        """The id of the first comment of ours containing ``marker``, or None. Ours: written by the login the
        token acts as. Anyone can paste the marker into a comment; editing theirs would put our plan in
        their name, or fail and leave no plan at all."""
        me = self.whoami()
        for items in self._pages(self._comments_path(repo, pr_number), self._list_params()):
            for item in items:
                if not isinstance(item, dict) or item.get("system") or self._author(item) != me:
                    continue
                if marker in str(item.get("body") or "") and isinstance(item.get("id"), int):
                    return int(item["id"])
        return None

    def web_links(self, web_url: str) -> WebLinks:
        """Links to pages of the repository at ``web_url`` (its home page on the forge)."""
        return WebLinks(web_url, self._blob, self._pull)

    def _pull_path(self, repo: str, pr_number: int) -> str:
        raise NotImplementedError

    def _pull_request(self, number: int, data: Any) -> PullRequest:
        raise NotImplementedError

    def pull_request(self, repo: str, pr_number: int) -> PullRequest:
        """The pull request's head and base as the forge has them now."""
        path = self._pull_path(repo, pr_number)
        data = self._json(
            self._retrying(f"{self.provider} pull request {repo}#{pr_number}", lambda: self._request("GET", path))
        )
        try:
            return self._pull_request(pr_number, data)
        except (KeyError, TypeError, AttributeError):
            raise ForgeError(f"{self.provider}: pull request {repo}#{pr_number} has no head or base") from None

    def upsert_comment(self, repo: str, pr_number: int, marker: str, body: str) -> int:
        """Update the comment carrying ``marker`` (found across all pages) or create it; returns its id."""
        if not marker:
            raise ValueError("marker must not be empty")
        self._comments_path(repo, pr_number)  # a bad repository name is refused before any request
        text = body if marker in body else f"{marker}\n{body}"

        def attempt() -> int:
            found = self.find_comment(repo, pr_number, marker)
            if found is not None:
                self._request(self._update_method, self._comment_path(repo, pr_number, found), json={"body": text})
                return found
            created = self._json(self._request("POST", self._comments_path(repo, pr_number), json={"body": text}))
            if not isinstance(created, dict) or not isinstance(created.get("id"), int):
                raise ForgeError(f"{self.provider}: created comment has no id")
            return int(created["id"])

        return self._retrying(f"{self.provider} upsert comment on {repo}#{pr_number}", attempt)

    def set_status(
        self,
        repo: str,
        sha: str,
        state: str,
        context: str = "virtnet/plan",
        description: str = "",
        target_url: str | None = None,
    ) -> None:
        """Set the commit status ``context`` on ``sha``. ``state`` is success|failure|pending|error."""
        if state not in STATES:
            raise ValueError(f"state must be one of {', '.join(STATES)}")
        if not _SHA.match(sha):
            raise ValueError("sha must be 7-64 hex digits")
        self._retrying(
            f"{self.provider} status on {repo}@{sha[:12]}",
            lambda: self._post_status(repo, sha, state, context, description[:140], target_url),
        )

    def _post_status(
        self, repo: str, sha: str, state: str, context: str, description: str, target_url: str | None
    ) -> None:
        raise NotImplementedError
