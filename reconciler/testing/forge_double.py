"""An in-memory GitHub/Gitea/GitLab API double on a loopback port, for testing ``reconciler.clients.forge``.

Why: the forge clients must be tested over real HTTP (headers, pagination, retries) without the internet.
One server answers all three providers, told apart by path prefix: ``/repos/...`` (GitHub),
``/api/v1/repos/...`` (Gitea), ``/api/v4/projects/...`` (GitLab). Only the endpoints virtnet uses exist.

It checks the auth header each provider expects, says who the token is (``/user``: ``login``), answers
pull requests seeded with ``add_pull``, refuses a GitHub comment over 65,536 characters (HTTP 422, as
GitHub does), paginates comment lists (``Link`` for GitHub/Gitea,
``X-Next-Page`` for GitLab, page size capped by ``max_page_size``), requires GitLab project paths to be
URL-encoded (as GitLab does), records every call, and can fail the next N calls with a 5xx/429.

Side effects: a listening socket on 127.0.0.1 and a server thread between ``start``/``stop``
(or ``with ForgeDouble() as d``).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.serving import BaseWSGIServer, make_server
from werkzeug.wrappers import Request, Response

GITHUB_STATES = {"success", "failure", "pending", "error"}
GITEA_STATES = {"success", "failure", "pending", "error", "warning"}
GITHUB_MAX_BODY = 65_536  # characters of a comment body
GITLAB_STATES = {"pending", "running", "success", "failed", "canceled", "skipped"}


@dataclass(frozen=True)
class Call:
    """One request the double received."""

    provider: str
    method: str
    path: str
    raw_path: str
    query: str
    json: Any
    auth_ok: bool
    status: int
    headers: dict[str, str]


class ForgeDouble:
    """The fake forge. ``token`` is what clients must present; ``url`` is the base URL for every provider."""

    def __init__(self, token: str = "double-token", *, max_page_size: int = 100, login: str = "virtnet") -> None:
        self.token = token
        self.login = login
        self._pulls: dict[tuple[str, str, int], dict[str, str]] = {}
        self.max_page_size = max_page_size
        self.calls: list[Call] = []
        self._lock = threading.Lock()
        self._comments: dict[tuple[str, str, int], list[dict[str, Any]]] = {}
        self._statuses: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
        self._next_id = 1000
        self._failures: list[tuple[int, float | None]] = []
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self._map = Map(
            [
                Rule("/repos/<owner>/<name>/issues/<int:num>/comments", endpoint="gh_comments"),
                Rule("/repos/<owner>/<name>/issues/comments/<int:cid>", endpoint="gh_comment"),
                Rule("/repos/<owner>/<name>/statuses/<sha>", endpoint="gh_status"),
                Rule("/api/v1/repos/<owner>/<name>/issues/<int:num>/comments", endpoint="gt_comments"),
                Rule("/api/v1/repos/<owner>/<name>/issues/comments/<int:cid>", endpoint="gt_comment"),
                Rule("/api/v1/repos/<owner>/<name>/statuses/<sha>", endpoint="gt_status"),
                Rule("/api/v4/projects/<path:project>/merge_requests/<int:num>/notes", endpoint="gl_comments"),
                Rule(
                    "/api/v4/projects/<path:project>/merge_requests/<int:num>/notes/<int:cid>",
                    endpoint="gl_comment",
                ),
                Rule("/api/v4/projects/<path:project>/statuses/<sha>", endpoint="gl_status"),
                Rule("/user", endpoint="gh_user"),
                Rule("/api/v1/user", endpoint="gt_user"),
                Rule("/api/v4/user", endpoint="gl_user"),
                Rule("/repos/<owner>/<name>/pulls/<int:num>", endpoint="gh_pull"),
                Rule("/api/v1/repos/<owner>/<name>/pulls/<int:num>", endpoint="gt_pull"),
                Rule("/api/v4/projects/<path:project>/merge_requests/<int:num>", endpoint="gl_pull"),
            ]
        )

    # -- lifecycle -------------------------------------------------------------------------------------
    def start(self) -> ForgeDouble:
        self._server = make_server("127.0.0.1", 0, self._wsgi, threaded=True)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="forge-double", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(10)
        self._server = self._thread = None

    def __enter__(self) -> ForgeDouble:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("ForgeDouble is not running")
        return f"http://127.0.0.1:{self._server.server_port}"

    # -- test controls and inspection ------------------------------------------------------------------
    def fail_next(self, n: int, status: int = 503, retry_after: float | None = None) -> None:
        """Answer the next ``n`` requests with ``status`` (and a ``Retry-After`` header when given)."""
        with self._lock:
            self._failures.extend([(status, retry_after)] * n)

    def add_comment(self, provider: str, repo: str, pr: int, body: str, *, author: str = "someone") -> int:
        """Seed a comment (e.g. an old plan comment buried on page 2)."""
        with self._lock:
            return self._add(provider, repo, pr, body, author)

    def add_pull(
        self, provider: str, repo: str, number: int, head_sha: str, *, head_ref: str = "feature",
        base_ref: str = "main", head_url: str = "",
    ) -> None:  # fmt: skip
        """Seed an open pull request (what ``GET .../pulls/N`` answers)."""
        with self._lock:
            self._pulls[(provider, repo, number)] = {
                "sha": head_sha, "head_ref": head_ref, "base_ref": base_ref, "head_url": head_url,
            }  # fmt: skip

    def comments(self, repo: str, pr: int, provider: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [
                dict(c)
                for (p, r, n), items in self._comments.items()
                if r == repo and n == pr and provider in (None, p)
                for c in items
            ]

    def statuses(self, repo: str, sha: str, provider: str | None = None) -> list[dict[str, Any]]:
        """Every status posted for ``sha``, in order (history; the last one per context wins)."""
        with self._lock:
            return [
                dict(s)
                for (p, r, h), items in self._statuses.items()
                if r == repo and h == sha and provider in (None, p)
                for s in items
            ]

    # -- internals -------------------------------------------------------------------------------------
    def _add(self, provider: str, repo: str, pr: int, body: str, author: str) -> int:
        self._next_id += 1
        item = {"id": self._next_id, "body": body, "author": author, "updated": 0}
        self._comments.setdefault((provider, repo, pr), []).append(item)
        return self._next_id

    def _auth_ok(self, provider: str, request: Request) -> bool:
        auth = request.headers.get("Authorization", "")
        if provider == "github":
            return auth in (f"Bearer {self.token}", f"token {self.token}")
        if provider == "gitea":
            return auth in (f"token {self.token}", f"Bearer {self.token}")
        return auth == f"Bearer {self.token}" or request.headers.get("PRIVATE-TOKEN") == self.token

    def _wsgi(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        raw_path = environ.get("RAW_URI") or environ.get("REQUEST_URI") or request.full_path
        raw_path = raw_path.split("?", 1)[0]
        provider = (
            "gitlab"
            if request.path.startswith("/api/v4/")
            else ("gitea" if request.path.startswith("/api/v1/") else "github")
        )
        auth_ok = self._auth_ok(provider, request)
        payload = request.get_json(silent=True) if request.method in ("POST", "PATCH", "PUT") else None
        response = self._respond(request, provider, raw_path, auth_ok, payload)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("authorization", "private-token")}
        with self._lock:
            self.calls.append(
                Call(
                    provider,
                    request.method,
                    request.path,
                    raw_path,
                    request.query_string.decode(),
                    payload,
                    auth_ok,
                    response.status_code,
                    headers,
                )
            )
        return response(environ, start_response)

    def _respond(self, request: Request, provider: str, raw_path: str, auth_ok: bool, payload: Any) -> Response:
        with self._lock:
            failure = self._failures.pop(0) if self._failures else None
        if failure is not None:
            status, retry_after = failure
            response = _json({"message": "injected failure"}, status)
            if retry_after is not None:
                response.headers["Retry-After"] = str(retry_after)
            return response
        if not auth_ok:
            return _json({"message": "Bad credentials"}, 401)
        try:
            endpoint, args = self._map.bind_to_environ(request.environ).match(method=request.method)
        except HTTPException as exc:
            return _json({"message": exc.name}, exc.code or 404)
        if endpoint.endswith("_user"):
            return _json({"username" if provider == "gitlab" else "login": self.login, "id": 1}, 200)
        if provider == "gitlab":
            project = args["project"]
            if f"/projects/{quote(project, safe='')}/" not in raw_path:
                return _json({"message": "404 Project Not Found (path not URL-encoded)"}, 404)
            repo = project
        else:
            repo = f"{args['owner']}/{args['name']}"
        kind = endpoint[3:]
        with self._lock:
            if kind == "pull":
                return self._on_pull(provider, repo, args["num"])
            if kind == "comments":
                return self._on_comments(request, provider, repo, args["num"], payload)
            if kind == "comment":
                return self._on_comment(request, provider, repo, args, payload)
            return self._on_status(request, provider, repo, args["sha"], payload)

    def _on_comments(self, request: Request, provider: str, repo: str, num: int, payload: Any) -> Response:
        key = (provider, repo, num)
        if request.method == "POST":
            refused = _body_refused(provider, payload)
            if refused is not None:
                return refused
            cid = self._add(provider, repo, num, payload["body"], self.login)
            return _json(self._view(self._find(cid)[1]), 201)
        if request.method != "GET":
            return _json({"message": "method not allowed"}, 405)
        items = self._comments.get(key, [])
        size_param = "limit" if provider == "gitea" else "per_page"
        size = max(1, min(self.max_page_size, _int(request.args.get(size_param), 30)))
        page = max(1, _int(request.args.get("page"), 1))
        chunk = items[(page - 1) * size : page * size]
        response = _json([self._view(c) for c in chunk], 200)
        has_next = page * size < len(items)
        if provider == "gitlab":
            response.headers["X-Page"] = str(page)
            response.headers["X-Per-Page"] = str(size)
            response.headers["X-Total"] = str(len(items))
            response.headers["X-Next-Page"] = str(page + 1) if has_next else ""
        elif has_next:
            query = {k: v for k, v in request.args.items() if k != "page"}
            query.update({size_param: str(size), "page": str(page + 1)})
            response.headers["Link"] = f'<{request.host_url.rstrip("/")}{request.path}?{urlencode(query)}>; rel="next"'
        return response

    def _on_comment(
        self, request: Request, provider: str, repo: str, args: Mapping[str, Any], payload: Any
    ) -> Response:
        expected = "PUT" if provider == "gitlab" else "PATCH"
        if request.method != expected:
            return _json({"message": "method not allowed"}, 405)
        key, item = self._find(args["cid"])
        if item is None or key[0] != provider or key[1] != repo or ("num" in args and key[2] != args["num"]):
            return _json({"message": "Not Found"}, 404)
        refused = _body_refused(provider, payload)
        if refused is not None:
            return refused
        item["body"] = payload["body"]
        item["updated"] += 1
        return _json(self._view(item), 200)

    def _on_status(self, request: Request, provider: str, repo: str, sha: str, payload: Any) -> Response:
        if request.method != "POST":
            return _json({"message": "method not allowed"}, 405)
        if not isinstance(payload, dict):
            return _json({"message": "JSON body required"}, 422)
        states = {"github": GITHUB_STATES, "gitea": GITEA_STATES, "gitlab": GITLAB_STATES}[provider]
        if payload.get("state") not in states:
            return _json({"message": f"invalid state {payload.get('state')!r}"}, 422 if provider != "gitlab" else 400)
        name_key = "name" if provider == "gitlab" else "context"
        entry = {
            "state": payload["state"],
            "context": payload.get(name_key, "default"),
            "description": payload.get("description"),
            "target_url": payload.get("target_url"),
        }
        history = self._statuses.setdefault((provider, repo, sha), [])
        if provider == "gitlab":
            last = [s for s in history if s["context"] == entry["context"]]
            if last and last[-1]["state"] == entry["state"] and entry["state"] in ("running", "pending"):
                verb = "run" if entry["state"] == "running" else "enqueue"
                return _json({"message": f"Cannot transition status via :{verb} from :{entry['state']}"}, 400)
        history.append(entry)
        return _json({"id": len(history), **entry}, 201)

    def _on_pull(self, provider: str, repo: str, num: int) -> Response:
        pull = self._pulls.get((provider, repo, num))
        if pull is None:
            return _json({"message": "Not Found"}, 404)
        if provider == "gitlab":
            data = {
                "iid": num,
                "sha": pull["sha"],
                "source_branch": pull["head_ref"],
                "target_branch": pull["base_ref"],
            }
            return _json(data, 200)
        head = {"sha": pull["sha"], "ref": pull["head_ref"], "repo": {"clone_url": pull["head_url"]}}
        return _json({"number": num, "head": head, "base": {"ref": pull["base_ref"]}}, 200)

    def _find(self, cid: int) -> tuple[tuple[str, str, int], dict[str, Any] | None]:
        for key, items in self._comments.items():
            for item in items:
                if item["id"] == cid:
                    return key, item
        return ("", "", 0), None

    @staticmethod
    def _view(item: dict[str, Any] | None) -> dict[str, Any]:
        assert item is not None
        # GitHub and Gitea name the author "user" (login), GitLab "author" (username): both are given
        who = {"user": {"login": item["author"]}, "author": {"username": item["author"]}}
        return {"id": item["id"], "body": item["body"], **who}


def _int(value: str | None, default: int) -> int:
    try:
        return int(value) if value is not None else default
    except ValueError:
        return default


def _json(data: Any, status: int) -> Response:
    return Response(json.dumps(data), status=status, mimetype="application/json")


def _body_refused(provider: str, payload: Any) -> Response | None:
    """The forge's answer to a comment body it refuses (missing, or over GitHub's limit), or None.

    Creating and editing a comment validate the body alike, so the rule lives once here.
    """
    if not isinstance(payload, dict) or not isinstance(payload.get("body"), str):
        return _json({"message": "body is required"}, 422)
    if provider == "github" and len(payload["body"]) > GITHUB_MAX_BODY:
        return _json({"message": "Validation Failed", "errors": ["Body is too long"]}, 422)
    return None


__all__ = ["Call", "ForgeDouble"]
