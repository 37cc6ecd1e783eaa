"""Where council keeps what outlives one run: environments, model answers, model files."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """Where environments, answers and local models are cached across runs and repositories."""
    base = os.environ.get("COUNCIL_CACHE_DIR")
    if base:
        return Path(base)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "council"


def gateway_dir() -> Path:
    """Where warm gateway processes keep their sockets and per-process tokens. The sandbox
    hides this folder from the code it runs (sandbox/runner.py): a socket there is a door to
    the user's model keys.

    Not under COUNCIL_CACHE_DIR: scripts and benches that give each run a temporary cache
    would each start (and leave idling) a gateway process of their own for the same key."""
    base = os.environ.get("COUNCIL_GATEWAY_DIR")
    if base:
        return Path(base)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "council" / "gateway"
