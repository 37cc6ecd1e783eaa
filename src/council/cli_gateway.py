"""`council gateway ...`: the warm gateway process that keeps LiteLLM loaded between runs."""

from __future__ import annotations

import json
import time
from typing import Annotated, Any

import typer

gateway_app = typer.Typer(
    name="gateway",
    help="The warm gateway process: LiteLLM loaded once and shared by runs (status, stop).",
    no_args_is_help=True,
    add_completion=False,
)


def _describe(status: dict[str, Any]) -> str:
    up = time.time() - float(status.get("started") or time.time())
    return (
        f"pid {status.get('pid')}, up {up / 60:.0f} min, idle {status.get('idle_s', 0):.0f} s "
        f"of {status.get('idle_timeout_s', 0):.0f} s, {status.get('requests', 0)} requests, "
        f"{status.get('routers', 0)} model configurations, litellm {status.get('litellm')}"
    )


def _statuses() -> tuple[Any, list[dict[str, Any]]]:
    from council.gateway.daemon import control
    from council.gateway.daemon.wire import Unusable, endpoint, exchange, read_info

    mine = endpoint()
    found = []
    for ep in control.endpoints(mine.folder):
        entry: dict[str, Any] = {"key": ep.key, "this_environment": ep.key == mine.key}
        info = read_info(ep) if control.running(ep) else None
        if info is None:
            entry["state"] = "starting" if control.running(ep) else "gone"
        else:
            try:
                kind, value = exchange(ep, info["token"], {"op": "status"}, silence_s=5.0)
                entry.update(state="running" if kind == "ok" else "not answering")
                if kind == "ok" and isinstance(value, dict):
                    entry["status"] = value
            except Unusable as exc:
                entry.update(state="not answering", why=str(exc))
        if entry["state"] == "gone":
            control.clean(ep)  # a dead process's files
            continue
        found.append(entry)
    return mine, found


@gateway_app.command("status")
def status(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Whether a gateway process runs for this environment (and which others run)."""
    from council.gateway.daemon import control

    mine, found = _statuses()
    on = control.enabled()
    if as_json:
        print(json.dumps({"enabled": on, "folder": str(mine.folder), "processes": found}))
        return
    print(f"gateway process: {'on' if on else 'off'} (COUNCIL_GATEWAY, gateway.warm_process)")
    if not found:
        print("no gateway process is running; the next run starts one" if on else "none runs")
        return
    for entry in found:
        whose = "this environment" if entry["this_environment"] else "another environment"
        detail = _describe(entry["status"]) if "status" in entry else entry.get("why", "")
        print(f"{entry['state']} ({whose}): {detail}".rstrip(": "))


@gateway_app.command("stop")
def stop() -> None:
    """Stop every gateway process of this user (the next run starts a fresh one)."""
    from council.gateway.daemon import control
    from council.gateway.daemon.wire import endpoint

    stopped = sum(control.stop(ep) for ep in control.endpoints(endpoint().folder))
    print(f"stopped {stopped} gateway process{'es' if stopped != 1 else ''}")
