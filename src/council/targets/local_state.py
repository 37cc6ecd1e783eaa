"""The local target's state on disk (`<state_dir>/state.json`): which releases are live (their
keeper, service pid, port, log) and which one was last healthy, so that a later command
(`council deploy status | logs | rollback`) finds the services an earlier one started.

A release's environment is never written here: it may hold secrets, and it is given again by
deploy.yaml when a release is started again.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from council.targets.base import Instance, Release
from council.targets.keeper import Kept

STATE_FILE = "state.json"


@dataclass(frozen=True)
class LocalState:
    live: list[tuple[Instance, Kept]]
    last_healthy: Release | None


def _release(data: dict[str, Any]) -> Release:
    return Release(
        id=str(data["id"]),
        commit=str(data["commit"]),
        tree=str(data["tree"]),
        source=Path(data["source"]),
        app=str(data["app"]),
        health_path=str(data.get("health_path", "/health")),
    )


def _release_data(release: Release) -> dict[str, Any]:
    return {
        "id": release.id,
        "commit": release.commit,
        "tree": release.tree,
        "source": str(release.source),
        "app": release.app,
        "health_path": release.health_path,
    }


def save_state(
    state_dir: Path, live: list[tuple[Instance, Kept]], last_healthy: Release | None
) -> None:
    data = {
        "live": [
            {
                "release": _release_data(i.release),
                "pid": i.pid,
                "port": i.port,
                "url": i.url,
                "log": str(i.log),
                "started_at": i.started_at,
                "keeper_pid": kept.keeper_pid,
                "keeper_created": kept.keeper_created,
                "status": str(kept.status),
            }
            for i, kept in live
        ],
        "last_healthy": _release_data(last_healthy) if last_healthy else None,
    }
    state_dir.mkdir(parents=True, exist_ok=True)
    tmp = state_dir / f".{STATE_FILE}.{os.getpid()}"
    tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")
    tmp.replace(state_dir / STATE_FILE)


def load_state(state_dir: Path) -> LocalState:
    """What an earlier command left; nothing (not an error) when there is no readable state."""
    try:
        data = json.loads((state_dir / STATE_FILE).read_text(encoding="utf-8"))
        live = []
        for entry in data.get("live") or []:
            instance = Instance(
                release=_release(entry["release"]),
                pid=int(entry["pid"]),
                port=int(entry["port"]),
                url=str(entry["url"]),
                log=Path(entry["log"]),
                started_at=float(entry["started_at"]),
            )
            kept = Kept(int(entry["keeper_pid"]), float(entry["keeper_created"]),
                        Path(entry["status"]))  # fmt: skip
            live.append((instance, kept))
        last = data.get("last_healthy")
        return LocalState(live, _release(last) if last else None)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return LocalState([], None)
