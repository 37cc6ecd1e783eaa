"""Health probes with backoff: GET the health URL until it answers 2xx, the deadline passes,
or the service exits or is known to serve elsewhere (no point probing for the whole timeout)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable

import httpx

from council.targets.base import HealthReport

FIRST_DELAY_S = 0.1
MAX_DELAY_S = 2.0
PROBE_TIMEOUT_S = 3.0
# How long a "hopeless" sign (the service says it serves on another port) must hold before the
# probe gives up early: a service may start a helper server first and its own right after.
HOPELESS_GRACE_S = 2.0
# A server's start-up line naming its port (uvicorn, gunicorn, hypercorn, werkzeug).
LISTENING = re.compile(r"(?:Uvicorn running|Listening|Serving) on https?://[\w.\[\]:-]+?:(\d+)")


def listening_ports(log: str) -> set[int]:
    """The ports the service's log says it serves on."""
    return {int(p) for p in LISTENING.findall(log)}


def probe(
    url: str,
    *,
    timeout_s: float,
    exited: Callable[[], int | None] = lambda: None,
    log_tail: Callable[[], str] = lambda: "",
    hopeless: Callable[[], str] = lambda: "",
) -> HealthReport:
    """`hopeless()`: why waiting longer cannot help ('' while it can), e.g. a service serving
    on another port; the probe gives up once that has held for HOPELESS_GRACE_S."""
    started = time.monotonic()
    deadline = started + timeout_s
    delay = FIRST_DELAY_S
    attempts = 0
    status: int | None = None
    error = ""
    hopeless_since: float | None = None

    def unhealthy(why: str, code: int | None) -> HealthReport:
        return HealthReport(
            healthy=False,
            url=url,
            attempts=attempts,
            elapsed_s=time.monotonic() - started,
            status_code=status,
            error=why,
            exit_code=code,
            log_tail=log_tail(),
        )

    with httpx.Client(timeout=PROBE_TIMEOUT_S, follow_redirects=False, trust_env=False) as client:
        while True:
            code = exited()
            if code is not None:
                return unhealthy(f"the service exited with code {code} before it was healthy", code)
            attempts += 1
            try:
                response = client.get(url)
                status = response.status_code
                if 200 <= status < 300:
                    return HealthReport(True, url, attempts, time.monotonic() - started, status)
                error = f"HTTP {status}: {response.text[:200]}"
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}"
            now = time.monotonic()
            why = hopeless()
            hopeless_since = (hopeless_since or now) if why else None
            if why and now - hopeless_since >= HOPELESS_GRACE_S:
                return unhealthy(f"not healthy: {why} ({error})", exited())
            if now >= deadline:
                break
            time.sleep(min(delay, deadline - now))
            delay = min(delay * 2, MAX_DELAY_S)
    return unhealthy(f"not healthy after {timeout_s:g}s: {error}", exited())
