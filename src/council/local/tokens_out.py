"""Where the embedded model reports each token it generates, for the caller's progress line.

The gateway's call in flight sets `token_sink` (a context variable, so parallel personas each
count their own call) and the engine calls it once per generated token. LiteLLM's streaming
cannot carry this for the embedded model: its answers are built whole, because an answer that
runs out of tokens under a JSON schema is replaced by a re-ask under a capped schema, and
streamed text cannot be taken back.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar

TokenSink = Callable[[int], None]

token_sink: ContextVar[TokenSink | None] = ContextVar("council_local_token_sink", default=None)
