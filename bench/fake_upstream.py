"""A minimal, fast OpenAI-compatible upstream for run-path benchmarks, in its own process.

Why not `python -m tests.fakes`: that fake is built for scripting tests (uvicorn, a lock, a
record of every request) and its default answer echoes the user's text, which fails a JSON
response format. A benchmark needs an upstream that costs next to nothing, so the figures are
the service's and not the fake's: this one is a bare asyncio protocol (uvloop when installed)
that answers every `POST …/chat/completions` with the same chat completion, usage included,
whose content satisfies the demo `support-triage` response format.

    .venv/bin/python bench/fake_upstream.py --port 8100 [--delay 0.5]

`POST /_bench/delay` with `{"seconds": 1.0}` changes the delay while it runs, and
`GET /_bench/stats` answers `{"requests": N, "connections": M, "delay": S}` (chat
completions served, connections opened).
Streaming, chunked request bodies and pipelining are not supported (no client here uses them).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
from typing import Any, cast

# Satisfies TRIAGE_RESPONSE_FORMAT in promptlogic.demo_prompts.
CONTENT = json.dumps(
    {
        "category": "billing",
        "priority": "normal",
        "needs_human": False,
        "summary": "Charged twice for one order; refund the duplicate charge.",
    }
)
MODEL_FIELD = re.compile(rb'"model"\s*:\s*"([^"\\]{1,200})"')
MAX_HEADER_BYTES = 64 * 1024


class Upstream:
    """What every connection shares: the delay, the counter and the prepared answers."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.requests = 0
        self.connections = 0  # opened so far: a client that does not keep connections alive shows
        self._bodies: dict[bytes, bytes] = {}

    def completion(self, model: bytes) -> bytes:
        """The answer for `model` (built once per model name, then reused)."""
        body = self._bodies.get(model)
        if body is None:
            body = json.dumps(
                {
                    "id": "chatcmpl-bench",
                    "object": "chat.completion",
                    "created": 1_700_000_000,
                    "model": model.decode(),
                    "system_fingerprint": None,
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": CONTENT, "refusal": None},
                            "logprobs": None,
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": {"prompt_tokens": 180, "completion_tokens": 24, "total_tokens": 204},
                }
            ).encode()
            self._bodies[model] = body
        return body

    def answer(self, method: bytes, path: bytes, body: bytes) -> tuple[int, bytes]:
        """Status and JSON body for one request."""
        if method == b"POST" and path.endswith(b"/chat/completions"):
            self.requests += 1
            match = MODEL_FIELD.search(body)
            return 200, self.completion(match.group(1) if match else b"gpt-4o-mini")
        if method == b"POST" and path == b"/_bench/delay":
            self.delay = float(json.loads(body or b"{}").get("seconds", 0.0))
            return 200, json.dumps({"delay": self.delay}).encode()
        if method == b"GET" and path == b"/_bench/stats":
            stats = {
                "requests": self.requests,
                "connections": self.connections,
                "delay": self.delay,
            }
            return 200, json.dumps(stats).encode()
        if method == b"GET" and path.endswith(b"/models"):
            model = {"id": "gpt-4o-mini", "object": "model", "created": 0, "owned_by": "bench"}
            return 200, json.dumps({"object": "list", "data": [model]}).encode()
        error = {"error": {"message": "no such route", "type": "invalid_request_error"}}
        return 404, json.dumps(error).encode()


REASONS = {200: b"OK", 404: b"Not Found", 400: b"Bad Request", 411: b"Length Required"}


class Connection(asyncio.Protocol):
    """HTTP/1.1 keep-alive, one request at a time (a delayed answer holds the next back)."""

    def __init__(self, upstream: Upstream) -> None:
        self.upstream = upstream
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.busy = False  # an answer is waiting for its delay
        self.closing = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self.upstream.connections += 1

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.busy:
            self._next()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None

    def _next(self) -> None:
        """Answer the buffered request, if a whole one has arrived."""
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(self.buffer) > MAX_HEADER_BYTES:
                self._reply(400, b"{}", close=True)
            return
        head = bytes(self.buffer[:end]).split(b"\r\n")
        method, path = [*head[0].split(b" ", 2), b"", b""][:2]
        length, close = 0, False
        for line in head[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"connection":
                close = value.strip().lower() == b"close"
            elif name == b"transfer-encoding":
                self._reply(411, b"{}", close=True)
                return
        if len(self.buffer) < end + 4 + length:
            return
        body = bytes(self.buffer[end + 4 : end + 4 + length])
        del self.buffer[: end + 4 + length]
        status, payload = self.upstream.answer(method, path.split(b"?", 1)[0], body)
        delay = self.upstream.delay if status == 200 and path.endswith(b"completions") else 0
        if delay > 0:
            self.busy = True
            asyncio.get_running_loop().call_later(delay, self._reply, status, payload, close)
        else:
            self._reply(status, payload, close)

    def _reply(self, status: int, payload: bytes, close: bool) -> None:
        self.busy = False
        if self.transport is None or self.transport.is_closing():
            return
        head = (
            b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n%s\r\n"
            % (status, REASONS.get(status, b"OK"), len(payload), b"connection: close\r\n" * close)
        )
        self.transport.write(head + payload)
        if close:
            self.transport.close()
        elif self.buffer:
            self._next()


async def serve(host: str, port: int, delay: float) -> None:
    upstream = Upstream(delay)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: Connection(upstream), host, port, backlog=4096)
    print(f"fake upstream at http://{host}:{port}/v1 (delay {delay}s)", flush=True)
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8100)
    parser.add_argument("--delay", type=float, default=0.0, help="seconds before each answer")
    args = parser.parse_args(argv)
    runner: Any = asyncio.run
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:  # plain asyncio is slower, but still far faster than any service here
        pass
    with contextlib.suppress(KeyboardInterrupt):
        runner(serve(args.host, args.port, args.delay))


if __name__ == "__main__":
    main()
