"""Request body checks made before any route reads the body: size, and storable text."""

from __future__ import annotations

import json
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from promptlogic.errors import problem_response
from promptlogic.validation import UNSTORABLE_TEXT


def unstorable_text(body: bytes) -> tuple[str, str] | None:
    """Where a JSON body holds text Postgres cannot store: NUL, or a lone UTF-16 surrogate.

    In valid JSON both can only arrive as `\\u` escapes, so a body without one is not parsed.
    """
    if b"\\u" not in body:
        return None
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        return None  # not JSON: the route's own parsing reports it
    return _find_unstorable(document, "body")


def _find_unstorable(value: Any, path: str) -> tuple[str, str] | None:
    if isinstance(value, str):
        match = UNSTORABLE_TEXT.search(value)
        if match is None:
            return None
        what = "a NUL character" if match.group() == "\x00" else "a lone UTF-16 surrogate"
        return path, f"contains {what}, which cannot be stored"
    if isinstance(value, dict):
        items: Any = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return None
    for key, item in items:
        if isinstance(key, str) and UNSTORABLE_TEXT.search(key):
            return f"{path}.{key!r}", "a key contains a NUL character or a lone surrogate"
        found = _find_unstorable(item, f"{path}.{key}")
        if found is not None:
            return found
    return None


class BodySizeLimit:
    """Answer 413 problem+json to a body over `max_bytes`, declared or streamed, and 422 to a
    JSON body holding text no column could store.

    The body is read here (it is bounded by the limit) and replayed to the app, because a
    framework that reads it later turns any error raised while reading into a 400.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._too_large(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._too_large(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        problem = unstorable_text(body)
        if problem is not None:
            field, reason = problem
            response = problem_response(
                422,
                f"{field}: {reason}",
                slug="validation-error",
                errors=[{"field": field, "message": reason}],
            )
            await response(scope, receive, send)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = problem_response(
            413,
            f"The request body is larger than the limit of {self.max_bytes} bytes.",
            slug="payload-too-large",
        )
        await response(scope, receive, send)
