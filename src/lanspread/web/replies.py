"""The JSON replies of the UI's routes: ``{"ok": true, "data": ...}`` or the error."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from aiohttp import web

from lanspread.errors import LanspreadError, OperationError, public_code
from lanspread.web.security import refusal


class Ok(msgspec.Struct, frozen=True):
    data: Any
    ok: bool = True


def error_response(exc: BaseException) -> web.Response:
    """A clear JSON error for an exception a request raised (with the lifecycle rule's
    reason when one refused a game command)."""
    public = public_code(exc)
    reason = exc.reason if isinstance(exc, OperationError) else None
    return refusal(public.http_status, public.code, str(exc), reason)


def ok_response(data: Any = None, status: int = 200) -> web.Response:
    return web.Response(
        body=msgspec.json.encode(Ok(data=data)), status=status, content_type="application/json"
    )


def per_game(
    answer: Callable[[str], Awaitable[Any]],
) -> Callable[[web.Request], Awaitable[web.Response]]:
    """A route for ``/api/games/{game}/...``: ``answer(game)`` as data, or the error."""

    async def route(request: web.Request) -> web.Response:
        try:
            data = await answer(request.match_info["game"])
        except LanspreadError as exc:
            return error_response(exc)
        return ok_response(data)

    return route
