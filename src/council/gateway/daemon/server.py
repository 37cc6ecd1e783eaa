"""The warm gateway process: LiteLLM imported once, Routers kept per configuration.

`python -m council.gateway.daemon.server FOLDER KEY IDLE_S`, started in the background by a
`council` process (gateway/daemon/control.py). It serves the LiteLLM work of the gateways of
many `council` processes over a Unix socket (NDJSON, one request per connection), and exits
after IDLE_S seconds without a request, on `council gateway stop`, or on SIGTERM.

Who may ask: a process of the same user in the same mount and network namespaces (the sandbox
gives the code it runs its own), which read the random token from the info file (0600, in a
0700 folder the sandbox hides). Nothing of a request is logged.
"""

from __future__ import annotations

import fcntl
import hmac
import json
import os
import queue
import secrets
import select
import signal
import socket
import socketserver
import struct
import sys
import threading
import time
from pathlib import Path
from typing import Any

from council.gateway.daemon.wire import PROTOCOL, Endpoint, Lines, send
from council.gateway.litellm_calls import Call, InProcess

HEARTBEAT_S = 2.0  # a call in flight says it is alive this often (the client's hang timeout)
REQUEST_READ_S = 10.0


def _namespace(pid: int | str, kind: str) -> int:
    return os.stat(f"/proc/{pid}/ns/{kind}").st_ino


def peer_allowed(sock: socket.socket) -> bool:
    """Same user, same mount and network namespaces as this process: a command in the sandbox
    (bubblewrap or unshare give it fresh namespaces) is refused even if it found the socket."""
    try:
        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        pid, uid, _gid = struct.unpack("3i", creds)
        if uid != os.getuid() or pid <= 0:
            return False
        return all(_namespace(pid, kind) == _namespace("self", kind) for kind in ("mnt", "net"))
    except OSError:
        return False


def _error(exc: BaseException) -> dict[str, Any]:
    return {
        "type": type(exc).__name__,
        # A council error's str() adds its hint, which travels on its own.
        "message": str(getattr(exc, "message", None) or exc)[:4000],
        "hint": getattr(exc, "hint", None),
    }


class Daemon:
    def __init__(self, ep: Endpoint, idle_s: float) -> None:

        self.ep = ep
        self.idle_s = idle_s
        self.token = secrets.token_hex(32)
        self.backend = InProcess()
        self.started = time.time()
        self.last_request = time.monotonic()
        self.requests = 0
        self.active = 0  # requests being served
        self.calls = 0  # model calls running (a cancelled one stops at its next chunk)
        self.lock = threading.Lock()
        self.stopping = threading.Event()

    # -- one connection --------------------------------------------------------------------
    def handle(self, sock: socket.socket) -> None:
        if not peer_allowed(sock):
            return
        sock.settimeout(REQUEST_READ_S)
        try:
            request = Lines(sock).next()
        except (OSError, ValueError):
            return
        if not request or not hmac.compare_digest(
            str(request.get("token", "")).encode(), self.token.encode()
        ):
            send(sock, {"err": {"type": "Refused", "message": "bad token"}})
            return
        if request.get("v") != PROTOCOL:
            send(sock, {"err": {"type": "Refused", "message": "protocol version"}})
            return
        with self.lock:
            self.active += 1
            self.requests += 1
        try:
            self._dispatch(sock, request)
        finally:
            with self.lock:
                self.active -= 1
                self.last_request = time.monotonic()

    def _dispatch(self, sock: socket.socket, request: dict[str, Any]) -> None:
        op = request.get("op")
        if op == "complete":
            self._complete(sock, request)
            return
        try:
            if op == "ping":
                result: Any = {"pid": os.getpid()}
            elif op == "status":
                result = self.status()
            elif op == "stop":
                result = True
                self.stopping.set()
            elif op == "count_tokens":
                result = self.backend.count_tokens(request["model"], request["messages"])
            elif op == "model_info":
                result = self.backend.model_info(request["model"])
            else:
                raise ValueError(f"unknown op {op!r}")
        except Exception as exc:  # noqa: BLE001 - the client raises it on its side
            send(sock, {"err": _error(exc)})
            return
        send(sock, {"ok": result})

    def _complete(self, sock: socket.socket, request: dict[str, Any]) -> None:
        """The call runs in a worker; this thread relays its tokens, says it is alive, and
        cancels it when the client goes away (Ctrl-C there closes the socket)."""
        events: queue.Queue[tuple[str, Any]] = queue.Queue()
        gone = threading.Event()

        def work() -> None:
            with self.lock:
                self.calls += 1
            try:
                call = Call(**{f: request[f] for f in Call.__dataclass_fields__})
                answer = self.backend.complete(call, lambda: events.put(("tok", 1)), gone.is_set)
                events.put(("ok", answer.__dict__))
            except BaseException as exc:  # noqa: BLE001 - relayed to the client
                events.put(("err", _error(exc)))
            finally:
                with self.lock:
                    self.calls -= 1

        threading.Thread(target=work, name="gateway-call", daemon=True).start()
        sock.settimeout(5.0)
        last_sent = time.monotonic()
        tokens = 0
        while True:
            try:
                kind, value = events.get(timeout=0.2)
            except queue.Empty:
                kind, value = "", None
            try:
                if kind == "tok":
                    tokens += 1
                    while not events.empty() and events.queue[0][0] == "tok":
                        events.get_nowait()
                        tokens += 1
                    send(sock, {"tok": tokens})
                    tokens, last_sent = 0, time.monotonic()
                elif kind in ("ok", "err"):
                    send(sock, {kind: value})
                    return
                elif time.monotonic() - last_sent >= HEARTBEAT_S:
                    send(sock, {"hb": 1})
                    last_sent = time.monotonic()
                if _closed(sock):
                    raise ConnectionResetError("client went away")
            except OSError:
                gone.set()  # the stream loop sees it at the next chunk and closes the stream
                return

    def status(self) -> dict[str, Any]:
        import litellm

        return {
            "pid": os.getpid(),
            "started": self.started,
            "idle_timeout_s": self.idle_s,
            "idle_s": round(time.monotonic() - self.last_request, 1),
            "requests": self.requests,
            "active": self.active,
            "calls": self.calls,
            "routers": self.backend.routers,
            "litellm": getattr(litellm, "__version__", None) or _version("litellm"),
            "python": sys.executable,
        }

    def idle(self) -> bool:
        with self.lock:
            quiet = time.monotonic() - self.last_request > self.idle_s
            return self.active == 0 and self.calls == 0 and quiet


def _version(name: str) -> str:
    from importlib.metadata import version

    return version(name)


def _closed(sock: socket.socket) -> bool:
    """The client closed its end (it sends nothing after its request)."""
    readable, _, _ = select.select([sock], [], [], 0)
    if not readable:
        return False
    try:
        return sock.recv(1, socket.MSG_PEEK) == b""
    except OSError:
        return True


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    daemon: Daemon

    def finish_request(self, request: Any, client_address: Any) -> None:
        self.daemon.handle(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # One line, never a traceback: a frame's text could quote a request (keys, prompts).
        print(f"gateway: a request failed: {sys.exc_info()[0].__name__}", file=sys.stderr)


def _remove(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass


def _take(lock: Any) -> bool:
    """The key's lock, or False when another process holds it. Clients test it with a shared
    lock held for an instant: a few tries tell that from a living holder."""
    for _ in range(50):
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except OSError:
            time.sleep(0.02)
    return False


def serve(ep: Endpoint, idle_s: float) -> int:
    os.umask(0o077)
    ep.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(ep.folder, 0o700)
    lock = open(ep.lock, "a")  # noqa: SIM115 - held for the whole life of the process
    if not _take(lock):
        return 0  # another process of this key is starting or running
    lock.truncate(0)
    lock.write(str(os.getpid()))  # `council gateway stop` finds a process still starting
    lock.flush()
    # Holding the lock, whatever socket or info file is there is a dead process's.
    _remove(ep.info)
    _remove(ep.socket)
    daemon = Daemon(ep, idle_s)
    from council.gateway.router import litellm_module, warm_first_call

    litellm_module()
    warm_first_call()
    server = _Server(str(ep.socket), socketserver.BaseRequestHandler)
    server.daemon = daemon
    os.chmod(ep.socket, 0o600)
    info = {"pid": os.getpid(), "token": daemon.token, "started": daemon.started}
    tmp = ep.info.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(info, fh)
    os.replace(tmp, ep.info)

    def stop(_signum: int, _frame: Any) -> None:
        daemon.stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGHUP, stop)
    thread = threading.Thread(target=server.serve_forever, args=(0.5,), daemon=True)
    thread.start()
    try:
        while not daemon.stopping.wait(1.0):
            # Idle, or its folder was removed (a temporary cache dir): nobody can reach it.
            if daemon.idle() or not ep.socket.exists():
                break
    finally:
        # First the files (no new client finds us), then the listener.
        _remove(ep.info)
        _remove(ep.socket)
        server.shutdown()
        server.server_close()
    return 0


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print("usage: python -m council.gateway.daemon.server FOLDER KEY IDLE_S", file=sys.stderr)
        return 2
    os.chdir("/")
    return serve(Endpoint(Path(argv[0]), argv[1]), float(argv[2]))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
