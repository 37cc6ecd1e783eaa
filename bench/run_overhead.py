"""Benchmark: a whole `council run --tests` next to the bare test command, per language.

For each language the bench writes a small exercise itself (a stub, its tests, and the answer),
commits it in a fresh git repository, and serves the answer through the scripted model server
(tests/fakes/model_server.py, which answers at once). Then, `--runs` times each:

  bare     the test command alone on the answered exercise (what a person would run)
  whole    `council run --tests <file> "<task>" --json`, process start to exit
  ratio    whole / bare
  CPU      user + system CPU of the whole run's processes (steadier than wall time under load)
  first    process start to the first event line on stdout
  tests    test runs in the run (TestsReported events: baseline, red, iterations, ...)
  model    time inside model calls (sum of ModelCall latency)

and `council --help`. Medians are printed; one unmeasured warm-up run per language builds the
cached test environment first (a real user has it after their first run too).

Each language gets three rows, one per way LiteLLM is reached (gateway/daemon):
  warm gateway   the gateway process is up (what a user gets from their second run on)
  in-process     COUNCIL_GATEWAY=off: LiteLLM imported inside the run
  cold gateway   no gateway process yet: the run starts one and waits for it (a first run)
The CPU column adds the gateway process's own CPU during the run to the run's.

Targets (issue 11), medians on the 2-core development machine: Python whole run <= 2.5 s and
<= 4x the bare run; JavaScript <= 3x; Java <= 2.5x; `council --help` <= 0.3 s; first event
<= 0.5 s; 2 test runs in a one-iteration run. It reports; it does not assert.

It also prints the load average (figures from a busy machine are not comparable), and the CPU
of `import litellm` and of the first call's modules that the run's background preload imports.
`--no-bytecode` ignores compiled modules, as on a venv installed without them where
PYTHONDONTWRITEBYTECODE is set (before `scripts/setup` compiled them): every module, council's
and LiteLLM's, compiled from source in every process (test runs and bandit included).

    python bench/run_overhead.py [--runs 3] [--language python] [--language java] [--no-bytecode]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # `tests.fakes` lives in the repository, not in the package
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from tests.fakes import council_script as cs  # noqa: E402
from tests.fakes.model_server import ScriptedModelServer  # noqa: E402

LAUNCHER = "/usr/share/java/junit-platform-console-standalone.jar"
TASK = "Implement add(a, b) so the given tests pass."


@dataclass
class Exercise:
    language: str
    files: dict[str, str]  # committed: stub and tests
    tests: str  # the test file given with --tests
    answer: tuple[str, str]  # (path, whole file) Builder writes
    bare: list[str]  # the test command on the answered exercise
    available: Callable[[], str | None] = lambda: None  # why it cannot run here, or None


def _python() -> Exercise:
    tests = "\n".join(
        f"def test_add_{n}():\n    assert add({n}, 1) == {n + 1}\n" for n in range(10)
    )
    return Exercise(
        language="python",
        files={
            "calc.py": "def add(a, b):\n    raise NotImplementedError\n",
            "test_calc.py": "from calc import add\n\n\n" + tests,
        },
        tests="test_calc.py",
        answer=("calc.py", "def add(a, b):\n    return a + b\n"),
        bare=[sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_calc.py"],
    )


def _javascript() -> Exercise:
    cases = "\n".join(
        f"test('add {n}', () => assert.strictEqual(add({n}, 1), {n + 1}));" for n in range(10)
    )
    return Exercise(
        language="javascript",
        files={
            "package.json": json.dumps(
                {"name": "calc", "version": "1.0.0", "scripts": {"test": "node --test"}}, indent=2
            )
            + "\n",
            "calc.js": "function add(a, b) {\n  throw new Error('not implemented');\n}\n\n"
            "module.exports = { add };\n",
            "test/calc.test.js": "const test = require('node:test');\n"
            "const assert = require('node:assert');\nconst { add } = require('../calc');\n\n"
            + cases
            + "\n",
        },
        tests="test/calc.test.js",
        answer=(
            "calc.js",
            "function add(a, b) {\n  return a + b;\n}\n\nmodule.exports = { add };\n",
        ),
        bare=["node", "--test"],
        available=lambda: None if shutil.which("node") else "node not found",
    )


def _java() -> Exercise:
    cases = "\n".join(
        f"    @Test void add{n}() {{ assertEquals({n + 1}, new Calc().add({n}, 1)); }}"
        for n in range(10)
    )
    classes = "build/bare-classes"
    return Exercise(
        language="java",
        files={
            "src/main/java/demo/Calc.java": "package demo;\n\npublic class Calc {\n"
            "    public int add(int a, int b) {\n"
            '        throw new UnsupportedOperationException("not implemented");\n    }\n}\n',
            "src/test/java/demo/CalcTest.java": "package demo;\n\n"
            "import org.junit.jupiter.api.Test;\n"
            "import static org.junit.jupiter.api.Assertions.assertEquals;\n\n"
            "class CalcTest {\n" + cases + "\n}\n",
        },
        tests="src/test/java/demo/CalcTest.java",
        answer=(
            "src/main/java/demo/Calc.java",
            "package demo;\n\npublic class Calc {\n"
            "    public int add(int a, int b) {\n        return a + b;\n    }\n}\n",
        ),
        bare=[
            "sh",
            "-c",
            f"rm -rf {classes} && javac -d {classes} -cp {LAUNCHER} $(find src -name '*.java') "
            f"&& java -jar {LAUNCHER} --disable-banner -cp {classes} --scan-classpath {classes}",
        ],
        available=lambda: (
            None
            if shutil.which("javac") and Path(LAUNCHER).is_file()
            else "javac or the JUnit 5 console launcher not found"
        ),
    )


EXERCISES = {"python": _python, "javascript": _javascript, "java": _java}


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


def _make_repo(dest: Path, exercise: Exercise, server: ScriptedModelServer) -> Path:
    dest.mkdir(parents=True)
    for rel, text in exercise.files.items():
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        (dest / rel).write_text(text)
    _git(dest, "init", "-q", "-b", "main")
    _git(dest, "-c", "user.name=bench", "-c", "user.email=bench@example.invalid", "add", "-A")
    _git(dest, "-c", "user.name=bench", "-c", "user.email=bench@example.invalid",
         "commit", "-qm", "exercise")  # fmt: skip
    (dest / "council.yaml").write_text(cs.council_yaml(server, max_iterations=2))
    (dest / ".git" / "info" / "exclude").write_text("council.yaml\n")
    return dest


def _script(server: ScriptedModelServer, exercise: Exercise) -> None:
    path, text = exercise.answer
    fence = {"python": "python", "javascript": "javascript", "java": "java"}[exercise.language]
    server.script("pacer", cs.PLAN_REPLY)
    server.script("maven", cs.CONTEXT_REPLY)
    server.script("builder", f"Here is the implementation.\n\n{path}\n```{fence}\n{text}```\n")
    server.script("guardian", cs.REVIEW_REPLY)


@dataclass
class Sample:
    bare_s: float
    whole_s: float
    cpu_s: float  # CPU time of the whole run's process tree (user + system): steadier under load
    first_s: float
    test_runs: int
    model_s: float
    status: str
    notes: list[str] = field(default_factory=list)


def _bare(repo: Path, exercise: Exercise) -> float:
    path, text = exercise.answer
    answered = repo.parent / (repo.name + "-answered")
    shutil.copytree(repo, answered, ignore=shutil.ignore_patterns(".git", ".council"))
    (answered / path).write_text(text)
    started = time.perf_counter()
    done = subprocess.run(exercise.bare, cwd=answered, capture_output=True, text=True, check=False)
    took = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"bare {exercise.language} run failed:\n{done.stdout}{done.stderr}")
    return took


def _whole(repo: Path, exercise: Exercise, env: dict[str, str]) -> Sample:
    argv = [sys.executable, "-m", "council.cli", "run", "--tests", exercise.tests, TASK,
            "--repo", str(repo), "--json"]  # fmt: skip
    gateway_before = _gateway_cpu(env)
    cpu_before = _children_cpu()
    started = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=repo, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    first = None
    events = []
    assert proc.stdout is not None
    for line in proc.stdout:
        if first is None:
            first = time.perf_counter() - started
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    err = proc.stderr.read() if proc.stderr else ""
    proc.wait()
    whole = time.perf_counter() - started
    cpu = _children_cpu() - cpu_before + _gateway_cpu(env) - gateway_before
    outcome = next((e["outcome"] for e in events if "outcome" in e), {})
    status = outcome.get("status", f"exit {proc.returncode}")
    notes = [] if status == "green" else [outcome.get("reason", "") or err[-400:]]
    return Sample(
        bare_s=0.0,
        whole_s=whole,
        cpu_s=cpu,
        first_s=first or whole,
        test_runs=sum(1 for e in events if e.get("kind") == "tests_reported"),
        model_s=sum(e.get("latency_ms", 0.0) for e in events if e.get("kind") == "model_call")
        / 1000,
        status=status,
        notes=notes,
    )


def _gateway_pids(env: dict[str, str]) -> list[int]:
    folder = Path(env["COUNCIL_GATEWAY_DIR"])
    pids = []
    for lock in folder.glob("*.lock") if folder.is_dir() else []:
        try:
            pids.append(int(lock.read_text().strip()))
        except (OSError, ValueError):
            continue
    return pids


def _gateway_cpu(env: dict[str, str]) -> float:
    """CPU seconds used so far by the bench's gateway processes (not children of the bench)."""
    total = 0.0
    for pid in _gateway_pids(env):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def _stop_gateways(env: dict[str, str]) -> None:
    subprocess.run([sys.executable, "-m", "council.cli", "gateway", "stop"], env=env,
                   capture_output=True, check=False)  # fmt: skip


def _children_cpu() -> float:
    """CPU seconds used so far by waited-for child processes (and theirs)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _help_time(env: dict[str, str], runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "council.cli", "--help"], env=env,
                       capture_output=True, check=True)  # fmt: skip
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def _import_cpu(env: dict[str, str], runs: int) -> tuple[float, float]:
    """CPU seconds of `import litellm` alone, and of the modules its first call and token count
    import besides (what the run's background preload does), in fresh processes."""
    code = (
        "import time; t = time.process_time()\n"
        "from council.gateway import router\n"
        "litellm_module = router.litellm_module\n"
        # An older tree on PYTHONPATH (to compare) has no warm-up: 0 s for it.
        "warm_first_call = getattr(router, 'warm_first_call', lambda: None)\n"
        "litellm_module(); a = time.process_time() - t\n"
        "warm_first_call(); print(a, time.process_time() - t - a)"
    )
    samples = []
    for _ in range(runs):
        done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                              text=True, check=True)  # fmt: skip
        samples.append([float(x) for x in done.stdout.split()[-2:]])
    return (
        statistics.median(a for a, _ in samples),
        statistics.median(b for _, b in samples),
    )


def _env(cache: Path, bytecode: bool) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not any(s in k for s in ("API_KEY", "API_BASE", "TOKEN", "SECRET"))
    }
    env["COUNCIL_CACHE_DIR"] = str(cache)
    env["COUNCIL_GATEWAY_DIR"] = str(cache.parent / "gw")  # the bench's own gateway processes
    # tests.fakes from this tree; an outer PYTHONPATH (another tree's src/, to compare) after it.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    if not bytecode:
        # Python looks for compiled modules under this empty folder only, and with
        # PYTHONDONTWRITEBYTECODE writes none: every module compiled from source, every time
        # (a venv installed by uv without --compile-bytecode, where that variable is set).
        env["PYTHONPYCACHEPREFIX"] = str(cache.parent / "no-bytecode")
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


MODES = ("warm gateway", "in-process", "cold gateway")


def bench(
    language: str, runs: int, work: Path, env: dict[str, str]
) -> dict[str, list[Sample]] | str:
    exercise = EXERCISES[language]()
    why = exercise.available()
    if why:
        return why
    samples: dict[str, list[Sample]] = {mode: [] for mode in MODES}
    envs = {
        "in-process": {**env, "COUNCIL_GATEWAY": "off"},
        "cold gateway": {**env, "COUNCIL_GATEWAY": "on"},
        "warm gateway": {**env, "COUNCIL_GATEWAY": "on"},
    }
    with ScriptedModelServer() as server:
        # The first run builds the cached env: not measured. Then per round: in-process; with
        # no gateway process (it starts one); with the one it started.
        plan = [("warm-up", "in-process")] + [
            (str(i), mode) for i in range(1, runs + 1) for mode in MODES[1:] + MODES[:1]
        ]
        for n, (round_, mode) in enumerate(plan):
            if mode == "cold gateway":
                _stop_gateways(env)
            server.reset()
            _script(server, exercise)
            repo = _make_repo(work / f"{language}-{n}", exercise, server)
            sample = _whole(repo, exercise, envs[mode])
            sample.bare_s = _bare(repo, exercise)
            if round_ != "warm-up":
                samples[mode].append(sample)
            print(
                f"  {language} run {round_} ({mode}): {sample.status}, "
                f"whole {sample.whole_s:.2f}s, first event {sample.first_s:.2f}s, "
                f"bare {sample.bare_s:.2f}s",
                file=sys.stderr,
            )
    _stop_gateways(env)
    return samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--language", action="append", choices=sorted(EXERCISES))
    parser.add_argument(
        "--no-bytecode",
        action="store_true",
        help="ignore compiled modules (as before scripts/setup compiled them), to compare",
    )
    args = parser.parse_args()
    languages = args.language or list(EXERCISES)
    rows = []
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="council-bench-") as tmp:
        work = Path(tmp)
        env = _env(work / "cache", bytecode=not args.no_bytecode)
        try:
            help_s = _help_time(env, max(3, args.runs))
            import_s, first_call_s = _import_cpu(env, max(3, args.runs))
            for language in languages:
                result = bench(language, args.runs, work, env)
                rows.append((language, result))
        finally:
            _stop_gateways(env)  # none outlives the bench
    load_after = os.getloadavg()

    def med(samples: list[Sample], attr: str) -> float:
        return statistics.median(getattr(s, attr) for s in samples)

    print(
        f"\nload average (1 min) {load_before[0]:.2f} at the start, {load_after[0]:.2f} at the "
        f"end; bytecode {'ignored' if args.no_bytecode else 'used'}"
    )
    print(f"council --help: {help_s:.2f} s (median)")
    print(
        f"import litellm: {import_s:.2f} s CPU, then its first call's and token count's modules "
        f"{first_call_s:.2f} s CPU (a gateway process does both once; in-process runs each)\n"
    )
    print(
        "| language | LiteLLM | bare test | whole run | ratio | whole run CPU | first event "
        "| test runs | model calls |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for language, result in rows:
        if isinstance(result, str):
            print(f"| {language} | | skipped: {result} | | | | | | |")
            continue
        for mode, samples in result.items():
            bare, whole = med(samples, "bare_s"), med(samples, "whole_s")
            statuses = {s.status for s in samples}
            flag = "" if statuses == {"green"} else f" ({', '.join(sorted(statuses))})"
            print(
                f"| {language} | {mode} | {bare:.2f} s | {whole:.2f} s{flag} | "
                f"{whole / bare:.1f}x | {med(samples, 'cpu_s'):.2f} s | "
                f"{med(samples, 'first_s'):.2f} s | {med(samples, 'test_runs'):.0f} | "
                f"{med(samples, 'model_s'):.2f} s |"
            )
            for s in samples:
                for note in s.notes:
                    print(f"    {language} ({mode}): {note[:300]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
