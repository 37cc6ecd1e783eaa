"""Language tracks: one per language project in a repository (its root, toolchain and env).

A repository may hold one project at its top (the common case) or several, as in seed 000's
polyglot layout (`src/python`, `src/nodejs`, `src/java`). Models and git speak in repo-relative
paths; a toolchain speaks in paths relative to its project root. A Track translates.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from council.config import CouncilConfig, LanguageConfig
from council.errors import UsageError
from council.events import EventSink, Notice
from council.sandbox import Limits
from council.toolchains import GateResult, PythonToolchain, TestCase, TestReport
from council.toolchains import classify_collection_error as classify_python
from council.toolchains.gates import Finding, on_changed_lines, scope_to_change
from council.workspace.changes import ChangeScope
from council.workspace.tamper import guard_for

# Files that mark a project root, per language; where several match, the first wins.
MARKERS: dict[str, tuple[str, ...]] = {
    "python": ("pyproject.toml", "setup.py", "setup.cfg", "requirements.txt"),
    "java": ("pom.xml", "build.gradle", "build.gradle.kts"),
    "javascript": ("package.json",),
}
# How each language's tests are named and run, for the personas' prompts.
CONVENTIONS = {
    "python": ("pytest", "tests/test_*.py"),
    "javascript": ("the project's test runner (Jest, Vitest or node:test)", "*.test.js(x)/ts(x)"),
    "java": ("JUnit 5", "src/test/java/**/*Test.java"),
}
# Gates whose findings count only on the change (typecheck judges the whole program).
SCOPED_GATES = ("lint", "format", "sast")
_SKIP_DIRS = {".git", ".council", "node_modules", ".venv", "venv", "__pycache__", "target", "build"}


@dataclass
class Track:
    language: str
    root: str  # project root relative to the repository ("" for the top level)
    toolchain: Any
    lang: LanguageConfig
    solo: bool = True  # the only track: step names and prompts stay as for one language
    env: Any = field(default=None, repr=False)

    @property
    def suffix(self) -> str:
        return "" if self.solo else f":{self.language}"

    @property
    def framework(self) -> str:
        return CONVENTIONS.get(self.language, (self.language, ""))[0]

    @property
    def test_naming(self) -> str:
        return CONVENTIONS.get(self.language, ("", "tests"))[1]

    @property
    def test_dir(self) -> str:
        default = "tests" if self.language != "java" else "src/test/java"
        return self.repo_path(self.lang.test_dir or default)

    def repo_path(self, rel: str) -> str:
        """A path relative to the project root, as a repo-relative path."""
        return str(PurePosixPath(self.root, rel)) if self.root else rel

    def local(self, path: str) -> str:
        """A repo-relative path as a path relative to the project root."""
        if not self.root:
            return path
        return PurePosixPath(path).relative_to(self.root).as_posix()

    def owns(self, path: str) -> bool:
        return not self.root or PurePosixPath(path).is_relative_to(self.root)

    def is_test_file(self, path: str) -> bool:
        return self.owns(path) and self.toolchain.is_test_file(self.local(path))

    def project_dir(self, worktree: Path) -> Path:
        return worktree / self.root if self.root else worktree

    def prepare(self, worktree: Path, cache_dir: Path, emit: EventSink) -> None:
        self.env = self.toolchain.prepare(
            self.project_dir(worktree), cache_dir=cache_dir, emit=emit
        )

    def run_tests(
        self,
        worktree: Path,
        *,
        paths: Sequence[str] = (),
        related: Sequence[str] = (),
        timeout_s: float,
        emit: EventSink,
    ) -> TestReport:
        """Run `paths` (test files or ids), plus, through the runner's own related mode, the
        tests of the `related` source files; neither given: the whole suite."""
        extra = {"related": [self.local(p) for p in related]} if related else {}
        # Frozen tests and .git read-only while the code under test runs; anything it changed
        # is reverted after, and fails this run (workspace/tamper.py).
        with guard_for(worktree).watch(self.root) as tampering:
            report = self.toolchain.run_tests(
                self.project_dir(worktree),
                self.env,
                paths=[self.local(p) for p in paths],
                timeout_s=timeout_s,
                emit=emit,
                **extra,
            )
        if tampering.changes:
            emit(Notice(level="error", message=tampering.message))
            case = TestCase("<tests modified>", "error", message=tampering.message)
            report.collection_errors.insert(0, case)
        return report

    def affected_tests(self, worktree: Path, changed: Sequence[str]) -> list[str] | None:
        """Repo-relative test files a change to `changed` reaches (static analysis), or None
        when the toolchain leaves that to its runner (Jest/Vitest related mode)."""
        find = getattr(self.toolchain, "affected_tests", None)
        mine = [self.local(p) for p in changed if self.owns(p)]
        found = find(self.project_dir(worktree), mine) if find is not None else None
        return None if found is None else [self.repo_path(p) for p in found]

    def gates(
        self,
        worktree: Path,
        paths: Sequence[str],
        emit: EventSink,
        scope: ChangeScope | None = None,
    ) -> list[GateResult]:
        """The switched-on gates (lint, format, typecheck, SAST) on this track's changed files.

        With a `scope` (the run's change since its base commit), lint, format and SAST findings
        count only on the change; the rest is reported apart as pre-existing. Typecheck is not
        scoped: a changed signature breaks callers on lines nobody touched."""
        local = [self.local(p) for p in paths if self.owns(p)]
        if not local:
            return []
        where, out = self.project_dir(worktree), []
        for gate in ("lint", "format", "typecheck", "sast"):
            switch = getattr(self.lang, gate)
            method = getattr(self.toolchain, "format_check" if gate == "format" else gate, None)
            if switch == "" or method is None:
                continue
            result = method(where, self.env, paths=local, emit=emit)
            if scope is not None and gate in SCOPED_GATES:
                result = self._scoped(result, gate, method, scope, where, emit)
            out.append(result)
        return out

    def _scoped(
        self,
        result: GateResult,
        gate: str,
        method: Any,
        scope: ChangeScope,
        where: Path,
        emit: EventSink,
    ) -> GateResult:
        """`result` split into findings on the change and pre-existing ones. Findings off the
        changed lines are checked against the same gate on the base versions of their files,
        so one the change caused elsewhere (an import a deleted line left unused) still counts.
        A formatter's findings are about their own lines and need no such check."""
        changed = {self.local(p): lines for p, lines in scope.lines.items() if self.owns(p)}
        off = sorted({f.file for f in result.findings if not on_changed_lines(f, changed)})
        before = None
        if off and gate != "format":
            before = self._findings_at_base(method, scope, off, where, emit)
        return scope_to_change(result, changed, before)

    def _findings_at_base(
        self, method: Any, scope: ChangeScope, files: list[str], where: Path, emit: EventSink
    ) -> list[Finding] | None:
        """The gate's findings on the base versions of `files`, run in a scratch copy of the
        project's top-level config files; None when the gate could not run there."""
        scratch = Path(tempfile.mkdtemp(prefix="council-base-"))
        try:
            for item in where.iterdir():
                if item.is_file() and not item.is_symlink() and item.stat().st_size < 1_000_000:
                    shutil.copy2(item, scratch / item.name)
            if (where / "node_modules").exists():
                (scratch / "node_modules").symlink_to((where / "node_modules").resolve())
            present = []
            for file in files:
                data = scope.at_base(self.repo_path(file))
                if data is None:
                    continue  # new in this change: nothing in it is pre-existing
                target = scratch / file
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
                present.append(file)
            if not present:
                return []
            result = method(scratch, self.env, paths=present, emit=emit)
            if not result.passed and not result.findings:
                return None  # the tool broke on the old files: judge by lines alone
            return [*result.findings, *result.preexisting]
        except OSError:
            return None
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def classify(self, case: TestCase) -> str:
        """'missing_code' (a legitimate TDD red) or 'broken_test' (the test itself is wrong)."""
        own = getattr(self.toolchain, "classify_collection_error", None)
        return own(case) if own is not None else classify_python(case)


def _toolchain(language: str, config: CouncilConfig, lang: LanguageConfig) -> Any:
    limits = Limits(cpu_s=config.sandbox.cpu_s, memory_mb=config.sandbox.memory_mb)
    if language == "python":
        return PythonToolchain.from_commands(
            {"test": lang.test, "lint": lang.lint, "format": lang.format, "sast": lang.sast},
            install_timeout_s=config.limits.install_timeout_s,
            limits=limits,
            network=config.sandbox.network,
        )
    from council.toolchains import toolchain_for

    try:
        return toolchain_for(language, limits=limits, network=config.sandbox.network)
    except KeyError:
        raise UsageError(f"council cannot run {language} projects yet") from None


def _project_roots(repo: Path, depth: int = 2) -> list[tuple[str, str]]:
    """(language, root) for every marked project at most `depth` folders down."""
    found: list[tuple[str, str]] = []

    def visit(folder: Path, level: int) -> None:
        rel = folder.relative_to(repo).as_posix() if folder != repo else ""
        for language, markers in MARKERS.items():
            if any((folder / m).is_file() for m in markers):
                found.append((language, rel))
                break
        if level < depth:
            for child in sorted(folder.iterdir()):
                if child.is_dir() and child.name not in _SKIP_DIRS and not child.is_symlink():
                    visit(child, level + 1)

    visit(repo, 0)
    return found


def detect_projects(repo: Path) -> list[tuple[str, str]]:
    """(language, root) of the projects council finds without configuration: the one at the
    top level, else those one or two folders down, else the first toolchain that recognises
    the sources (Java, then JavaScript, then Python)."""
    roots = _project_roots(repo)
    top = [(lang, root) for lang, root in roots if root == ""]
    pairs = top[:1] or roots
    if not pairs:
        # No build file anywhere: let each toolchain look (Java finds *.java sources).
        from council.toolchains.base import toolchain_classes

        found = next((c.language for c in toolchain_classes() if c.detect(repo)), None)
        pairs = [(found, "")] if found else []
    return pairs


def discover_tracks(repo: Path, config: CouncilConfig) -> list[Track]:
    """The language tracks of a repository.

    A project marked at the top level is the one track (nested packages inside it, such as a
    frontend folder of a Python app, are its business). Otherwise every marked project one or
    two folders down is a track (the polyglot layout). `languages.<name>.root` in council.yaml
    overrides discovery. With no marker at all, the first toolchain that recognises the
    sources (Java, then JavaScript, then Python) is the one track.
    """
    configured = [(name, lc.root) for name, lc in config.languages.items() if lc.root is not None]
    pairs = configured or detect_projects(repo)
    if not pairs:
        raise UsageError(
            f"no project found in {repo}: council looks for pyproject.toml / requirements.txt, "
            "package.json or pom.xml / build.gradle at the top or in src/<language>/"
        )
    solo = len(pairs) == 1
    tracks = []
    for language, root in pairs:
        lang = config.language(language)
        tracks.append(Track(language, root, _toolchain(language, config, lang), lang, solo=solo))
    return tracks
