"""An MCP client on the official `mcp` SDK: a server over stdio (a command council starts) or
streamable HTTP (a URL), tool discovery, and tool calls with timeouts, from synchronous code.

The SDK is async and its transports are anyio task groups, which must be entered and left by
the same task: one task on a private event loop thread owns the connection and serves the
calls handed to it, so a strategy can call tools one after another over one session.
"""

from __future__ import annotations

import asyncio
import os
import threading
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

CONNECT_TIMEOUT_S = 30.0
CALL_TIMEOUT_S = 60.0


class McpError(Exception):
    """The server could not be reached, a tool is unknown, a call failed or timed out."""


@dataclass(frozen=True)
class McpServer:
    """How to reach one server: `command` (stdio) or `url` (streamable HTTP)."""

    command: list[str] = field(default_factory=list)
    url: str = ""
    env: dict[str, str] = field(default_factory=dict)
    read_only_args: list[str] = field(default_factory=list)  # appended when nothing is written
    timeout_s: float = CALL_TIMEOUT_S

    def describe(self) -> str:
        return self.url or " ".join(self.command)

    @classmethod
    def from_env(cls) -> McpServer | None:
        """$COUNCIL_MCP_URL, or $COUNCIL_MCP_COMMAND (split like a shell line, never run by
        one); None when neither is set."""
        import shlex

        url = os.environ.get("COUNCIL_MCP_URL", "").strip()
        command = os.environ.get("COUNCIL_MCP_COMMAND", "").strip()
        read_only = shlex.split(os.environ.get("COUNCIL_MCP_READ_ONLY_ARGS", "--read-only"))
        if url:
            return cls(url=url)
        if command:
            return cls(command=shlex.split(command), read_only_args=read_only)
        return None


@dataclass(frozen=True)
class ToolInfo:
    name: str
    description: str
    properties: dict[str, Any]
    required: list[str]


class McpClient:
    """One session with one server; use as a context manager or call close()."""

    def __init__(self, server: McpServer, *, read_only: bool = False) -> None:
        self.server = server
        self.read_only = read_only
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._requests: asyncio.Queue[Any] | None = None
        self._task: Future[None] | None = None
        self._ready: Future[None] = Future()
        self._tools: list[ToolInfo] | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    def __enter__(self) -> McpClient:
        self.connect()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def connect(self) -> None:
        if self._task is not None:
            return
        self._thread.start()
        self._task = asyncio.run_coroutine_threadsafe(self._serve(), self._loop)
        try:
            self._ready.result(timeout=CONNECT_TIMEOUT_S)
        except FutureTimeout as exc:
            self.close()
            raise McpError(
                f"the MCP server {self.server.describe()} did not answer in time"
            ) from exc
        except Exception as exc:
            self.close()
            raise McpError(
                f"the MCP server {self.server.describe()} cannot be reached: {_why(exc)}"
            ) from exc

    def close(self) -> None:
        if self._task is not None and self._requests is not None and not self._task.done():
            self._loop.call_soon_threadsafe(self._requests.put_nowait, None)
            try:
                self._task.result(timeout=10)
            except Exception:  # noqa: BLE001 - closing: the session's errors no longer matter
                self._task.cancel()
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)
        self._task = None

    # -- calls -------------------------------------------------------------------------------
    def tools(self) -> list[ToolInfo]:
        if self._tools is None:
            listed = self._submit("list_tools", None, self.server.timeout_s)
            self._tools = [
                ToolInfo(
                    t.name,
                    t.description or "",
                    dict((t.inputSchema or {}).get("properties") or {}),
                    list((t.inputSchema or {}).get("required") or []),
                )
                for t in listed.tools
            ]
        return self._tools

    def call(self, tool: str, arguments: dict[str, Any], timeout_s: float | None = None) -> Any:
        """Call `tool`; its structured content, else its text (JSON-decoded when it is JSON)."""
        if tool not in {t.name for t in self.tools()}:
            raise McpError(f"the MCP server has no tool {tool!r}")
        timeout = timeout_s or self.server.timeout_s
        result = self._submit("call_tool", (tool, arguments, timeout), timeout + 5)
        text = "\n".join(c.text for c in result.content if getattr(c, "type", "") == "text")
        if result.isError:
            raise McpError(f"tool {tool} failed: {text or 'no message'}")
        if result.structuredContent is not None:
            return result.structuredContent
        import json

        try:
            return json.loads(text)
        except ValueError:
            return text

    def _submit(self, what: str, args: Any, timeout_s: float) -> Any:
        if self._task is None or self._requests is None:
            raise McpError("the MCP client is not connected")
        answer: Future[Any] = Future()
        self._loop.call_soon_threadsafe(self._requests.put_nowait, (what, args, answer))
        try:
            return answer.result(timeout=timeout_s)
        except FutureTimeout as exc:
            raise McpError(f"MCP {what} timed out after {timeout_s:.0f}s") from exc

    # -- the task that owns the session ------------------------------------------------------
    async def _serve(self) -> None:
        from mcp import ClientSession

        self._requests = asyncio.Queue()
        try:
            async with (
                self._transport() as streams,
                ClientSession(
                    streams[0],
                    streams[1],
                    read_timeout_seconds=timedelta(seconds=self.server.timeout_s),
                ) as session,
            ):
                await session.initialize()
                self._ready.set_result(None)
                while (request := await self._requests.get()) is not None:
                    what, args, answer = request
                    try:
                        if what == "list_tools":
                            answer.set_result(await session.list_tools())
                        else:
                            tool, arguments, timeout = args
                            answer.set_result(
                                await session.call_tool(
                                    tool, arguments, read_timeout_seconds=timedelta(seconds=timeout)
                                )
                            )
                    except Exception as exc:  # noqa: BLE001 - handed to the caller
                        why = _why(exc)
                        if "timed out" in why.lower():
                            limit = args[2] if args else self.server.timeout_s
                            why = f"timed out after {limit:g}s"
                        answer.set_exception(McpError(f"MCP {what} failed: {why}"))
        except BaseException as exc:
            if not self._ready.done():
                self._ready.set_exception(exc if isinstance(exc, Exception) else McpError(str(exc)))
            if not isinstance(exc, Exception):
                raise

    def _transport(self):
        if self.server.url:
            from mcp.client.streamable_http import streamable_http_client

            # Calls are bounded by the session's read timeouts (per call, below).
            return _first_two(streamable_http_client(self.server.url))
        from mcp import StdioServerParameters
        from mcp.client.stdio import stdio_client

        if not self.server.command:
            raise McpError("an MCP server needs a command or a URL")
        argv = list(self.server.command)
        if self.read_only:
            argv += self.server.read_only_args
        params = StdioServerParameters(
            command=argv[0], args=argv[1:], env={**os.environ, **self.server.env}
        )
        return stdio_client(params)


class _first_two:
    """streamable_http_client yields (read, write, get_session_id); stdio yields (read, write)."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    async def __aenter__(self) -> tuple[Any, Any]:
        streams = await self._inner.__aenter__()
        return streams[0], streams[1]

    async def __aexit__(self, *exc: Any) -> Any:
        return await self._inner.__aexit__(*exc)


def _why(exc: BaseException) -> str:
    # anyio wraps failures of a task group in ExceptionGroups: name the first real one.
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return str(exc) or type(exc).__name__
