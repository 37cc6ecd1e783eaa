"""Benchmark: `council run --tests` on real projects from PyPI, each with a seeded bug.

For each project: its sdist (which carries its test suite) is downloaded with
`pip download --no-binary :all: --no-deps NAME==VERSION`, unpacked, made a git repository,
and a bug is seeded in one function (committed). Then the real CLI runs
`council run --json --tests <the test that catches the bug> "<task>"` against the scripted
model server (tests/fakes/model_server.py), which answers Builder with the fix. From the run's
own events and the server's requests it prints, per project:

  green      the run ended green (exit 0)
  wall       whole `council run` wall time, start-up included
  runs       number of test runs (tests_reported events), and how many were the full suite
  tests      time spent in those test runs (their own durations)
  prompt     the largest prompt sent to any persona, in tokens (LiteLLM's counter, gpt-4o)
  env        time spent building the project's test env (uv commands)

Targets (printed next to the figures, not asserted): green on every project it can build; the
largest prompt at most 32k tokens; wall time at most 3x the test time plus the env build.
Lint, format and SAST gates are off here: they are another issue's subject and would need
scripted polish answers. Each run gets a fresh env cache, so the env build is measured.

    python bench/real_repos.py [--projects more-itertools,toolz,idna,six,markupsafe] [--keep]

six is setup.py/setup.cfg only with its test module at the root; markupsafe has a src layout,
an optional C extension, a requirements/ folder and test ids parametrised by module
(`test_escaping[markupsafe._native]`).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # `tests.fakes` lives in the repository, not in the package
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no network fetch of prices

from tests.fakes import council_script as cs  # noqa: E402
from tests.fakes.model_server import ScriptedModelServer  # noqa: E402

PROMPT_TARGET = 32_000
WALL_FACTOR = 3.0
RUN_TIMEOUT_S = 1800


@dataclass(frozen=True)
class Project:
    name: str
    version: str
    file: str  # where the bug is seeded (relative to the sdist's top folder)
    original: str  # the line as released
    bug: str  # the line with the seeded bug
    test: str  # the test id that catches it (given to --tests)
    task: str


PROJECTS = [
    Project(
        "more-itertools",
        "10.5.0",
        "more_itertools/more.py",
        "    return sum(compress(repeat(1), zip(iterable)))\n",
        "    return sum(compress(repeat(1), zip(iterable))) + 1\n",
        "tests/test_more.py::IlenTests::test_ilen",
        "ilen() counts one item too many; make it return the number of items.",
    ),
    Project(
        "toolz",
        "1.0.0",
        "toolz/itertoolz.py",
        "        d[item] += 1\n",
        "        d[item] += 2\n",
        "toolz/tests/test_itertoolz.py::test_frequencies",
        "frequencies() counts every item twice; count each occurrence once.",
    ),
    Project(
        "idna",
        "3.10",
        "idna/core.py",
        "    if len(label) > 63:\n",
        "    if len(label) > 64:\n",
        "tests/test_idna.py::IDNATests::test_valid_label_length",
        "Labels of 64 characters are accepted; the limit is 63 (RFC 1035).",
    ),
    # setup.py + setup.cfg only, one test module at the root, pytest config in setup.cfg.
    Project(
        "six",
        "1.17.0",
        "six.py",
        "    byte2int = operator.itemgetter(0)\n",
        "    byte2int = operator.itemgetter(1)\n",
        "test_six.py::test_byte2int",
        "byte2int() returns the second byte; it must return the first.",
    ),
    # src layout, a compiled optional extension, requirements/ folder, parametrised test ids.
    Project(
        "markupsafe",
        "3.0.2",
        "src/markupsafe/_native.py",
        '        s.replace("&", "&amp;")\n',
        '        s.replace("&", "&amp")\n',
        "tests/test_markupsafe.py::test_escaping[markupsafe._native]",
        "escape() writes `&amp` without the semicolon in the pure-Python escaper.",
    ),
]


@dataclass
class Result:
    project: str
    green: bool
    wall_s: float
    runs: int
    full_runs: int
    tests_s: float
    prompt_tokens: int
    env_s: float
    note: str = ""


def _git(repo: Path, *args: str) -> None:
    subprocess.run(
        [
            "git",
            "-C",
            str(repo),
            "-c",
            "user.name=bench",
            "-c",
            "user.email=bench@localhost",
            *args,
        ],
        check=True,
        capture_output=True,
    )


def fetch(project: Project, downloads: Path) -> Path:
    """The project's sdist from PyPI (pip's ordinary download), kept between bench runs."""
    downloads.mkdir(parents=True, exist_ok=True)
    prefix = f"{project.name}-{project.version}".replace("-", "_").lower()
    found = [
        p for p in downloads.glob("*.tar.gz") if p.name.replace("-", "_").lower().startswith(prefix)
    ]
    if found:
        return found[0]
    has_pip = importlib.util.find_spec("pip") is not None
    pip = [sys.executable, "-m", "pip"] if has_pip else [shutil.which("pip3") or "pip"]
    subprocess.run(
        [*pip, "download", "--no-binary", ":all:", "--no-deps", "-q", "-d", str(downloads),
         f"{project.name}=={project.version}"],
        check=True,
        capture_output=True,
        timeout=600,
    )  # fmt: skip
    return fetch(project, downloads)


def make_repo(project: Project, sdist: Path, where: Path) -> Path:
    with tarfile.open(sdist) as archive:
        archive.extractall(where, filter="data")
    repo = next(p for p in where.iterdir() if p.is_dir())
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", f"{project.name} {project.version} as released")
    target = repo / project.file
    text = target.read_text(encoding="utf-8")
    if text.count(project.original) != 1:
        raise RuntimeError(f"{project.file}: the line to seed the bug in is not there once")
    target.write_text(text.replace(project.original, project.bug), encoding="utf-8")
    _git(repo, "commit", "-qam", "seeded bug")
    return repo


def script(server: ScriptedModelServer, project: Project) -> None:
    plan = {
        "summary": project.task,
        "scope": project.name.split("-")[0],
        "tasks": [
            {
                "id": "T1",
                "title": "fix the bug",
                "acceptance_criteria": [f"{project.test} passes"],
                "files": [project.file],
            }
        ],
    }
    fix = (
        f"The seeded line is wrong.\n\n{project.file}\n```python\n<<<<<<< SEARCH\n"
        f"{project.bug}=======\n{project.original}>>>>>>> REPLACE\n```\n"
    )
    server.script("pacer", json.dumps(plan))
    server.script("maven", json.dumps({"files": [project.file], "notes": ""}))
    server.script("builder", fix)
    server.script("guardian", json.dumps({"verdict": "approve", "summary": "ok", "comments": []}))


def config(server: ScriptedModelServer, where: Path) -> Path:
    doc = json.loads(cs.council_yaml(server, test_timeout_s=600, max_iterations=2))
    doc["languages"] = {"python": {"lint": "", "format": "", "sast": ""}}
    path = where / "council.yaml"
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def largest_prompt(server: ScriptedModelServer) -> int:
    from council.gateway.router import litellm_module

    counter = litellm_module().token_counter
    return max(
        (counter(model="gpt-4o", messages=r.get("messages", [])) for r in server.requests),
        default=0,
    )


def bench(project: Project, work: Path, downloads: Path) -> Result:
    repo = make_repo(project, fetch(project, downloads), work / "src")
    with ScriptedModelServer() as server:
        script(server, project)
        cfg = config(server, work)
        env = {**os.environ, "COUNCIL_CACHE_DIR": str(work / "cache")}
        council = [str(Path(sys.executable).with_name("council"))]
        argv = [*council, "run", "--json", "--config", str(cfg), "--tests", project.test]
        started = time.monotonic()
        done = subprocess.run(
            [*argv, project.task],
            cwd=repo,
            env=env,
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT_S,
        )
        wall = time.monotonic() - started
        prompt = largest_prompt(server)
    events = []
    for line in done.stdout.splitlines():
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    runs = [e for e in events if e.get("kind") == "tests_reported"]
    env_s = sum(
        e.get("duration_s", 0.0)
        for e in events
        if e.get("kind") == "command_run" and Path((e.get("argv") or [""])[0]).name == "uv"
    )
    finished = [e for e in events if e.get("kind") == "run_finished"]
    note = finished[-1].get("reason", "") if finished else (done.stderr.strip()[-300:])
    return Result(
        project=f"{project.name} {project.version}",
        green=done.returncode == 0,
        wall_s=wall,
        runs=len(runs),
        full_runs=sum(1 for e in runs if e.get("scope") == "full"),
        tests_s=sum(e.get("duration_s", 0.0) for e in runs),
        prompt_tokens=prompt,
        env_s=env_s,
        note=note,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--projects", default=",".join(p.name for p in PROJECTS))
    parser.add_argument("--keep", action="store_true", help="keep the work folders")
    parser.add_argument(
        "--downloads",
        type=Path,
        default=Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
        / "council"
        / "bench-sdists",
    )
    args = parser.parse_args()
    wanted = [p for p in PROJECTS if p.name in args.projects.split(",")]
    results: list[Result] = []
    for project in wanted:
        work = Path(tempfile.mkdtemp(prefix=f"council-bench-{project.name}-"))
        try:
            results.append(bench(project, work, args.downloads))
        except (subprocess.SubprocessError, OSError, RuntimeError) as exc:
            results.append(Result(project.name, False, 0, 0, 0, 0, 0, 0, f"not built: {exc}"))
        finally:
            if not args.keep:
                shutil.rmtree(work, ignore_errors=True)
        r = results[-1]
        print(f"  {r.project}: green={r.green} wall={r.wall_s:.1f}s", file=sys.stderr)
    header = (
        f"{'project':<22} {'green':>5} {'wall s':>7} {'runs':>6} {'tests s':>8} "
        f"{'prompt tok':>10} {'env s':>6}  targets (prompt <= {PROMPT_TARGET // 1000}k, "
        f"wall <= {WALL_FACTOR:.0f}x tests + env)"
    )
    print(header)
    for r in results:
        budget = WALL_FACTOR * r.tests_s + r.env_s
        checks = [
            "prompt ok" if r.prompt_tokens <= PROMPT_TARGET else "PROMPT OVER",
            f"wall ok ({budget:.0f}s)" if r.wall_s <= budget else f"WALL OVER ({budget:.0f}s)",
        ]
        print(
            f"{r.project:<22} {'yes' if r.green else 'NO':>5} {r.wall_s:>7.1f} "
            f"{f'{r.runs}({r.full_runs}f)':>6} {r.tests_s:>8.1f} {r.prompt_tokens:>10} "
            f"{r.env_s:>6.1f}  {', '.join(checks)}"
        )
        if not r.green:
            print(f"{'':<22} why: {r.note}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
