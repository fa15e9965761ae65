"""The HTTP face of the reconciler: webhooks, health, readiness and metrics, served by waitress.

Why this shape: the WSGI app does no reconciling itself. It authenticates a webhook (before parsing it),
drops replays, and hands the event to an injected callback: ``on_push`` (normally ``Scheduler.trigger``)
for pushes to the tracked branch, ``on_pull_request`` for PRs and ``/virtnet plan`` comments on them
(which must only *plan*, in the background, and return quickly). Everything else is answered 202 "ignored".

waitress buffers request bodies on its async I/O loop, so a slow client ties up a socket, not a worker
thread. ``serve`` additionally sets ``channel_timeout`` (idle connections are closed),
``max_request_body_size`` (oversized bodies get 413 from waitress itself) and a per-request deadline
(a client that trickles a body too slowly is disconnected even if it never goes fully idle).

Slow clients must not starve the probes, which share the port (the chart's liveness probe restarts the
pod after three failures): waitress stops accepting *any* connection at ``connection_limit``, so the limit
is far above what slow clients can hold within the deadlines (1,000; ``poll`` instead of ``select``,
whose descriptor limit is 1,024), and what one connection may keep in memory is small (16 KiB of headers,
64 KiB of body; the rest of a body waits in a temporary file), so 1,000 of them stay under 100 MB.

Side effects: ``serve`` opens a listening socket and starts threads; the app calls the injected callbacks
and updates ``Metrics``. Secrets are given in by the caller and never logged; logs carry provider,
event kind and delivery id only.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import waitress
from werkzeug.exceptions import HTTPException, NotFound, RequestEntityTooLarge
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from reconciler.server import webhooks
from reconciler.server.metrics import CONTENT_TYPE, Metrics
from reconciler.server.webhooks import (
    Busy,
    DeliveryLog,
    Ignored,
    PlanCommand,
    PullRequestEvent,
    PushEvent,
    WebhookError,
)

log = logging.getLogger(__name__)

DEFAULT_MAX_BODY = 1024 * 1024

StartResponse = Callable[..., Any]
WSGIEnv = dict[str, Any]


def _json(code: int, **payload: object) -> Response:
    return Response(json.dumps(payload), status=code, mimetype="application/json")


@dataclass
class WebhookApp:
    """The WSGI application. Build it with ``build_app``."""

    secrets: Mapping[str, bytes | str]
    branch: str
    on_push: Callable[[PushEvent], object]
    on_pull_request: Callable[[PullRequestEvent | PlanCommand], object]
    ready: Callable[[], bool]
    metrics: Metrics
    deliveries: DeliveryLog
    max_body: int = DEFAULT_MAX_BODY
    url_map: Map = field(init=False)

    def __post_init__(self) -> None:
        self.url_map = Map(
            [
                Rule("/healthz", endpoint="healthz", methods=["GET", "HEAD"]),
                Rule("/readyz", endpoint="readyz", methods=["GET", "HEAD"]),
                Rule("/metrics", endpoint="metrics", methods=["GET", "HEAD"]),
                Rule("/webhooks/<provider>", endpoint="webhook", methods=["POST"]),
            ],
            strict_slashes=False,
        )

    def __call__(self, environ: WSGIEnv, start_response: StartResponse) -> Iterable[bytes]:
        request = Request(environ)
        request.max_content_length = self.max_body
        try:
            endpoint, args = self.url_map.bind_to_environ(environ).match()
            response: Response = getattr(self, f"_{endpoint}")(request, **args)
        except HTTPException as exc:
            response = _json(exc.code or 500, status="error", error=exc.name)
        return response(environ, start_response)

    # -- health ---------------------------------------------------------------------------------------
    def _healthz(self, request: Request) -> Response:
        return Response("ok\n", mimetype="text/plain")

    def _readyz(self, request: Request) -> Response:
        try:
            ok = bool(self.ready())
        except Exception:
            log.exception("readiness check failed")
            ok = False
        return Response("ok\n" if ok else "not ready\n", status=200 if ok else 503, mimetype="text/plain")

    def _metrics(self, request: Request) -> Response:
        return Response(self.metrics.render(), content_type=CONTENT_TYPE)

    # -- webhooks -------------------------------------------------------------------------------------
    def _webhook(self, request: Request, provider: str) -> Response:
        if provider not in webhooks.PROVIDERS:
            raise NotFound()
        secret = self.secrets.get(provider)
        kind = webhooks.classify(provider, request.headers)
        if not secret:
            self.metrics.webhook(provider, kind, "disabled")
            raise NotFound()
        if request.content_length is not None and request.content_length > self.max_body:
            return self._too_large(provider, kind)
        try:
            body = request.get_data(cache=True)
        except RequestEntityTooLarge:
            return self._too_large(provider, kind)
        if len(body) > self.max_body:
            return self._too_large(provider, kind)
        if not webhooks.verify(provider, request.headers, body, secret):
            self.metrics.webhook(provider, kind, "unauthorized")
            log.warning("webhook %s: signature missing or invalid", provider)
            return _json(401, status="unauthorized")
        delivery = webhooks.delivery_id(provider, request.headers, body)
        try:
            event = webhooks.parse(provider, request.headers, body)
        except WebhookError as exc:
            self.metrics.webhook(provider, kind, "bad_request")
            log.warning("webhook %s delivery %s: %s", provider, delivery, exc)
            return _json(400, status="bad_request", error=str(exc))
        if not self.deliveries.add(provider, delivery):
            self.metrics.webhook(provider, kind, "duplicate")
            log.info("webhook %s delivery %s: duplicate, ignored", provider, delivery)
            return _json(200, status="duplicate")
        try:
            return self._dispatch(provider, kind, event)
        except Busy as exc:  # not seen either: the redelivery is welcome
            self.deliveries.forget(provider, delivery)
            self.metrics.webhook(provider, kind, "busy")
            log.warning("webhook %s delivery %s: busy (%s)", provider, delivery, exc)
            return _json(503, status="busy")
        except Exception:
            # let the forge redeliver: the failed delivery must not count as seen
            self.deliveries.forget(provider, delivery)
            self.metrics.webhook(provider, kind, "error")
            log.exception("webhook %s delivery %s: handler failed", provider, delivery)
            return _json(500, status="error")

    def _dispatch(self, provider: str, kind: str, event: webhooks.Event) -> Response:
        if isinstance(event, PushEvent):
            if event.branch != self.branch:
                return self._ignored(provider, kind, event.delivery, "not the tracked branch")
            self.on_push(event)
            self.metrics.webhook(provider, kind, "accepted")
            log.info("webhook %s delivery %s: push %s -> reconcile", provider, event.delivery, event.after)
            return _json(202, status="triggered")
        if isinstance(event, PullRequestEvent | PlanCommand):
            self.on_pull_request(event)
            self.metrics.webhook(provider, kind, "accepted")
            what = webhooks.COMMAND + " on " if isinstance(event, PlanCommand) else ""
            log.info("webhook %s delivery %s: %sPR #%d -> plan", provider, event.delivery, what, event.number)
            return _json(202, status="planning")
        assert isinstance(event, Ignored)
        return self._ignored(provider, kind, event.delivery, event.reason)

    def _ignored(self, provider: str, kind: str, delivery: str, reason: str) -> Response:
        self.metrics.webhook(provider, kind, "ignored")
        log.info("webhook %s delivery %s: ignored (%s)", provider, delivery, reason)
        return _json(202, status="ignored", reason=reason)

    def _too_large(self, provider: str, kind: str) -> Response:
        self.metrics.webhook(provider, kind, "too_large")
        return _json(413, status="too_large")


def build_app(
    *,
    secrets: Mapping[str, bytes | str],
    branch: str,
    on_push: Callable[[PushEvent], object],
    on_pull_request: Callable[[PullRequestEvent | PlanCommand], object],
    ready: Callable[[], bool] = lambda: True,
    metrics: Metrics | None = None,
    deliveries: DeliveryLog | None = None,
    max_body: int = DEFAULT_MAX_BODY,
) -> WebhookApp:
    """The WSGI app. ``secrets`` maps provider -> webhook secret; a provider without one answers 404."""
    return WebhookApp(
        secrets=dict(secrets),
        branch=branch,
        on_push=on_push,
        on_pull_request=on_pull_request,
        ready=ready,
        metrics=metrics if metrics is not None else Metrics(),
        deliveries=deliveries if deliveries is not None else DeliveryLog(),
        max_body=max_body,
    )


class ServerHandle:
    """A running waitress server. ``port`` is the bound port (useful with port 0)."""

    def __init__(self, server: Any, thread: threading.Thread) -> None:
        self._server = server
        self._thread = thread
        self.host: str = server.effective_host
        self.port: int = int(server.effective_port)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def stop(self, timeout: float = 10.0) -> None:
        """Stop accepting, let in-flight requests finish (bounded), then close every connection.

        Worker threads are stopped *before* the I/O loop's wake-up pipe is closed, so no worker can
        write into a closed (and possibly reused) descriptor. Closing happens on the I/O thread.
        """
        server = self._server

        def on_loop(fn: Callable[[], None]) -> None:
            if not self._thread.is_alive():
                return
            try:
                server.trigger.pull_trigger(fn)
            except OSError:
                # the wake-up pipe is unusable: act from here; the loop then ends on an empty map
                log.debug("waitress trigger unusable; closing from the stopping thread")
                fn()

        def close_listener() -> None:
            server.close()

        def close_all() -> None:
            for dispatcher in list(server._map.values()):
                try:
                    # the listener's handle_close would log "unhandled close event"
                    (dispatcher.close if dispatcher is server else dispatcher.handle_close)()
                except Exception:
                    log.debug("closing a channel failed", exc_info=True)

        on_loop(close_listener)
        server.task_dispatcher.shutdown(timeout=timeout)
        on_loop(close_all)
        self._thread.join(timeout)

    def __enter__(self) -> ServerHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _add_request_deadline(server: Any, deadline: float) -> None:
    """Close channels whose current request has been arriving for longer than ``deadline`` seconds.

    waitress' own ``channel_timeout`` only catches *idle* channels; this catches trickling ones. It runs in
    waitress' maintenance pass (every ``cleanup_interval`` seconds) on the I/O thread.
    """
    first_seen: dict[int, tuple[object, float]] = {}
    original = server.maintenance

    def maintenance(now: float) -> None:
        original(now)
        live = set()
        for fd, channel in list(server._map.items()):
            request = getattr(channel, "request", None)
            if request is None or getattr(channel, "requests", None):
                continue
            live.add(fd)
            seen = first_seen.get(fd)
            if seen is None or seen[0] is not request:
                first_seen[fd] = (request, now)
            elif now - seen[1] > deadline:
                log.warning("closing a connection whose request took longer than %.0fs", deadline)
                channel.will_close = True
        for fd in set(first_seen) - live:
            del first_seen[fd]

    server.maintenance = maintenance


def serve(
    app: Callable[[WSGIEnv, StartResponse], Iterable[bytes]],
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    threads: int = 4,
    channel_timeout: int = 10,
    request_deadline: float = 10.0,
    cleanup_interval: int = 1,
    max_body: int = DEFAULT_MAX_BODY,
    connection_limit: int = 1000,
) -> ServerHandle:
    """Start waitress on a background thread and return once it is listening.

    A forge sends a whole delivery in well under a second; a client still sending after ``request_deadline``
    seconds, or silent for ``channel_timeout``, is disconnected."""
    server = waitress.create_server(
        app,
        host=host,
        port=port,
        threads=threads,
        channel_timeout=channel_timeout,
        cleanup_interval=cleanup_interval,
        max_request_body_size=max_body,
        max_request_header_size=16 * 1024,
        inbuf_overflow=64 * 1024,
        connection_limit=connection_limit,
        asyncore_use_poll=True,
        asyncore_loop_timeout=1,
        clear_untrusted_proxy_headers=True,
        ident="virtnet",
    )
    _add_request_deadline(server, request_deadline)

    def run() -> None:
        try:
            server.run()
        except Exception:
            log.exception("HTTP server loop ended with an error")

    thread = threading.Thread(target=run, name=f"waitress-{port}", daemon=True)
    thread.start()
    return ServerHandle(server, thread)  # create_server already bound and listens
