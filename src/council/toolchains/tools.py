"""Locate council's own command-line tools (uv, ruff, bandit): beside our interpreter, else PATH."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from council.errors import ToolchainError

_INSTALL_HINTS = {
    "uv": "Install it with `pip install uv` (or see https://docs.astral.sh/uv/).",
    "ruff": "Reinstall council (`scripts/setup`): ruff is one of its dependencies.",
    "bandit": "Reinstall council (`scripts/setup`): bandit is one of its dependencies.",
}


def find_tool(name: str) -> str | None:
    """The tool installed next to the running interpreter (council's venv), else on PATH."""
    # Not resolved: in a venv sys.executable is a symlink and the scripts sit beside the link.
    scripts = Path(sys.executable).parent
    for candidate in (scripts / name, scripts / f"{name}.exe"):
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return shutil.which(name)


def require_tool(name: str, purpose: str) -> str:
    path = find_tool(name)
    if path is None:
        raise ToolchainError(
            f"`{name}` is needed to {purpose} but was not found next to {sys.executable} "
            "or on PATH.",
            hint=_INSTALL_HINTS.get(name),
        )
    return path
