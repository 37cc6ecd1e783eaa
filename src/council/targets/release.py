"""A release's sources: the project's files at one git commit, exported to a folder of their own
(the service never runs from the user's checkout, and an old release can be started again)."""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import tarfile
from pathlib import Path

from council.targets.base import TargetError

_APP = re.compile(r"^(\w+)\s*(?::[^=]+)?=\s*(?:fastapi\.)?(?:FastAPI|Starlette)\(", re.M)
_SKIP = {"tests", "test", ".venv", "venv", "node_modules", ".git", "__pycache__", "build", "dist"}


def _git(root: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(root), *args], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise TargetError(f"git {' '.join(args)} failed in {root}: {done.stderr.strip()}")
    return done.stdout.strip()


def resolve(root: Path, ref: str) -> tuple[str, str]:
    """(commit, tree of the project's folder at that commit) for `ref`."""
    commit = _git(root, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    prefix = _git(root, "rev-parse", "--show-prefix")
    tree = _git(root, "rev-parse", "--verify", f"{commit}:{prefix}")
    return commit, tree


def export(root: Path, tree: str, dest: Path) -> Path:
    """The files of `tree` in `dest` (reused when already exported: a tree hash is its content)."""
    if (dest / ".council-release").is_file():
        os.utime(dest)  # the newest again: pruning keeps recently used releases
        return dest
    top = _git(root, "rev-parse", "--show-toplevel")  # archive a tree from the top, not a subdir
    archive = subprocess.run(
        ["git", "-C", top, "archive", "--format=tar", tree], capture_output=True, check=False
    )
    if archive.returncode != 0:
        raise TargetError(f"git archive {tree} failed: {archive.stderr.decode().strip()}")
    partial = dest.with_name(dest.name + ".part")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(partial, filter="data")  # no links or paths out of the folder
    (partial / ".council-release").write_text(tree + "\n", encoding="utf-8")
    shutil.rmtree(dest, ignore_errors=True)
    partial.rename(dest)
    return dest


def detect_app(source: Path) -> str:
    """`module:variable` of the project's ASGI app (a `FastAPI(...)` or `Starlette(...)`
    assignment), preferring main.py/app.py files and shallow paths."""
    base = source / "src" if (source / "src").is_dir() else source
    candidates = [
        path
        for path in base.rglob("*.py")
        if not _SKIP.intersection(path.relative_to(base).parts[:-1])
        and not path.name.startswith("test")
    ]
    candidates.sort(
        key=lambda p: (p.stem not in ("main", "app", "api", "server"), len(p.parts), str(p))
    )
    for path in candidates:
        match = _APP.search(path.read_text(encoding="utf-8", errors="replace"))
        if match:
            module = ".".join(path.relative_to(base).with_suffix("").parts)
            return f"{module.removesuffix('.__init__')}:{match.group(1)}"
    raise TargetError(
        f"no ASGI app found in {source.name} (looked for `app = FastAPI(...)`)",
        hint="Name it in deploy.yaml (app: 'package.module:app').",
    )
