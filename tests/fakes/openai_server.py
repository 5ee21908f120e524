"""A fake OpenAI-compatible server on 127.0.0.1, scripted per test, spoken to over real HTTP.

Why real HTTP rather than a mocked transport: the run path has to be tested with the real
`openai` SDK on our side, and its timeouts, SSE parsing, error classes and `Retry-After`
handling only show up on a real connection. The server starts once per test session (uvicorn
in a background thread with its own event loop, so it keeps answering whatever the test's loop
is doing) and a reset between tests is a few list clears.

Scripting: `push` queues behaviours, one consumed per request to an endpoint; when the queue is
empty the endpoint's default answers (an echo of the last user message). Every request is
recorded, before its behaviour runs, so a test can assert what was sent and how often.

    fake.push(Fail(429, retry_after=1), Reply({"label": "billing"}, usage=Usage(12, 3)))
    ...
    assert fake.call_count() == 2
    assert fake.last_request().body["response_format"]["type"] == "json_schema"

Run it alone (e.g. as the upstream of a benchmark): `python -m tests.fakes --port 8100 --delay 1`.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import re
import socket
import threading
import time
from array import array
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import openai
import uvicorn
from starlette.types import Receive, Scope, Send

Endpoint = Literal["chat", "embeddings"]
ENDPOINTS: dict[str, Endpoint] = {
    "/v1/chat/completions": "chat",
    "/v1/embeddings": "embeddings",
}
MODELS = ("gpt-4o-mini", "gpt-4o", "gpt-4.1-mini", "text-embedding-3-small")
CREATED = 1_700_000_000  # a fixed timestamp keeps responses byte-for-byte reproducible
DEFAULT_EMBEDDING_DIMENSIONS = 1536
ERROR_KINDS = {  # status → OpenAI's error `type` and `code`, so the SDK maps it as it would
    400: ("invalid_request_error", "invalid_request"),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("invalid_request_error", "permission_denied"),
    404: ("invalid_request_error", "model_not_found"),
    429: ("requests", "rate_limit_exceeded"),
    500: ("server_error", "server_error"),
    502: ("server_error", "bad_gateway"),
    503: ("server_error", "service_unavailable"),
    504: ("server_error", "timeout"),
}


@dataclass(frozen=True)
class Usage:
    """Token counts to report; without one, the fake counts words as tokens."""

    prompt_tokens: int
    completion_tokens: int

    def as_json(self) -> dict[str, int]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
        }


@dataclass(frozen=True)
class Reply:
    """A successful answer after `delay` seconds.

    `content` None echoes the last user message; a dict or list is sent as JSON text (for
    response-format tests). A streaming request gets the content split into word chunks.
    """

    content: str | dict[str, Any] | list[Any] | None = None
    usage: Usage | None = None
    delay: float = 0.0
    finish_reason: str = "stop"


@dataclass(frozen=True)
class Stream:
    """Streamed text deltas: `delay` before the first, `chunk_delay` between the others.

    With `break_after=N` the connection closes after N deltas, without a finish chunk or
    `[DONE]`: the mid-stream failure the client has to survive. A non-streaming request gets
    the joined chunks as one reply.
    """

    chunks: Sequence[str]
    usage: Usage | None = None
    delay: float = 0.0
    chunk_delay: float = 0.0
    break_after: int | None = None
    finish_reason: str = "stop"


@dataclass(frozen=True)
class Fail:
    """An error status with OpenAI's JSON error body, and `Retry-After` when given."""

    status: int = 500
    message: str = ""
    retry_after: float | str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass(frozen=True)
class Hang:
    """Answers nothing: the request ends when the client gives up (its timeout).

    After `seconds` without the client leaving, a 504 ends it, so no test can wait forever.
    """

    seconds: float = 60.0


@dataclass(frozen=True)
class Malformed:
    """A 200 whose body is not valid JSON (as an SSE event's data when streaming)."""

    body: str = '{"id": "chatcmpl-broken", "choices": [{"message": '


Behaviour = Reply | Stream | Fail | Hang | Malformed


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the fake received it; `headers` have lower-case names."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any  # the parsed JSON body, None when there was none or it was not JSON
    received_at: float  # time.monotonic(), to check the spacing of retries


class _DropConnection(Exception):
    """Raised after a response started: uvicorn then closes the socket mid-body."""


class _HideDeliberateDrops(logging.Filter):
    """Keeps uvicorn from logging as application errors what the fake does on purpose.

    That is the connection drops a script asked for, and requests still hanging when the
    server stops (cancelled).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, _DropConnection | asyncio.CancelledError)


class FakeOpenAI:
    """The fake server: an ASGI app with its script, and the uvicorn thread that serves it.

    Scripting methods may be called from any thread; the state they share with the server
    thread is guarded by one lock and every operation under it is O(1) or a list copy.
    """

    def __init__(self, *, keep_requests: int | None = None) -> None:
        """`keep_requests` bounds the record (a long benchmark would otherwise fill memory)."""
        self.port = 0
        self._lock = threading.Lock()
        self._queues: dict[Endpoint, deque[Behaviour]] = {"chat": deque(), "embeddings": deque()}
        self._defaults: dict[Endpoint, Behaviour] = {"chat": Reply(), "embeddings": Reply()}
        self._requests: deque[RecordedRequest] = deque(maxlen=keep_requests)
        self._received = 0  # numbers the responses, so two calls never look like one
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._log_filter = _HideDeliberateDrops()

    # --- scripting, from tests ---------------------------------------------------------

    @property
    def base_url(self) -> str:
        """The `base_url` to give an OpenAI client (ends in `/v1`)."""
        return f"http://127.0.0.1:{self.port}/v1"

    def client(self, **options: Any) -> openai.AsyncOpenAI:
        """A real SDK client for this fake, with the SDK's own retries off, as ours will be."""
        options = {"api_key": "sk-fake", "max_retries": 0, **options}
        return openai.AsyncOpenAI(base_url=self.base_url, **options)

    def push(self, *behaviours: Behaviour, endpoint: Endpoint = "chat") -> None:
        """Queue behaviours for the next requests to `endpoint`, one per request, in order."""
        with self._lock:
            self._queues[endpoint].extend(behaviours)

    def set_default(self, behaviour: Behaviour, *, endpoint: Endpoint = "chat") -> None:
        """What `endpoint` does once its queue is empty (until the next reset)."""
        with self._lock:
            self._defaults[endpoint] = behaviour

    def pending(self, endpoint: Endpoint = "chat") -> int:
        """How many queued behaviours no request has consumed yet."""
        with self._lock:
            return len(self._queues[endpoint])

    def reset(self) -> None:
        """Forget the script, the defaults and the recorded requests."""
        with self._lock:
            for queue in self._queues.values():
                queue.clear()
            self._defaults = {"chat": Reply(), "embeddings": Reply()}
            self._requests.clear()
            self._received = 0

    def requests(self, path: str | None = None) -> list[RecordedRequest]:
        """The requests received since the last reset, oldest first, to `path` if given."""
        with self._lock:
            return [r for r in self._requests if path is None or r.path == path]

    def call_count(self, path: str = "/v1/chat/completions") -> int:
        """How many requests reached `path`: what retry and no-double-call tests count."""
        return len(self.requests(path))

    def last_request(self, path: str = "/v1/chat/completions") -> RecordedRequest:
        """The latest request to `path`; fails loudly when there was none."""
        received = self.requests(path)
        assert received, f"the fake received no request to {path}"
        return received[-1]

    # --- lifecycle ---------------------------------------------------------------------

    def start(self) -> FakeOpenAI:
        """Listen on an ephemeral port and serve from a background thread; returns self."""
        # Binding here, not in uvicorn, gives the port before the thread runs.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        self.port = sock.getsockname()[1]
        return self._serve_in_thread(sock)

    def _serve_in_thread(self, sock: socket.socket) -> FakeOpenAI:
        # log_level=None leaves the process's uvicorn log levels alone; access_log=False does
        # silence the `uvicorn.access` logger process-wide (a line per request is only noise).
        config = uvicorn.Config(
            self,
            interface="asgi3",
            lifespan="off",
            ws="none",
            log_config=None,
            log_level=None,
            access_log=False,
            proxy_headers=False,
            timeout_graceful_shutdown=1,
            backlog=4096,
        )
        self._server = uvicorn.Server(config)
        logging.getLogger("uvicorn.error").addFilter(self._log_filter)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="fake-openai", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the fake OpenAI server did not start")
            time.sleep(0.001)
        return self

    def stop(self) -> None:
        """Stop serving; requests still hanging are cut off."""
        if self._server is None or self._thread is None:
            return
        self._server.should_exit = self._server.force_exit = True
        self._thread.join(timeout=10)
        logging.getLogger("uvicorn.error").removeFilter(self._log_filter)
        self._server = self._thread = None

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # --- the ASGI app, on the server thread --------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = await _read_body(receive)
        method, path = scope["method"], scope["path"]
        endpoint = ENDPOINTS.get(path)
        behaviour, number = self._record(method, path, scope, body, endpoint)
        payload = body if isinstance(body, dict) else {}
        reply_id = f"fake-{number}"
        if method == "GET" and path == "/v1/models":
            data = [
                {"id": m, "object": "model", "created": CREATED, "owned_by": "fake"} for m in MODELS
            ]
            await _send_json(send, 200, {"object": "list", "data": data})
        elif endpoint is None or method != "POST" or behaviour is None:
            error = _error_body(404, f"the fake has no route {method} {path}")
            await _send_json(send, 404, error)
        elif endpoint == "embeddings":
            await _embeddings(behaviour, payload, receive, send)
        elif payload.get("stream") is True:
            await _chat_stream(behaviour, payload, reply_id, receive, send)
        else:
            await _chat_completion(behaviour, payload, reply_id, receive, send)

    def _record(
        self, method: str, path: str, scope: Scope, body: Any, endpoint: Endpoint | None
    ) -> tuple[Behaviour | None, int]:
        """Record the request and take its behaviour in one step, so call N gets script N."""
        headers = {
            name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]
        }
        request = RecordedRequest(method, path, headers, body, time.monotonic())
        with self._lock:
            self._requests.append(request)
            self._received += 1
            if endpoint is None or method != "POST":
                return None, self._received
            queue = self._queues[endpoint]
            behaviour = queue.popleft() if queue else self._defaults[endpoint]
            return behaviour, self._received


# --- endpoints ---------------------------------------------------------------------------


async def _chat_completion(
    behaviour: Behaviour, payload: dict[str, Any], reply_id: str, receive: Receive, send: Send
) -> None:
    if await _play_non_reply(behaviour, receive, send):
        return
    if isinstance(behaviour, Stream):
        behaviour = Reply("".join(behaviour.chunks), behaviour.usage, behaviour.delay)
    assert isinstance(behaviour, Reply)
    if await _client_left(receive, behaviour.delay):
        return
    content = _content(behaviour, payload)
    usage = behaviour.usage or _count_usage(payload, content)
    completion = {
        "id": f"chatcmpl-{reply_id}",
        "object": "chat.completion",
        "created": CREATED,
        "model": payload.get("model", MODELS[0]),
        "system_fingerprint": None,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": None},
                "logprobs": None,
                "finish_reason": behaviour.finish_reason,
            }
        ],
        "usage": usage.as_json(),
    }
    await _send_json(send, 200, completion)


async def _chat_stream(
    behaviour: Behaviour, payload: dict[str, Any], reply_id: str, receive: Receive, send: Send
) -> None:
    if isinstance(behaviour, Malformed):
        await _start_sse(send)
        await _send_event(send, behaviour.body)
        await _send_event(send, "[DONE]", more=False)
        return
    if await _play_non_reply(behaviour, receive, send):
        return
    if isinstance(behaviour, Reply):
        pieces = re.findall(r"\s*\S+|\s+", _content(behaviour, payload))
        behaviour = Stream(
            pieces,
            usage=behaviour.usage,
            delay=behaviour.delay,
            finish_reason=behaviour.finish_reason,
        )
    assert isinstance(behaviour, Stream)
    if await _client_left(receive, behaviour.delay):
        return

    text = "".join(behaviour.chunks)
    include_usage = bool((payload.get("stream_options") or {}).get("include_usage"))
    base = {
        "id": f"chatcmpl-{reply_id}",
        "object": "chat.completion.chunk",
        "created": CREATED,
        "model": payload.get("model", MODELS[0]),
        "system_fingerprint": None,
    }
    if include_usage:
        base["usage"] = None  # as OpenAI does: null on every chunk but the last

    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> str:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        return json.dumps({**base, "choices": [choice]})

    await _start_sse(send)
    await _send_event(send, chunk({"role": "assistant", "content": "", "refusal": None}))
    for number, piece in enumerate(behaviour.chunks):
        if behaviour.break_after is not None and number >= behaviour.break_after:
            raise _DropConnection
        if number and await _client_left(receive, behaviour.chunk_delay):
            return
        await _send_event(send, chunk({"content": piece}))
    if behaviour.break_after is not None and behaviour.break_after >= len(behaviour.chunks):
        raise _DropConnection
    await _send_event(send, chunk({}, behaviour.finish_reason))
    if include_usage:
        usage = behaviour.usage or _count_usage(payload, text)
        await _send_event(send, json.dumps({**base, "choices": [], "usage": usage.as_json()}))
    await _send_event(send, "[DONE]", more=False)


async def _embeddings(
    behaviour: Behaviour, payload: dict[str, Any], receive: Receive, send: Send
) -> None:
    """Deterministic unit vectors: equal texts get equal vectors, whatever the test order."""
    if await _play_non_reply(behaviour, receive, send):
        return
    delay = behaviour.delay if isinstance(behaviour, Reply | Stream) else 0.0
    if await _client_left(receive, delay):
        return
    inputs = payload.get("input", "")
    single = isinstance(inputs, str) or (isinstance(inputs, list) and _all_ints(inputs))
    texts = [inputs] if single else list(inputs)
    dimensions = int(payload.get("dimensions") or DEFAULT_EMBEDDING_DIMENSIONS)
    as_base64 = payload.get("encoding_format") == "base64"
    data = []
    for index, item in enumerate(texts):
        vector = _vector(json.dumps(item), dimensions)
        embedding: Any = (
            base64.b64encode(vector.tobytes()).decode() if as_base64 else vector.tolist()
        )
        data.append({"object": "embedding", "index": index, "embedding": embedding})
    tokens = sum(len(str(item).split()) or 1 for item in texts)
    await _send_json(
        send,
        200,
        {
            "object": "list",
            "data": data,
            "model": payload.get("model", "text-embedding-3-small"),
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        },
    )


async def _play_non_reply(behaviour: Behaviour, receive: Receive, send: Send) -> bool:
    """Play the behaviours every endpoint treats alike; True when the request is answered."""
    if isinstance(behaviour, Fail):
        if await _client_left(receive, behaviour.delay):
            return True
        headers = dict(behaviour.headers)
        if behaviour.retry_after is not None:
            headers["retry-after"] = str(behaviour.retry_after)
        await _send_json(
            send, behaviour.status, _error_body(behaviour.status, behaviour.message), headers
        )
        return True
    if isinstance(behaviour, Hang):
        if not await _client_left(receive, behaviour.seconds):
            await _send_json(send, 504, _error_body(504, "the fake hung up"))
        return True
    if isinstance(behaviour, Malformed):
        await _send_raw(send, 200, behaviour.body.encode(), "application/json")
        return True
    return False


# --- helpers -----------------------------------------------------------------------------


async def _read_body(receive: Receive) -> Any:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    raw = b"".join(chunks)
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None


async def _client_left(receive: Receive, seconds: float) -> bool:
    """Wait `seconds`; True as soon as the client disconnects (say, on its timeout).

    Once the body is read, uvicorn's `receive` only returns on a disconnect, so a delayed or
    hanging request ends with its client instead of holding a task until the server stops.
    """
    if seconds <= 0:
        return False
    try:
        async with asyncio.timeout(seconds):
            while (await receive())["type"] != "http.disconnect":
                pass
    except TimeoutError:
        return False
    return True


async def _send_raw(
    send: Send,
    status: int,
    body: bytes,
    content_type: str,
    headers: Mapping[str, str] | None = None,
) -> None:
    raw_headers = [(b"content-type", content_type.encode()), (b"content-length", b"%d" % len(body))]
    raw_headers += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": body})


async def _send_json(
    send: Send, status: int, body: Any, headers: Mapping[str, str] | None = None
) -> None:
    await _send_raw(send, status, json.dumps(body).encode(), "application/json", headers)


async def _start_sse(send: Send) -> None:
    headers = [
        (b"content-type", b"text/event-stream; charset=utf-8"),
        (b"cache-control", b"no-cache"),
    ]
    await send({"type": "http.response.start", "status": 200, "headers": headers})


async def _send_event(send: Send, data: str, *, more: bool = True) -> None:
    await send(
        {"type": "http.response.body", "body": f"data: {data}\n\n".encode(), "more_body": more}
    )


def _error_body(status: int, message: str) -> dict[str, Any]:
    kind, code = ERROR_KINDS.get(status, ("server_error", "error"))
    text = message or f"fake upstream error {status}"
    return {"error": {"message": text, "type": kind, "param": None, "code": code}}


def _content(reply: Reply, payload: dict[str, Any]) -> str:
    if reply.content is None:
        return f"echo: {_last_user_text(payload)}"
    if isinstance(reply.content, str):
        return reply.content
    return json.dumps(reply.content)


def _last_user_text(payload: dict[str, Any]) -> str:
    for message in reversed(payload.get("messages") or []):
        if isinstance(message, dict) and message.get("role") == "user":
            return _text(message.get("content"))
    return ""


def _text(content: Any) -> str:
    """A message's text, whether its content is a string or a list of parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def _count_usage(payload: dict[str, Any], completion: str) -> Usage:
    messages = [m for m in payload.get("messages") or [] if isinstance(m, dict)]
    prompt = sum(len(_text(m.get("content")).split()) for m in messages)
    return Usage(prompt_tokens=prompt, completion_tokens=len(completion.split()))


def _all_ints(items: list[Any]) -> bool:
    """A list of token ids is one input, not many."""
    return bool(items) and all(isinstance(item, int) for item in items)


def _vector(text: str, dimensions: int) -> array[float]:
    """A unit float32 vector drawn from the text's hash."""
    raw = hashlib.shake_256(text.encode()).digest(2 * dimensions)
    values = [n / 32767.5 - 1.0 for n in array("H", raw)]  # each in [-1, 1]
    norm = sum(v * v for v in values) ** 0.5 or 1.0
    return array("f", [v / norm for v in values])
