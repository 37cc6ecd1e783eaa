"""What every step of `council run` shares: the tracks, the test runs, the worktree's files."""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from council.config import CouncilConfig
from council.context import RepoContext, build_context
from council.errors import CouncilError
from council.events import Emitter
from council.pipelines.lifecycle import REPORT_FILE, Flow
from council.pipelines.models import cache_root
from council.pipelines.testruns import Selection, TestRuns
from council.pipelines.tracks import Track, discover_tracks
from council.store import RunRecord, Store
from council.toolchains import TestReport
from council.toolchains.test_ids import TestTarget, parse_test_spec
from council.workspace import changed_files, file_sha256, restore_tree, snapshot_tree
from council.workspace.git import out as git_out

MAX_PARALLEL_TRACKS = 3  # language tracks that test and iterate at the same time
_SKIP = {"node_modules", "__pycache__", "target", "build", "dist", "venv"}


def counts(report: TestReport) -> str:
    return report.brief_counts()


def all_counts(results: list[tuple[Track, TestReport]]) -> str:
    if len(results) == 1:
        return counts(results[0][1])
    return "; ".join(f"{t.language}: {counts(r)}" for t, r in results)


class RunBase(Flow):
    """The state of one `council run` and the small helpers its steps share."""

    def __init__(self, *, run: RunRecord, config: CouncilConfig, store: Store, emit: Emitter):
        super().__init__(run=run, config=config, store=store, emit=emit)
        self.open_pr = bool(self.params.get("open_pr"))
        # Tests-given mode: a person wrote these; Guardian writes none, they are frozen at once.
        # Each is a test file, or a test id in it (`path::name`, `path -k expr`).
        self.given_targets = [parse_test_spec(s) for s in self.params.get("given_tests") or []]
        self.given_tests = list(dict.fromkeys(t.path for t in self.given_targets))
        self.runs: TestRuns | None = None
        self.preexisting: dict[str, set[str]] = {}  # per track: tests failing on the base too
        self.tracks: list[Track] = discover_tracks(self.repo, config)
        self.skipped_languages: list[str] = []

    def _map(self, query: str, mentioned: list[str], *, files: bool = False) -> RepoContext:
        """The repository's map for `query` (and, with `files`, the files it picks) in the
        worktree, within the configured token budgets."""
        return build_context(
            self.ws.path,
            query,
            mentioned_paths=mentioned,
            map_tokens=self.config.context.map_tokens,
            file_tokens=self.config.context.file_tokens if files else 0,
            cache_dir=cache_root() / "tags",
        )

    def _each(self, fn: Callable[[Track], Any]) -> list[Any]:
        """`fn(track)` for every track: inline for one, in a bounded pool for several."""
        if len(self.tracks) == 1:
            return [fn(self.tracks[0])]
        with ThreadPoolExecutor(
            max_workers=min(len(self.tracks), MAX_PARALLEL_TRACKS), thread_name_prefix="track"
        ) as pool:
            return list(pool.map(fn, self.tracks))

    def _restore_track(self, track: Track, tree: str) -> None:
        restore_tree(self.ws, tree, paths=[track.root] if track.root else ())

    def _track_tree(self, track: Track) -> str:
        """The hash of the track's files as they are now (untracked included): a test result
        is valid for exactly this tree."""
        tree = snapshot_tree(self.ws)
        return git_out(self.ws.path, "rev-parse", f"{tree}:{track.root}") if track.root else tree

    def _head_tree(self) -> str:
        return git_out(self.ws.path, "rev-parse", "HEAD^{tree}")

    def _hash_or_none(self, rel: str) -> str | None:
        f = self.ws.path / rel
        return file_sha256(f) if f.is_file() else None

    def _read(self, paths: list[str]) -> dict[str, str]:
        out = {}
        for p in paths:
            f = self.ws.path / p
            if f.is_file():
                out[p] = f.read_text(encoding="utf-8", errors="replace")
        return out

    def _snapshot(self, paths: list[str]) -> dict[str, bytes | None]:
        return {
            p: (self.ws.path / p).read_bytes() if (self.ws.path / p).is_file() else None
            for p in paths
        }

    def _restore(self, snapshot: dict[str, bytes | None], touched: list[str]) -> None:
        """Put files back as snapshotted; files touched since but not in it did not exist."""
        for p in set(touched) | set(snapshot):
            data = snapshot.get(p)
            if data is None:
                (self.ws.path / p).unlink(missing_ok=True)
            else:
                (self.ws.path / p).write_bytes(data)

    def _is_test_path(self, path: str) -> bool:
        """A test file of any track: the code side (Builder, Artisan) never writes one."""
        return any(t.is_test_file(path) for t in self.tracks)

    def _test_files_in_tree(self, track: Track) -> list[str]:
        """Repo-relative paths of the track's test files as they are in the worktree."""
        out = []
        base = track.project_dir(self.ws.path)
        for folder, dirs, files in os.walk(base):
            dirs[:] = [d for d in dirs if d not in _SKIP and not d.startswith(".")]
            for name in files:
                rel = (Path(folder) / name).relative_to(self.ws.path).as_posix()
                if track.is_test_file(rel):
                    out.append(rel)
        return sorted(out)

    def _changed_code(self, frozen: dict[str, str], track: Track | None = None) -> list[str]:
        return [
            p
            for p in changed_files(self.ws)
            if p not in frozen and p != REPORT_FILE and (track is None or track.owns(p))
        ]

    def _scope_note(self, track: Track) -> str:
        if track.solo:
            return ""
        return self.prompts.text("scope_note", language=track.language, root=track.root)

    def _check_frozen(self, frozen: dict[str, str]) -> None:
        # The edit policy refuses edits to frozen files; this is the belt to those braces.
        for path, digest in frozen.items():
            if self._hash_or_none(path) != digest:
                raise CouncilError(f"frozen test file {path} changed; refusing to continue")

    def _loop_selection(self, track: Track, targets: list[TestTarget], frozen: dict[str, str]):
        """The tests that matter in the loop: the given or new ones and those the change
        reaches (everything with `limits.full_suite: always`)."""
        changed = tuple(self._changed_code(frozen, track))
        return Selection(tuple(targets), changed, full=self.config.limits.full_suite == "always")

    def _run_selected(self, track: Track, targets: list[TestTarget], phase: str) -> TestReport:
        report = self.runs.run(track, Selection(tuple(targets)), phase)
        if report is None:
            raise CouncilError(f"no {track.language} test to run for {phase}")
        return report
