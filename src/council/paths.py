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
