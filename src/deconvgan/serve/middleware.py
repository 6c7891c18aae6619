"""The ASGI layer every request passes first: metrics, the bearer token, the body-size limit.

A plain ASGI middleware (not Starlette's BaseHTTPMiddleware, which buffers responses and runs the app in a
separate task). In order, for each HTTP request:

1. with a token configured, every path but the health probes (``/healthz``, ``/readyz``) and the web
   page's own files (``/``, ``/static/...``: fixed HTML, JavaScript and CSS holding no model data, which a
   browser must load before it can send a header; the page then sends the token from its URL fragment
   on every API call) needs ``Authorization: Bearer <token>``, compared in constant time
   (:func:`hmac.compare_digest`): 401 otherwise;
2. a body over ``max_body_bytes`` (by its Content-Length, or counted as it arrives) gets 413 before the
   app sees any of it;
3. the app runs; its status, latency and route *template* are recorded (``unmatched`` when no route
   matches, so made-up paths create no new metric series).
"""

from __future__ import annotations

import hmac
import json
import time
from typing import Any

from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from deconvgan.serve.metrics import ServeMetrics
from deconvgan.serve.problems import detail

OPEN_PATHS = ("/healthz", "/readyz", "/")  # never need the token: probes have none, the page is static
OPEN_PREFIXES = ("/static/",)  # the page's files: a browser fetches them before it can send the token


async def send_json(send: Send, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
    """Answer with a JSON body directly at the ASGI level."""
    payload = json.dumps(body).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": payload})


class Guard:
    """Metrics, token and body limit around ``app`` (the FastAPI router stack); see the module doc."""

    def __init__(self, app: ASGIApp, *, routes: list, metrics: ServeMetrics, token: str | None,
                 max_body_bytes: int) -> None:
        self.app, self.routes, self.metrics = app, routes, metrics
        self.token = token.encode() if token is not None else None
        self.max_body_bytes = max_body_bytes

    def _template(self, scope: Scope) -> str:
        """The route template the router chose (it leaves it in the scope), else the top-level route that
        matches (``/static``; ``/v1`` for the API router when the request was refused before routing)."""
        chosen = scope.get("route")
        if getattr(chosen, "path", None):
            return chosen.path
        for route in self.routes:
            if route.matches(scope)[0] == Match.FULL:
                return getattr(route, "path", None) or "/v1"
        return "unmatched"

    def _authorised(self, scope: Scope) -> bool:
        if self.token is None or scope["path"] in OPEN_PATHS or scope["path"].startswith(OPEN_PREFIXES):
            return True
        given = b""
        for key, value in scope.get("headers", ()):
            if key == b"authorization":
                given = value
                break
        scheme, _, credential = given.partition(b" ")
        # compare_digest takes as long whatever the first differing byte: no timing oracle for the token
        ok = hmac.compare_digest(credential.strip(), self.token)
        return ok and scheme.lower() == b"bearer"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_recording(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            if not self._authorised(scope):
                await send_json(send_recording, 401, detail("missing or wrong bearer token: send the header "
                                                            "Authorization: Bearer <token>", "authorization"),
                                {"WWW-Authenticate": "Bearer"})
                return
            body_receive = await self._limited_body(scope, receive, send_recording)
            if body_receive is None:
                return
            await self.app(scope, body_receive, send_recording)
        finally:
            self.metrics.observe_request(self._template(scope), scope.get("method", "?"), status,
                                         time.perf_counter() - start)

    async def _limited_body(self, scope: Scope, receive: Receive, send: Send) -> Receive | None:
        """A ``receive`` replaying the whole body, or None after answering 413 for a body over the limit."""
        limit = self.max_body_bytes
        for key, value in scope.get("headers", ()):
            if key == b"content-length" and (not value.isdigit() or int(value) > limit):
                await self._too_large(send)
                return None
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return receive  # the client left: let the app see it
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await self._too_large(send)
                return None
            chunks.append(chunk)
            more = message.get("more_body", False)
        body, replayed = b"".join(chunks), False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: wait for the disconnect, as the server would

        return replay

    async def _too_large(self, send: Send) -> None:
        await send_json(send, 413, detail(f"the request body is over {self.max_body_bytes} bytes: send fewer latents "
                                          "or seeds per request", "body", self.max_body_bytes))
