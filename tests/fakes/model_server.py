"""A scripted OpenAI-compatible chat server on 127.0.0.1, so tests drive the real gateway.

Tests queue replies per requested model name (`server.script("m", "answer", Reply(status=500))`);
the server answers them in order and records every request body. An empty queue answers
HTTP 500 "script exhausted" so a test that makes more calls than it scripted notices.

A request with `"stream": true` is answered as OpenAI does: server-sent events, one
`chat.completion.chunk` per word (`Reply.chunk_delay_s` apart), the finish reason in the last
content chunk, a usage chunk when `stream_options.include_usage` asks for it, then `[DONE]`.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

DEFAULT = "*"  # queue used when the requested model has no queue of its own


@dataclass
class Reply:
    """One scripted answer: content, or an HTTP error status, optionally after a delay."""

    content: str = ""
    status: int = 200
    delay_s: float = 0.0
    usage: dict[str, int] | None = None
    finish_reason: str = "stop"
    error: str = "scripted failure"
    chunk_delay_s: float = 0.0  # streamed answers: the pause before each chunk


Script = str | Reply | Callable[[dict[str, Any]], "Reply | str"]


@dataclass
class _State:
    queues: dict[str, deque[Script]] = field(default_factory=dict)
    requests: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _rough_tokens(text: str) -> int:
    # Good enough for a fake: real servers count tokens, tests only need plausible non-zero usage.
    return max(1, len(text.split()))


def _prompt_text(body: dict[str, Any]) -> str:
    parts: list[str] = []
    for message in body.get("messages") or []:
        content = message.get("content")
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):
            parts.extend(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return "\n".join(parts)


class ScriptedModelServer:
    """Real HTTP server (background thread) answering /v1/chat/completions from a script."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._state = _State()
        handler = _make_handler(self._state)
        self._httpd = ThreadingHTTPServer((host, port), handler)
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> ScriptedModelServer:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._httpd.server_close()

    def __enter__(self) -> ScriptedModelServer:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    # -- scripting ---------------------------------------------------------------------------
    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def script(self, model: str | None, *replies: Script) -> None:
        """Queue replies for requests naming `model` (None: the default queue)."""
        key = DEFAULT if model is None else model
        with self._state.lock:
            self._state.queues.setdefault(key, deque()).extend(replies)

    def pending(self, model: str | None = None) -> int:
        """How many scripted replies for `model` (None: default queue) are still unused."""
        key = DEFAULT if model is None else model
        with self._state.lock:
            return len(self._state.queues.get(key, ()))

    @property
    def requests(self) -> list[dict[str, Any]]:
        with self._state.lock:
            return list(self._state.requests)

    def requests_for(self, model: str) -> list[dict[str, Any]]:
        return [r for r in self.requests if r.get("model") == model]

    def reset(self) -> None:
        with self._state.lock:
            self._state.queues.clear()
            self._state.requests.clear()


def _next_script(state: _State, model: str) -> Script | None:
    with state.lock:
        for key in (model, DEFAULT):
            queue = state.queues.get(key)
            if queue:
                return queue.popleft()
    return None


def _make_handler(state: _State) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
            pass  # keep test output clean

        def do_POST(self) -> None:  # noqa: N802 - stdlib name
            path = self.path.split("?", 1)[0].rstrip("/")
            if path not in ("/v1/chat/completions", "/chat/completions"):
                self._send(
                    404, {"error": {"message": f"no route {self.path}", "type": "not_found"}}
                )
                return
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw or b"{}")
            except json.JSONDecodeError as exc:
                self._send(400, {"error": {"message": f"bad json: {exc}", "type": "bad_request"}})
                return
            with state.lock:
                state.requests.append(body)
            model = str(body.get("model", ""))
            script = _next_script(state, model)
            if script is None:
                message = f"script exhausted for model {model!r}"
                self._send(500, {"error": {"message": message, "type": "script_exhausted"}})
                return
            reply = script(body) if callable(script) else script
            if isinstance(reply, str):
                reply = Reply(content=reply)
            if reply.delay_s:
                time.sleep(reply.delay_s)
            if reply.status != 200:
                error = {"message": reply.error, "type": "server_error", "code": reply.status}
                self._send(reply.status, {"error": error})
                return
            if body.get("stream"):
                self._stream(body, model, reply)
            else:
                self._send(200, _completion(body, model, reply))

        def _stream(self, body: dict[str, Any], model: str, reply: Reply) -> None:
            try:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Cache-Control", "no-cache")
                self.send_header("Connection", "close")
                self.end_headers()
                for chunk in _chunks(body, model, reply):
                    if reply.chunk_delay_s and chunk.get("choices"):
                        time.sleep(reply.chunk_delay_s)
                    self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                    self.wfile.flush()
                self.wfile.write(b"data: [DONE]\n\n")
                self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up
            self.close_connection = True

        def _send(self, status: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (timeout test); nothing to answer

    return Handler


def _usage(body: dict[str, Any], reply: Reply) -> dict[str, int]:
    usage = dict(
        reply.usage
        or {
            "prompt_tokens": _rough_tokens(_prompt_text(body)),
            "completion_tokens": _rough_tokens(reply.content),
        }
    )
    usage.setdefault("total_tokens", usage["prompt_tokens"] + usage["completion_tokens"])
    return usage


def _pieces(text: str) -> list[str]:
    """The answer in word-sized pieces (whitespace kept), as a streaming server sends tokens."""
    pieces: list[str] = []
    for word in text.split(" "):
        pieces.append(word if not pieces else " " + word)
    return [p for p in pieces if p] or [""]


def _chunks(body: dict[str, Any], model: str, reply: Reply) -> list[dict[str, Any]]:
    head = {
        "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
    }
    pieces = _pieces(reply.content)
    chunks = []
    for i, piece in enumerate(pieces):
        delta: dict[str, Any] = {"content": piece}
        if i == 0:
            delta["role"] = "assistant"
        last = i == len(pieces) - 1
        choice = {
            "index": 0,
            "delta": delta,
            "finish_reason": reply.finish_reason if last else None,
        }
        chunks.append({**head, "choices": [choice]})
    if (body.get("stream_options") or {}).get("include_usage"):
        chunks.append({**head, "choices": [], "usage": _usage(body, reply)})
    return chunks


def _completion(body: dict[str, Any], model: str, reply: Reply) -> dict[str, Any]:
    usage = _usage(body, reply)
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": reply.content},
                "finish_reason": reply.finish_reason,
            }
        ],
        "usage": usage,
    }
