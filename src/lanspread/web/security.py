"""Who may use the local web UI: only the local user who started lanspread.

Design
------
* The server binds ``127.0.0.1`` only: nothing off the machine reaches it.
* **Host** must be ``127.0.0.1:<port>`` or ``localhost:<port>``. A web page that
  points a DNS name of its own at 127.0.0.1 (DNS rebinding) sends its own name
  and is refused.
* **Origin**, when a browser sends one, must be this server. It is required on
  every state-changing request and on the event stream, which browsers always
  send it for; so another page (any other site, or another port of localhost)
  cannot drive lanspread or read its stream.
* A **per-run token** (256 random bits) is required on every API call and on the
  stream; other local users can reach the port but do not know the token.

The token travels in the URL *fragment* of the link lanspread opens
(``http://127.0.0.1:<port>/#token=...``). Browsers never send a fragment to a
server, never put it in a ``Referer`` header and servers never log it. The page
reads it, trades it once for an ``HttpOnly; SameSite=Strict`` session cookie
(``POST /api/session``, Origin checked), and removes it from the address bar.
The cookie name carries the port, since cookies are shared by every port of a
host and two lanspread instances must not overwrite each other's session. Every
response also says ``Referrer-Policy: no-referrer``. Scripts may send the token
as ``Authorization: Bearer <token>`` instead of the cookie.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Awaitable, Callable

from aiohttp import hdrs, web
from aiohttp.typedefs import Middleware

TOKEN_BYTES = 32
LOOPBACK_HOST = "127.0.0.1"
PUBLIC_PATHS = frozenset(
    {"/", "/index.html", "/app.js", "/app.css", "/downloads.js", "/api/session"}
)
STREAM_PATH = "/api/stream"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

SECURITY_HEADERS = {
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
        "form-action 'self'"
    ),
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class AccessGuard:
    """The access rules of one UI server; :meth:`bind` it to the port it listens on."""

    def __init__(self, token: str | None = None) -> None:
        self.token = token if token is not None else secrets.token_urlsafe(TOKEN_BYTES)
        self._port: int | None = None

    def bind(self, port: int) -> None:
        self._port = port

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the access guard is not bound to a port yet")
        return self._port

    @property
    def cookie_name(self) -> str:
        return f"lanspread_session_{self.port}"

    @property
    def launch_url(self) -> str:
        return f"http://{LOOPBACK_HOST}:{self.port}/#token={self.token}"

    def host_allowed(self, host: str | None) -> bool:
        return host in {f"{LOOPBACK_HOST}:{self.port}", f"localhost:{self.port}"}

    def origin_allowed(self, origin: str | None, *, required: bool) -> bool:
        if origin is None:
            return not required
        return origin in {f"http://{LOOPBACK_HOST}:{self.port}", f"http://localhost:{self.port}"}

    def token_matches(self, candidate: str | None) -> bool:
        if not candidate:
            return False
        return hmac.compare_digest(candidate.encode("utf-8"), self.token.encode("utf-8"))

    def authenticated(self, request: web.Request) -> bool:
        header = request.headers.get(hdrs.AUTHORIZATION, "")
        scheme, _, credentials = header.partition(" ")
        if scheme.lower() == "bearer" and self.token_matches(credentials.strip()):
            return True
        return self.token_matches(request.cookies.get(self.cookie_name))

    def set_session_cookie(self, response: web.StreamResponse) -> None:
        response.set_cookie(
            self.cookie_name, self.token, path="/", httponly=True, samesite="Strict"
        )


def refusal(status: int, code: str, message: str, reason: str | None = None) -> web.Response:
    """``{"ok": false, "error": {"code", "message"}}``, with the lifecycle rule's
    ``reason`` when one refused a game command."""
    error = {"code": code, "message": message}
    if reason is not None:
        error["reason"] = reason
    return web.json_response({"ok": False, "error": error}, status=status)


def guard_middleware(guard: AccessGuard) -> Middleware:
    """Host, Origin and token checks in front of every route."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not guard.host_allowed(request.headers.get(hdrs.HOST)):
            return refusal(403, "forbidden-host", "this address is not lanspread's own")
        must_have_origin = request.method not in _SAFE_METHODS or request.path == STREAM_PATH
        if not guard.origin_allowed(request.headers.get(hdrs.ORIGIN), required=must_have_origin):
            return refusal(403, "forbidden-origin", "requests from other pages are refused")
        if request.path not in PUBLIC_PATHS and not guard.authenticated(request):
            return refusal(
                401, "unauthorized", "open lanspread from the link the app printed or opened"
            )
        return await handler(request)

    return middleware


async def add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare`` hook: the same headers on every response, streams included."""
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if request.path.startswith("/api/"):
        response.headers.setdefault(hdrs.CACHE_CONTROL, "no-store")
