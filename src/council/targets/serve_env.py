"""The Python a service runs in: the project's env from the env cache (toolchains/python_env),
plus an ASGI server when the project does not bring its own.

A FastAPI project often declares fastapi but not uvicorn (its tests use TestClient). Then a
small layer venv holds uvicorn and chains to the project's base env through a .pth line, like
the env cache's own per-tree overlay; it is cached by the env it chains to, so every release
with the same dependencies shares it. The release's overlay (the project's own install) goes
on PYTHONPATH after its sources.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from council.events import EventSink, null_sink
from council.toolchains.python_env import PythonEnv, prepare_env
from council.toolchains.python_env import _uv as uv_run  # the env cache's own uv call
from council.toolchains.tools import require_tool

SERVER = "uvicorn==0.54.0"  # the ASGI server a project without one is served with
LAYER_MARKER = "council-serve.json"


@dataclass(frozen=True)
class ServeEnv:
    env: PythonEnv
    python: Path  # runs `-m uvicorn` with the project's packages importable
    layered: bool  # uvicorn came from council's layer, not from the project
    # For PYTHONPATH, after the sources: the release's own layer of the env cache (the
    # project's installed metadata) when the server layer chains to the shared base env.
    extra_path: tuple[Path, ...] = ()


def prepare_serve_env(
    root: Path, *, cache_dir: Path, install_timeout_s: float = 900, emit: EventSink = null_sink
) -> ServeEnv:
    env = prepare_env(root, cache_dir=cache_dir, install_timeout_s=install_timeout_s, emit=emit)
    if any((site / "uvicorn").is_dir() for site in _sites(env)):
        return ServeEnv(env=env, python=env.python, layered=False)
    layer = _layer(env, cache_dir=cache_dir, timeout_s=install_timeout_s, emit=emit)
    overlay = tuple(sorted(env.overlay.glob("lib/python*/site-packages"))) if env.overlay else ()
    return ServeEnv(env=env, python=layer / "bin" / "python", layered=True, extra_path=overlay)


def _sites(env: PythonEnv) -> list[Path]:
    return [site for path in env.paths for site in sorted(path.glob("lib/python*/site-packages"))]


def _layer(env: PythonEnv, *, cache_dir: Path, timeout_s: float, emit: EventSink) -> Path:
    # The shared base env, not a tree's overlay: one layer serves every release with the same
    # dependencies (a new release costs no server install).
    chained = sorted(env.path.glob("lib/python*/site-packages"))[0]
    key = hashlib.sha256(f"{chained}\0{SERVER}".encode()).hexdigest()[:16]
    final = cache_dir / "envs" / "serve" / key
    if (final / LAYER_MARKER).is_file() and (final / "bin" / "python").exists():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    remove_orphan_layers(final.parent)
    uv = require_tool("uv", "install the ASGI server the service runs on")
    build = Path(tempfile.mkdtemp(prefix=f".build-{key}-", dir=final.parent))
    try:
        venv = build / "venv"
        argv = [uv, "venv", "--quiet", "--python", str(env.python), str(venv)]
        uv_run(argv, cwd=build, timeout_s=timeout_s, emit=emit, what="create the server layer")
        site = sorted(venv.glob("lib/python*/site-packages"))[0]
        (site / "_council_project.pth").write_text(
            f"import site; site.addsitedir({str(chained)!r})\n", encoding="utf-8"
        )
        python = venv / "bin" / "python"
        argv = [uv, "pip", "install", "--python", str(python), SERVER]
        uv_run(argv, cwd=build, timeout_s=timeout_s, emit=emit, what=f"install {SERVER}")
        marker = {"chained": str(chained), "server": SERVER}
        (venv / LAYER_MARKER).write_text(json.dumps(marker), encoding="utf-8")
        shutil.rmtree(final, ignore_errors=True)
        venv.rename(final)
    finally:
        shutil.rmtree(build, ignore_errors=True)
    return final


def remove_orphan_layers(folder: Path) -> list[Path]:
    """Layers whose chained env is gone (the env cache removed a finished tree's overlay)."""
    removed = []
    for layer in folder.iterdir():
        try:
            marker = json.loads((layer / LAYER_MARKER).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue  # a build in progress, or not ours
        if isinstance(marker, dict) and not Path(str(marker.get("chained", ""))).is_dir():
            shutil.rmtree(layer, ignore_errors=True)
            removed.append(layer)
    return removed
