"""The API's outermost layer: security headers, a bound on request bodies, no tracebacks.

A body over ``MAX_REQUEST_BODY_BYTES`` is refused with 413: unread when its length is declared,
as soon as the count passes the bound when it is not (chunked). FastAPI's own ``max_body_size``
is not used: it answers from outside this layer, in plain text and without the headers.

An exception a route did not turn into a refusal still gets a short answer: 503 (try again) when
the service database is busy or unreachable, 500 otherwise. The log gets one line naming the
exception class and the route's path template, then the stack without the exception's message:
the URL carries a token, and a database error's message quotes the SQL parameters (caregivers'
names, patient ids).
"""

from __future__ import annotations

import logging
import traceback
from typing import Final

from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.api.const import DATABASE_RETRY_AFTER_S, MAX_REQUEST_BODY_BYTES
from service.api.pages import SECURITY_HEADERS, message_page

log = logging.getLogger(__name__)

_HEADERS: Final = [(name.encode(), value.encode()) for name, value in SECURITY_HEADERS.items()]
_BUSY: Final = "The service database is busy or unreachable: nothing was done. Try again shortly."
_FAILED: Final = "The service failed to handle this request: nothing may have been done. Try again."
_TOO_LARGE: Final = f"The request body is over {MAX_REQUEST_BODY_BYTES} bytes: nothing was read."


class GuardMiddleware:
    """Add :data:`~service.api.pages.SECURITY_HEADERS`; answer unhandled errors without details."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    @staticmethod
    def _with_headers(send: Send) -> Send:
        """``send`` with :data:`_HEADERS` put into the response's start, replacing any given."""
        names = {name for name, _ in _HEADERS}

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                kept = [(k, v) for k, v in message.get("headers", []) if k.lower() not in names]
                message = {**message, "headers": [*kept, *_HEADERS]}
            await send(message)

        return send_with_headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the app, adding the headers to its answer, or answer its failure."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        with_headers = self._with_headers(send)
        if _declared_length(scope) > MAX_REQUEST_BODY_BYTES:
            response = JSONResponse({"detail": _TOO_LARGE, "reason": "too_large"}, 413)
            await response(scope, receive, with_headers)  # refused unread
            return
        received = 0

        async def receive_limited() -> Message:
            # a body without a length (chunked) is counted as it arrives; FastAPI answers the
            # HTTPException as it is (its own body limit answers outside this middleware)
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > MAX_REQUEST_BODY_BYTES:
                raise HTTPException(413, _TOO_LARGE)
            return message

        started = False

        async def send_guarded(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await with_headers(message)

        try:
            await self.app(scope, receive_limited, send_guarded)
        except Exception as exc:
            route = getattr(scope.get("route"), "path", "(no route)")
            busy = isinstance(exc, SQLAlchemyError)
            log.error(
                "API request to %s failed with %s%s\n%s",
                route,
                type(exc).__name__,
                " (service database busy or unreachable)" if busy else "",
                "".join(traceback.format_tb(exc.__traceback__)).rstrip(),
            )
            if started:
                raise  # the answer is under way: the server can only close the connection
            await _answer_failure(scope, receive, send_guarded, busy=busy)


def _declared_length(scope: Scope) -> int:
    """The request's Content-Length (0 when absent or unreadable: the server refuses those)."""
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            return int(value) if value.isdigit() else 0
    return 0


async def _answer_failure(scope: Scope, receive: Receive, send: Send, *, busy: bool) -> None:
    """503 or 500, as JSON under ``/api/`` and as a page for the links."""
    status, text = (503, _BUSY) if busy else (500, _FAILED)
    response: Response
    if str(scope.get("path", "")).startswith("/api/"):
        response = JSONResponse({"detail": text, "reason": "busy" if busy else "error"}, status)
    else:
        response = message_page("Not done", text, status)
    if busy:
        response.headers["retry-after"] = str(DATABASE_RETRY_AFTER_S)
    await response(scope, receive, send)
