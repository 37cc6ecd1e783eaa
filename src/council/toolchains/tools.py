"""Locate council's own command-line tools (uv, ruff, bandit): beside our interpreter, else PATH."""

from __future__ import annotations

import os
import shutil
import subprocess  # nosec B404 - installers run with a fixed argv, outside the sandbox
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from council.errors import ToolchainError
from council.events import CommandRun, EventSink

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


def run_installer(
    tool: str,
    argv: list[str],
    *,
    cwd: Path,
    timeout_s: float,
    emit: EventSink,
    failure: str,
    hint: str,
    drop_env: Iterable[str] = (),
    set_env: dict[str, str] | None = None,
    words: Callable[[str], str],
) -> None:
    """Run a package installer (uv, npm) outside the sandbox: it needs the registry.

    The command is reported as a CommandRun; a failure is a ToolchainError that starts with
    `failure` and ends with the installer's own words (`words` picks them from its output).
    """
    dropped = set(drop_env)
    environ = {k: v for k, v in os.environ.items() if k not in dropped}
    environ.update(set_env or {})
    started = time.monotonic()
    try:
        done = subprocess.run(  # nosec B603 - argv built by the toolchain, no shell
            argv,
            cwd=cwd,
            env=environ,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        emit(CommandRun(argv=argv, cwd=str(cwd), timed_out=True, duration_s=timeout_s))
        raise ToolchainError(f"{failure}: timed out after {timeout_s:.0f}s") from exc
    except OSError as exc:
        raise ToolchainError(f"could not run {tool} ({argv[0]}): {exc}") from exc
    output = words((done.stdout or "") + (done.stderr or ""))
    emit(
        CommandRun(
            argv=argv,
            cwd=str(cwd),
            exit_code=done.returncode,
            duration_s=time.monotonic() - started,
            output_tail=output,
        )
    )
    if done.returncode != 0:
        raise ToolchainError(f"{failure} (exit {done.returncode}):\n{output}", hint=hint)
