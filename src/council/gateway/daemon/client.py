"""The gateway's LiteLLM work done by a warm gateway process, with this process as fallback.

`backend_for` picks the backend of one Gateway: the gateway process when it is wanted and can
serve these models (the embedded local model stays in this process), else `InProcess`. A
gateway process that is gone, hung, or answers garbage costs one notice line: the call (and
every later one of this process) runs here instead; the run never fails for it.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from council.gateway.daemon import control
from council.gateway.daemon.wire import Endpoint, Unusable, endpoint, exchange, read_info
from council.gateway.litellm_calls import Answer, Backend, Call, InProcess
from council.local.provider import is_local

CONNECT_S = 2.0
SILENCE_S = 15.0  # no byte for this long (the process beats every 2 s): it hangs
READY_S = 60.0  # how long the first run waits for a process that is importing LiteLLM

_dead: dict[str, str] = {}  # socket path -> why it failed, for the rest of this process
_dead_lock = threading.Lock()


class RemoteError(Exception):
    """An exception raised in the gateway process, rebuilt here under its own class name so
    the gateway's one-line cause reads as it does in-process."""


def _rebuild(err: Any) -> Exception:
    if not isinstance(err, dict) or not isinstance(err.get("type"), str):
        raise Unusable("a malformed error")
    name = err["type"]
    if name == "Refused":
        raise Unusable(f"refused: {err.get('message')}")
    if name in ("ConfigError", "ModelError"):
        from council import errors

        return getattr(errors, name)(str(err.get("message", "")), hint=err.get("hint"))
    cls = type(name, (RemoteError,), {})
    return cls(str(err.get("message", "")))


def _resolved(model_list: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """os.environ/NAME values read here: the gateway process has only the variables its key
    covers."""
    out = []
    for deployment in model_list:
        params = dict(deployment.get("litellm_params") or {})
        for name, value in params.items():
            if isinstance(value, str) and value.startswith("os.environ/"):
                found = os.environ.get(value.removeprefix("os.environ/"))
                if found is not None:
                    params[name] = found
        out.append({**deployment, "litellm_params": params})
    return out


class Remote:
    """A Backend that asks the gateway process of `ep`; `local` when that is not possible."""

    def __init__(self, ep: Endpoint, local: InProcess, notice: Callable[[str], None]) -> None:
        self._ep = ep
        self._local = local
        self._notice = notice
        self._info: dict[str, Any] | None = None

    @property
    def live(self) -> bool:
        return str(self._ep.socket) not in _dead

    def complete(self, call: Call, on_token: Callable[[], None]) -> Answer:
        request = {"op": "complete", **asdict(call), "model_list": _resolved(call.model_list)}
        try:
            return Answer(**self._ask(request, on_token))
        except Unusable as exc:
            self._fall_back(exc)
        except TypeError as exc:  # an answer of the wrong shape
            self._fall_back(Unusable(f"a malformed answer ({exc})"))
        return self._local.complete(call, on_token)

    def count_tokens(self, model: str, messages: list[dict]) -> int:
        try:
            return int(self._ask({"op": "count_tokens", "model": model, "messages": messages}))
        except Unusable as exc:
            self._fall_back(exc)
        except (TypeError, ValueError) as exc:
            self._fall_back(Unusable(f"a malformed answer ({exc})"))
        return self._local.count_tokens(model, messages)

    def model_info(self, model: str) -> dict[str, Any]:
        try:
            info = self._ask({"op": "model_info", "model": model})
            if isinstance(info, dict):
                return info
            raise Unusable("a malformed answer")
        except Unusable as exc:
            self._fall_back(exc)
        return self._local.model_info(model)

    # -- the wire ----------------------------------------------------------------------------
    def _ask(self, request: dict[str, Any], on_token: Callable[[], None] | None = None) -> Any:
        """The result of `request`; the model's or LiteLLM's own exception re-raised here;
        Unusable when the process is not."""
        if not self.live:
            raise Unusable(_dead[str(self._ep.socket)])
        for attempt in (1, 2):
            info = self._ready_info()
            try:
                return self._exchange(info, request, on_token)
            except Unusable:
                # A new process may have replaced the one whose token we hold: read it again.
                self._info = None
                if attempt == 2 or read_info(self._ep) in (None, info):
                    raise
        raise AssertionError("unreachable")

    def _ready_info(self) -> dict[str, Any]:
        if self._info is None:
            self._info = control.wait_ready(self._ep, READY_S)
            if self._info is None:
                raise Unusable("it is not running")
        return self._info

    def _exchange(
        self,
        info: dict[str, Any],
        request: dict[str, Any],
        on_token: Callable[[], None] | None,
    ) -> Any:
        def tokens(n: int) -> None:
            for _ in range(n):
                on_token()  # type: ignore[misc]

        kind, value = exchange(
            self._ep,
            str(info.get("token")),
            request,
            tokens if on_token is not None else None,
            connect_s=CONNECT_S,
            silence_s=SILENCE_S,
        )
        if kind == "err":
            raise _rebuild(value)
        return value

    def _fall_back(self, exc: Exception) -> None:
        with _dead_lock:
            first = str(self._ep.socket) not in _dead
            _dead.setdefault(str(self._ep.socket), str(exc))
        if first:
            self._notice(
                f"the gateway process is not usable ({exc}): LiteLLM runs in this process "
                "for the rest of this run"
            )


def wanted(model_list: list[dict[str, Any]], configured: bool = True) -> bool:
    """Whether these models go through a gateway process: switched on, and no embedded model
    among them (it stays in this process: its provider reports tokens to the live line here)."""
    if not control.enabled(configured):
        return False
    return not any(
        is_local(str((d.get("litellm_params") or {}).get("model", ""))) for d in model_list
    )


def warm_start(
    model_list: list[dict[str, Any]], configured: bool = True, idle_s: Any = None
) -> None:
    """At a command's start: start the gateway process if it is wanted and not running (the
    first model call waits for it), else import LiteLLM here in the background."""
    if wanted(model_list, configured):
        ep = endpoint()
        if ep.usable():
            try:
                control.start(ep, control.idle_timeout_s(idle_s))
                return
            except OSError:
                pass
    from council.gateway.router import preload_litellm

    preload_litellm()


def backend_for(
    model_list: list[dict[str, Any]],
    notice: Callable[[str], None],
    *,
    configured: bool = True,
    idle_s: Any = None,
) -> Backend:
    local = InProcess()
    if not wanted(model_list, configured):
        return local
    ep = endpoint()
    if not ep.usable():
        return local
    try:
        control.start(ep, control.idle_timeout_s(idle_s))
    except OSError as exc:
        notice(f"the gateway process cannot start ({exc}): LiteLLM runs in this process")
        return local
    return Remote(ep, local, notice)
