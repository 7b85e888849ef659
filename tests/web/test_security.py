"""Access rules of the local UI: Host, Origin, the per-run token and response headers."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient, TestServer

from lanspread.web.security import (
    SECURITY_HEADERS,
    AccessGuard,
    add_security_headers,
    guard_middleware,
)

TOKEN = "t0ken-Of-This-Run"


def bound_guard(port: int = 8123) -> AccessGuard:
    guard = AccessGuard(TOKEN)
    guard.bind(port)
    return guard


def test_tokens_are_random_and_long() -> None:
    """Each run gets its own unguessable token (256 bits, URL-safe)."""
    first, second = AccessGuard().token, AccessGuard().token
    assert first != second
    assert len(first) >= 43
    assert all(ch.isalnum() or ch in "-_" for ch in first)


def test_unbound_guard_refuses_to_answer() -> None:
    """A guard must know its port before it can check anything."""
    with pytest.raises(RuntimeError, match="not bound to a port yet"):
        AccessGuard(TOKEN).host_allowed("127.0.0.1:1")


def test_launch_url_carries_the_token_in_the_fragment() -> None:
    """The token travels after '#', which browsers never send to servers or in Referer."""
    assert bound_guard(8123).launch_url == f"http://127.0.0.1:8123/#token={TOKEN}"


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("127.0.0.1:8123", True),
        ("localhost:8123", True),
        ("127.0.0.1:8124", False),
        ("127.0.0.1", False),
        ("evil.example:8123", False),
        ("192.168.1.5:8123", False),
        (None, False),
    ],
)
def test_host_check(host: str | None, allowed: bool) -> None:
    """Only this server's loopback names pass: a rebinding DNS name does not."""
    assert bound_guard().host_allowed(host) is allowed


@pytest.mark.parametrize(
    ("origin", "required", "allowed"),
    [
        ("http://127.0.0.1:8123", True, True),
        ("http://localhost:8123", True, True),
        (None, False, True),
        (None, True, False),
        ("null", False, False),
        ("http://127.0.0.1:9999", False, False),
        ("https://127.0.0.1:8123", False, False),
        ("http://evil.example", False, False),
    ],
)
def test_origin_check(origin: str | None, required: bool, allowed: bool) -> None:
    """Origin must be this very server; a missing one passes only where not required."""
    assert bound_guard().origin_allowed(origin, required=required) is allowed


def test_token_comparison() -> None:
    """The token matches exactly; empty or different values do not."""
    guard = bound_guard()
    assert guard.token_matches(TOKEN)
    assert not guard.token_matches("")
    assert not guard.token_matches(None)
    assert not guard.token_matches(TOKEN + "x")


def test_cookie_name_carries_the_port() -> None:
    """Two instances on one host keep separate session cookies."""
    assert bound_guard(8123).cookie_name != bound_guard(8124).cookie_name


# -- the middleware on a live app ---------------------------------------------------------


async def ok(request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


GUARD = web.AppKey("guard", AccessGuard)


async def session(request: web.Request) -> web.Response:
    response = web.json_response({"ok": True})
    request.app[GUARD].set_session_cookie(response)
    return response


@pytest.fixture
async def client() -> AsyncIterator[TestClient[web.Request, web.Application]]:
    guard = AccessGuard(TOKEN)
    app = web.Application(middlewares=[guard_middleware(guard)])
    app[GUARD] = guard
    app.on_response_prepare.append(add_security_headers)
    app.router.add_get("/", ok)
    app.router.add_post("/api/session", session)
    app.router.add_get("/api/view", ok)
    app.router.add_post("/api/command", ok)
    app.router.add_get("/api/stream", ok)
    server = TestServer(app, host="127.0.0.1")
    async with TestClient(server) as test_client:
        assert server.port is not None
        guard.bind(server.port)
        yield test_client


def origin(client: TestClient[web.Request, web.Application]) -> str:
    return f"http://127.0.0.1:{client.server.port}"


async def error_of(response: ClientResponse) -> tuple[int, str]:
    body = await response.json()
    return response.status, body["error"]["code"]


async def test_public_page_needs_no_token(
    client: TestClient[web.Request, web.Application],
) -> None:
    """The page shell loads without a token (it holds no data) but with every header."""
    response = await client.get("/")
    assert response.status == 200
    for name, value in SECURITY_HEADERS.items():
        assert response.headers[name] == value


async def test_api_without_token_is_401(client: TestClient[web.Request, web.Application]) -> None:
    """Every API route refuses a request without the token."""
    assert await error_of(await client.get("/api/view")) == (401, "unauthorized")
    wrong = await client.get("/api/view", headers={"Authorization": "Bearer nope"})
    assert await error_of(wrong) == (401, "unauthorized")


async def test_bearer_token_and_session_cookie_both_work(
    client: TestClient[web.Request, web.Application],
) -> None:
    """Scripts send the token as a bearer header; the page trades it for a cookie."""
    bearer = await client.get("/api/view", headers={"Authorization": f"Bearer {TOKEN}"})
    assert bearer.status == 200
    assert bearer.headers["Cache-Control"] == "no-store"
    traded = await client.post("/api/session", headers={"Origin": origin(client)})
    cookie = traded.headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie
    assert "Path=/" in cookie
    assert (await client.get("/api/view")).status == 200


async def test_wrong_host_is_403_even_with_token(
    client: TestClient[web.Request, web.Application],
) -> None:
    """A request naming another host (DNS rebinding) is refused before anything else."""
    response = await client.get(
        "/api/view", headers={"Host": "evil.example", "Authorization": f"Bearer {TOKEN}"}
    )
    assert await error_of(response) == (403, "forbidden-host")
    assert await error_of(await client.get("/", headers={"Host": "evil.example"})) == (
        403,
        "forbidden-host",
    )


async def test_foreign_origin_is_403(client: TestClient[web.Request, web.Application]) -> None:
    """A page of another origin cannot read or drive the API, token or not."""
    auth = {"Authorization": f"Bearer {TOKEN}"}
    for method, path in (("GET", "/api/view"), ("POST", "/api/command")):
        response = await client.request(
            method, path, headers={**auth, "Origin": "http://evil.example"}
        )
        assert await error_of(response) == (403, "forbidden-origin")


async def test_state_change_and_stream_need_an_origin(
    client: TestClient[web.Request, web.Application],
) -> None:
    """POSTs and the stream must carry this server's Origin (browsers always send one)."""
    auth = {"Authorization": f"Bearer {TOKEN}"}
    assert await error_of(await client.post("/api/command", headers=auth)) == (
        403,
        "forbidden-origin",
    )
    assert await error_of(await client.get("/api/stream", headers=auth)) == (
        403,
        "forbidden-origin",
    )
    allowed = await client.post("/api/command", headers={**auth, "Origin": origin(client)})
    assert allowed.status == 200
