"""Find node, install a Node project's dependencies once into a cache, and link them into the tree.

`node_modules` is installed under `<cache_dir>/node/<key>` where the key hashes the dependency
fields of package.json, the lockfile, the project's .npmrc and node's major version, then the
work tree gets a `node_modules` symlink to it: every iteration and every later run on the same
dependencies reuses one install without calling npm. Jest, Vitest, tsc, ESLint and Prettier all
resolve through the link (node follows it to the real path, so React is loaded once). An install
is built in a temporary folder and renamed into place: a crash never leaves half an install.

npm runs outside the sandbox (it needs the registry) with `--ignore-scripts` unless the toolchain
is told otherwise: lifecycle scripts of any package in the tree would otherwise run unconfined,
with the network, as the user. Packages that only build optional native speed-ups still work.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from council.errors import ToolchainError
from council.events import EventSink, Notice, null_sink
from council.toolchains.report import tail_text
from council.toolchains.tools import run_installer

ENV_FORMAT = 1  # bump when the layout of a cached install changes, to stop reusing old ones
MARKER = "council-node-env.json"
MIN_NODE_MAJOR = 18
NODE_MISSING = "node 18+ not found (install Node.js 18 or newer)"
LOCKFILES = ("npm-shrinkwrap.json", "package-lock.json")
# package.json fields that decide what npm installs; scripts, version or jest config do not.
_DEPENDENCY_FIELDS = (
    "dependencies", "devDependencies", "optionalDependencies", "peerDependencies",
    "bundleDependencies", "bundledDependencies", "overrides", "workspaces", "packageManager",
)  # fmt: skip
_STALE_BUILD_S = 24 * 3600
_STALE_RUN_CACHE_S = 7 * 24 * 3600
_VERSION = re.compile(r"v?(\d+)\.(\d+)\.(\d+)")


@dataclass(frozen=True)
class NodeEnv:
    """A ready `node_modules` for a project, and the node that runs its tests."""

    path: Path  # folder holding node_modules (the cache entry, or the project itself)
    key: str
    node: Path
    node_version: str
    tools_dir: Path  # council's own npm tools (jest-junit) and reporters
    reused: bool = False
    own: bool = False  # the project's own node_modules, not a council install
    runs_dir: Path | None = None  # writable per-project caches of test runs (jest transforms)

    @property
    def node_modules(self) -> Path:
        return self.path / "node_modules"

    def run_cache(self, root: Path, tool: str) -> Path | None:
        """A cache folder for `tool` runs on this project root only: warm across iterations,
        and never shared with another work tree (test code can write to it)."""
        if self.runs_dir is None:
            return None
        digest = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:16]
        path = self.runs_dir / f"{tool}-{digest}"
        path.mkdir(parents=True, exist_ok=True)
        os.utime(path)  # last use, for the clean-up of caches of work trees long gone
        return path


def find_node(node: str | None = None) -> tuple[Path, str]:
    """node's path and version; ToolchainError naming what to install when absent or too old."""
    found = node if node and os.path.isabs(node) else shutil.which(node or "node")
    if not found or not os.access(found, os.X_OK):
        raise ToolchainError(NODE_MISSING, hint="https://nodejs.org/ or your package manager")
    try:
        done = subprocess.run(
            [found, "--version"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise ToolchainError(f"{NODE_MISSING}: {found} does not run ({exc})") from exc
    match = _VERSION.match(done.stdout.strip())
    if done.returncode != 0 or not match:
        raise ToolchainError(f"{NODE_MISSING}: `{found} --version` said {done.stdout.strip()!r}")
    if int(match.group(1)) < MIN_NODE_MAJOR:
        raise ToolchainError(f"{NODE_MISSING}: {found} is {match.group(0)}")
    return Path(found), match.group(0).removeprefix("v")


def find_npm(node: Path, npm: str | None = None) -> str:
    """npm beside the node in use (the pair installed together), else on PATH."""
    if npm:
        return npm  # as given: a path that does not exist fails only if npm is actually needed
    beside = node.parent / "npm"
    found = str(beside) if beside.is_file() else shutil.which("npm")
    if not found:
        raise ToolchainError(
            "npm not found (it comes with Node.js 18 or newer; install npm)",
            hint=f"node is {node}",
        )
    return found


def read_package_json(root: Path) -> dict:
    path = root / "package.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ToolchainError(f"{path} not found: not a Node project") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ToolchainError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ToolchainError(f"{path} is not a JSON object")
    return data


def lockfile(root: Path) -> Path | None:
    return next((root / name for name in LOCKFILES if (root / name).is_file()), None)


def env_key(root: Path, node_version: str, *, allow_scripts: bool = False) -> str:
    package = read_package_json(root)
    lock = lockfile(root)
    npmrc = root / ".npmrc"
    blob = json.dumps(
        {
            "format": ENV_FORMAT,
            "node_major": node_version.split(".")[0],
            "package": {k: package[k] for k in _DEPENDENCY_FIELDS if k in package},
            "lock": lock.read_text(encoding="utf-8", errors="replace") if lock else None,
            "npmrc": npmrc.read_text(encoding="utf-8", errors="replace")
            if npmrc.is_file()
            else None,
            "scripts": allow_scripts,
        },
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def prepare_env(
    root: Path,
    *,
    cache_dir: Path,
    node: str | None = None,
    npm: str | None = None,
    allow_scripts: bool = False,
    install_timeout_s: float = 900,
    emit: EventSink = null_sink,
) -> NodeEnv:
    """The cached install for `root`'s dependencies (npm runs only when none is usable), linked
    into `root` as `node_modules`."""
    root = root.resolve()
    node_path, version = find_node(node)
    tools_dir = cache_dir / "tools" / "node"
    runs_dir = cache_dir / "node-runs"
    _remove_stale(runs_dir, "*", _STALE_RUN_CACHE_S)
    own = root / "node_modules"
    if own.is_dir() and not own.is_symlink():
        # A checkout the user installed into: never replace their folder.
        emit(Notice(message=f"node: using the project's own {own} as it is"))
        return NodeEnv(root, "own", node_path, version, tools_dir, True, True, runs_dir)
    local = local_packages(read_package_json(root))
    if local:
        _install_in_tree(root, npm=find_npm(node_path, npm), allow_scripts=allow_scripts,
                         timeout_s=install_timeout_s, emit=emit, local=local)  # fmt: skip
        return NodeEnv(root, "in-tree", node_path, version, tools_dir, False, True, runs_dir)
    key = env_key(root, version, allow_scripts=allow_scripts)
    envs = cache_dir / "node"
    final = envs / key
    env = NodeEnv(final, key, node_path, version, tools_dir, runs_dir=runs_dir)
    if _usable(final):
        emit(Notice(message=f"node env {key}: reusing {final}"))
        env = NodeEnv(final, key, node_path, version, tools_dir, reused=True, runs_dir=runs_dir)
    else:
        _build(root, final, npm=find_npm(node_path, npm), allow_scripts=allow_scripts,
               timeout_s=install_timeout_s, emit=emit)  # fmt: skip
        if not (final / MARKER).is_file():  # lost a race: another build won and ours is gone
            raise ToolchainError(f"node env {key}: install did not land in {final}")
    link_node_modules(root, env.node_modules)
    return env


def local_packages(package: dict) -> list[str]:
    """Dependencies that live in the project itself (`file:`, `link:`, `workspace:` or path
    specs, npm workspaces): an install in a cache folder cannot see them."""
    found = []
    for field in ("dependencies", "devDependencies", "optionalDependencies"):
        value = package.get(field)
        for name, spec in value.items() if isinstance(value, dict) else []:
            if str(spec).startswith(("file:", "link:", "workspace:", "./", "../")):
                found.append(str(name))
    if package.get("workspaces"):
        found.append("its workspaces")
    return found


def _install_in_tree(
    root: Path, *, npm: str, allow_scripts: bool, timeout_s: float, emit: EventSink, local: list
) -> None:
    """npm in the tree itself, as its users install it, for a project whose dependencies point
    into it (they are linked from node_modules to their folders in this tree); node_modules
    stays out of git. Not cached across trees: the links are this tree's."""
    command = "ci" if lockfile(root) else "install"
    emit(
        Notice(
            message=f"node: npm {command} in the work tree ({', '.join(local[:3])} "
            "live in the project itself)"
        )
    )
    argv = [npm, command, "--no-audit", "--no-fund", "--include=dev", "--loglevel=warn"]
    if command == "install":
        argv.append("--no-package-lock")  # no new lockfile in the change
    if not allow_scripts:
        argv.append("--ignore-scripts")
    run_npm(argv, cwd=root, timeout_s=timeout_s, emit=emit, what=f"npm {command}")
    (root / "node_modules").mkdir(exist_ok=True)
    _exclude_from_git(root)


def link_node_modules(root: Path, target: Path) -> None:
    """Point `root/node_modules` at `target` (atomically), and keep the link out of git."""
    link = root / "node_modules"
    if link.is_symlink() and os.readlink(link) == str(target):
        return
    temp = root / f".node_modules.council-{os.getpid()}"
    if temp.is_symlink():
        temp.unlink()
    os.symlink(target, temp, target_is_directory=True)
    os.replace(temp, link)  # replaces an old link to another install; a real folder never gets here
    _exclude_from_git(root)


def _exclude_from_git(root: Path) -> None:
    """`git add --all` must not commit the link. A `.gitignore` line `node_modules/` matches
    folders only, not a symlink, so check git's own verdict and add a plain pattern to the
    repository's info/exclude (never to the user's .gitignore) when the link is not ignored."""
    git = shutil.which("git")
    if git is None:
        return
    check = subprocess.run(
        [git, "check-ignore", "-q", "node_modules"], cwd=root, capture_output=True, check=False
    )
    if check.returncode != 1:  # 0: ignored already; 128: not a git repository
        return
    where = subprocess.run(
        [git, "rev-parse", "--git-path", "info/exclude"],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    )
    if where.returncode != 0 or not where.stdout.strip():
        return
    exclude = (root / where.stdout.strip()).resolve()
    exclude.parent.mkdir(parents=True, exist_ok=True)
    current = exclude.read_text(encoding="utf-8") if exclude.exists() else ""
    if "node_modules" not in current.splitlines():
        prefix = "" if not current or current.endswith("\n") else "\n"
        with exclude.open("a", encoding="utf-8") as fh:
            fh.write(f"{prefix}# council: dependency links in work trees\nnode_modules\n")


def _build(
    root: Path, final: Path, *, npm: str, allow_scripts: bool, timeout_s: float, emit: EventSink
) -> None:
    envs = final.parent
    envs.mkdir(parents=True, exist_ok=True)
    _remove_stale(envs, ".build-*", _STALE_BUILD_S)
    if final.exists():  # a folder without our marker: damaged, never half-built by us
        shutil.rmtree(final, ignore_errors=True)
    lock = lockfile(root)
    command = "ci" if lock else "install"
    emit(Notice(message=f"node env {final.name}: npm {command} (cached for later runs)"))
    build = Path(tempfile.mkdtemp(prefix=f".build-{final.name}-", dir=envs))
    try:
        for name in ("package.json", *LOCKFILES, ".npmrc"):
            if (root / name).is_file():
                shutil.copy2(root / name, build / name)
        argv = [npm, command, "--no-audit", "--no-fund", "--include=dev", "--loglevel=warn"]
        if not allow_scripts:
            argv.append("--ignore-scripts")
        run_npm(argv, cwd=build, timeout_s=timeout_s, emit=emit, what=f"npm {command}")
        (build / "node_modules").mkdir(exist_ok=True)  # a project with no dependencies
        marker = {"key": final.name, "root": str(root), "command": command, "at": time.time()}
        (build / MARKER).write_text(json.dumps(marker, indent=2), encoding="utf-8")
        try:
            os.rename(build, final)
        except OSError:
            if not _usable(final):  # not a lost race with a concurrent build: a real failure
                raise
    finally:
        shutil.rmtree(build, ignore_errors=True)


def run_npm(argv: list[str], *, cwd: Path, timeout_s: float, emit: EventSink, what: str) -> None:
    """Run npm outside the sandbox; a failure is a ToolchainError ending with npm's own words."""
    run_installer(
        "npm",
        argv,
        cwd=cwd,
        timeout_s=timeout_s,
        emit=emit,
        failure=f"{what} failed",
        hint="Check package.json / the lockfile and that the npm registry is reachable.",
        drop_env=("NODE_ENV", "NODE_OPTIONS"),
        set_env={"npm_config_update_notifier": "false"},
        words=_npm_words,
    )


def _npm_words(text: str) -> str:
    """npm's error lines: the head says what went wrong (a usage error is followed by a long
    help text), the end says where the log is; warnings about the user's npm config go."""
    lines = [line for line in text.splitlines() if "Unknown user config" not in line]
    errors = [line for line in lines if line.startswith(("npm error", "npm ERR!"))]
    if len(errors) > 30:
        errors = [*errors[:20], "npm error ...", *errors[-5:]]
    return "\n".join(errors) if errors else tail_text("\n".join(lines), lines=40)


def _usable(path: Path) -> bool:
    return (path / MARKER).is_file() and (path / "node_modules").is_dir()


def _remove_stale(folder: Path, pattern: str, age_s: float) -> None:
    """Builds that crashed long ago (a live build is never a day old), caches of test runs on
    work trees not used for a week."""
    if not folder.is_dir():
        return
    now = time.time()
    for leftover in folder.glob(pattern):
        try:
            if now - leftover.stat().st_mtime > age_s:
                shutil.rmtree(leftover, ignore_errors=True)
        except OSError:
            continue
