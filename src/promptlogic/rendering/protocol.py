"""The frames between the web process and its render workers: a 4-byte length, then a body.

Requests are pickled (the web process is the trusted side); replies are JSON, so even a worker
whose sandbox had been escaped could send the web process nothing but data.
"""

from __future__ import annotations

import json
import pickle
import struct
from typing import Any

HEADER = struct.Struct(">I")


def request_frame(message: dict[str, Any]) -> bytes:
    body = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return HEADER.pack(len(body)) + body


def read_request(body: bytes) -> dict[str, Any]:
    return pickle.loads(body)  # noqa: S301 - written by the web process that started us


def reply_frame(message: dict[str, Any]) -> bytes:
    text = json.dumps(message, ensure_ascii=False, separators=(",", ":"))
    body = text.encode("utf-8", "surrogatepass")
    return HEADER.pack(len(body)) + body


def read_reply(body: bytes) -> dict[str, Any]:
    reply = json.loads(body.decode("utf-8", "surrogatepass"))
    if not isinstance(reply, dict):
        raise ValueError("a worker reply must be a JSON object")
    return reply
