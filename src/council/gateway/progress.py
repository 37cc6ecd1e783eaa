"""Progress of one model call in flight: a heartbeat that reports elapsed time and the answer's
tokens so far as ModelProgress events, so the terminal never sits silent through a long call.

Tokens are counted from the stream of a streamed call, and for the embedded model from the
engine itself (local/tokens_out.py), which reports each token it generates."""

from __future__ import annotations

import itertools
import os
import threading
import time
from typing import Any

from council.events import EventSink, ModelProgress
from council.local.tokens_out import token_sink

# How often a call in flight reports (renderers throttle further); COUNCIL_PROGRESS_EVERY_S
# sets it, e.g. for a fast local model whose calls end within half a second.
HEARTBEAT_S = float(os.environ.get("COUNCIL_PROGRESS_EVERY_S") or 0.5)
_ids = itertools.count(1)


class CallProgress:
    """Use as a context manager around one call; `tokens()` counts streamed answer tokens."""

    def __init__(self, emit: EventSink, persona: str | None, alias: str, model: str) -> None:
        self._emit = emit
        self._fields: dict[str, Any] = {
            "call_id": f"call-{next(_ids)}",
            "persona": persona,
            "alias": alias,
            "model": model,
        }
        self._tokens = 0
        self._first_token_at: float | None = None
        self._started = time.monotonic()
        self._done = threading.Event()
        self._thread: threading.Thread | None = None

    def tokens(self, n: int = 1) -> None:
        if self._first_token_at is None:
            self._first_token_at = time.monotonic()
        self._tokens += n

    def __enter__(self) -> CallProgress:
        self._started = time.monotonic()
        # The embedded model reports its tokens here (its answers are not streamed).
        self._sink = token_sink.set(self.tokens)
        # The heartbeat emits from its own thread; the Emitter serialises events for the sinks,
        # and the step name is taken from the caller's context (contextvars are per thread).
        step = getattr(self._emit, "step", None)
        self._thread = threading.Thread(
            target=self._beat, args=(step,), name="model-progress", daemon=True
        )
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        token_sink.reset(self._sink)
        self._done.set()
        if self._thread is not None:
            self._thread.join(timeout=2)

    def _beat(self, step: str | None) -> None:
        while not self._done.wait(HEARTBEAT_S):
            now = time.monotonic()
            # Speed of generation, from the first token on (prompt processing is not counted).
            generating = now - self._first_token_at if self._first_token_at else 0.0
            # Over a very short window the rate is noise, unless enough tokens came already
            # (a small model can write hundreds before the first beat).
            steady = generating > 0.2 or (generating > 0 and self._tokens >= 20)
            rate = self._tokens / generating if steady else 0.0
            event = ModelProgress(
                **self._fields,
                step=step,
                elapsed_s=round(now - self._started, 2),
                tokens=self._tokens,
                tokens_per_s=round(rate, 1),
            )
            try:
                self._emit(event)
            except Exception:  # noqa: BLE001 - a display problem must never break the call
                return
