"""Localisation bench: does Maven's context find the file a bug report is about?

Real code bases come from PyPI (pinned versions, installed with uv into a scratch venv; the
package folder of site-packages is copied into a git repository of its own), plus this
checkout with pairs taken from its own git history (a commit's subject -> the one source file
it changed). Each case is a query written the way users report bugs: an error message the code
raises, a behaviour of a public function, a traceback, an option name; some name no
identifier at all.

For each case it prints recall@1/3/5/10 and MRR of the council's ranking and of a plain BM25
baseline (bm25s over file contents, its own tokenizer and English stopwords) side by side,
how often the target file (or, where the case names it, the changed function) is inside the
default file budget, and timings (cold index per repository, warm queries).

The cases were written before any ranking result was seen. Every other case of a repository is
"dev", the rest "held-out"; ranking weights may be tuned on dev only, so the held-out figures
are the honest ones. Usage:

    python bench/context_recall.py [--quick] [--work DIR] [--verbose]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import bm25s

from council.config import ContextConfig
from council.context import build_context
from council.context.sources import read_text_file

PACKAGES = {
    "requests": "2.34.2",
    "click": "8.5.1",
    "rich": "15.0.0",
    "sympy": "1.14.0",
    "pandas": "3.1.1",
}
QUICK = ("requests", "click", "rich")
COUNCIL = "council"  # this checkout
HISTORY_CASES = 10
# History pairs come from commits up to this one, so the cases do not move as main grows.
HISTORY_REF = "111a15338c0f55ed2e0a2f1fcd1f1c7ae5c1f01f"
KS = (1, 3, 5, 10)


@dataclass(frozen=True)
class Case:
    repo: str
    query: str
    targets: tuple[str, ...]  # any of them counts
    function: str = ""  # the definition the fix changes, when known


def _c(repo: str, query: str, *targets: str, function: str = "") -> Case:
    return Case(repo, query, targets, function)


CASES = [
    # --- requests ---------------------------------------------------------------------------
    _c(
        "requests",
        "requests.get('http://') raises InvalidURL: Invalid URL 'http://': No host supplied, "
        "but for 'http://:80' I get a confusing LocationParseError instead",
        "requests/models.py",
        function="prepare_url",
    ),
    _c(
        "requests",
        "Proxies from HTTPS_PROXY are used even though I set session.trust_env = False before "
        "sending a prepared request",
        "requests/sessions.py",
        function="rebuild_proxies",
    ),
    _c(
        "requests",
        "HTTPDigestAuth fails against a server that only offers qop=auth-int",
        "requests/auth.py",
        function="build_digest_header",
    ),
    _c(
        "requests",
        "A text/csv response without a charset is decoded as ISO-8859-1 and mangles my umlauts",
        "requests/utils.py",
        function="get_encoding_from_headers",
    ),
    _c(
        "requests",
        "Mounting an HTTPAdapter with max_retries=3 does not retry when the connection is reset",
        "requests/adapters.py",
    ),
    _c(
        "requests",
        "response.iter_lines() splits a line in two when the delimiter falls on a chunk boundary",
        "requests/models.py",
        function="iter_lines",
    ),
    # --- click ------------------------------------------------------------------------------
    _c(
        "click",
        "With @click.option('--tag', multiple=True, default=('a', 'b')) the --help output shows "
        "the default as a Python tuple",
        "click/core.py",
    ),
    _c(
        "click",
        "Typo in an option prints Error: No such option '--verbos' without suggesting --verbose",
        "click/exceptions.py",
        "click/parser.py",
    ),
    _c(
        "click",
        "click.prompt(hide_input=True, confirmation_prompt=True) shows the repeat prompt twice",
        "click/termui.py",
        function="prompt",
    ),
    _c(
        "click",
        "CliRunner.invoke mixes what the command writes to stderr into result.output",
        "click/testing.py",
    ),
    _c(
        "click",
        "click.Path(exists=True) says the file does not exist for a broken symlink, "
        "it should say the link target is missing",
        "click/types.py",
    ),
    _c(
        "click",
        "the progress bar never reaches 100% when the length is not known in advance",
        "click/_termui_impl.py",
    ),
    # --- rich -------------------------------------------------------------------------------
    _c(
        "rich",
        "rich.markup.MarkupError: closing tag '[/bold]' at position 12 doesn't match any open "
        "tag, although the text escapes the bracket with a backslash",
        "rich/markup.py",
        function="render",
    ),
    _c(
        "rich",
        "TransferSpeedColumn shows 1000.0 kB/s instead of 1.0 MB/s",
        "rich/progress.py",
        "rich/filesize.py",
    ),
    _c(
        "rich",
        "Table(show_lines=True) draws an extra separator line under the footer",
        "rich/table.py",
    ),
    _c(
        "rich",
        "traceback.install(show_locals=True, suppress=[click]) still prints the locals of the "
        "suppressed frames",
        "rich/traceback.py",
    ),
    _c(
        "rich",
        "Syntax(code, 'python', line_numbers=True) misaligns the code when it contains tabs",
        "rich/syntax.py",
    ),
    _c(
        "rich",
        "the colour of a hex style like #ff0000 is downgraded badly on a 256-colour terminal",
        "rich/color.py",
    ),
    # --- sympy ------------------------------------------------------------------------------
    _c(
        "sympy",
        "idiff gives a wrong second derivative when y is given as a list of dependent symbols",
        "sympy/geometry/util.py",
        function="idiff",
    ),
    _c(
        "sympy",
        "Matrix([[1, 2], [2, 4]]).inv(method='LU') raises NonInvertibleMatrixError: Matrix det "
        "== 0; not invertible. but inv_mod gives a different message",
        "sympy/matrices/inverse.py",
    ),
    _c(
        "sympy",
        "latex() of a partial derivative of a function of two variables prints d instead of "
        "\\partial",
        "sympy/printing/latex.py",
        function="_print_Derivative",
    ),
    _c(
        "sympy",
        "nsimplify(0.1, rational=True) returns 3602879701896397/36028797018963968 instead of 1/10",
        "sympy/simplify/simplify.py",
        function="nsimplify",
    ),
    _c(
        "sympy",
        "factorint takes minutes for a number with two large prime factors, even with use_ecm=True",
        "sympy/ntheory/factor_.py",
        function="factorint",
    ),
    _c(
        "sympy",
        "lambdify(x, Piecewise((1, x > 0), (0, True)), modules='numpy') fails on arrays",
        "sympy/utilities/lambdify.py",
        "sympy/printing/numpy.py",
        "sympy/printing/pycode.py",
    ),
    _c(
        "sympy",
        "sympify('2x+1') raises SympifyError: Sympify of expression 'could not parse '2x+1'' "
        "failed; it should suggest implicit multiplication",
        "sympy/core/sympify.py",
        function="sympify",
    ),
    _c(
        "sympy",
        "Pretty printing a Piecewise puts the conditions on the wrong lines when a piece is a "
        "fraction",
        "sympy/printing/pretty/pretty.py",
        function="_print_Piecewise",
    ),
    _c(
        "sympy",
        "Poly.all_roots() is very slow for a degree 10 polynomial with integer coefficients",
        "sympy/polys/polytools.py",
        "sympy/polys/rootoftools.py",
    ),
    _c(
        "sympy",
        "solveset(sin(x) - S.Half, x, S.Reals) returns a ConditionSet instead of the two "
        "families of solutions",
        "sympy/solvers/solveset.py",
    ),
    _c(
        "sympy",
        "Traceback (most recent call last):\n"
        '  File "/home/u/proj/run.py", line 4, in <module>\n'
        "    print(limit(sin(x)/x, x, oo))\n"
        '  File "/home/u/.venv/lib/python3.12/site-packages/sympy/series/limits.py", '
        "line 64, in limit\n"
        "    return Limit(e, z, z0, dir).doit(deep=False)\n"
        '  File "/home/u/.venv/lib/python3.12/site-packages/sympy/series/gruntz.py", '
        "line 707, in gruntz\n"
        "    r = limitinf(e, z)\n"
        "RecursionError: maximum recursion depth exceeded",
        "sympy/series/gruntz.py",
        function="gruntz",
    ),
    _c(
        "sympy",
        "The determinant of a symbolic 5x5 matrix takes forever with the default method",
        "sympy/matrices/determinant.py",
    ),
    # --- pandas -----------------------------------------------------------------------------
    _c(
        "pandas",
        "df.merge(s) with an unnamed Series raises ValueError: Cannot merge a Series without a "
        "name; it could use the column name 0",
        "pandas/core/reshape/merge.py",
    ),
    _c(
        "pandas",
        "pd.Index(np.zeros((2, 2))) raises ValueError: Index data must be 1-dimensional, but "
        "a 2-d array with one column should work",
        "pandas/core/indexes/base.py",
    ),
    _c(
        "pandas",
        "to_csv(lineterminator='\\r\\n') still writes \\n inside quoted fields",
        "pandas/io/formats/csvs.py",
    ),
    _c(
        "pandas",
        "pd.cut(values, bins=[0, 1, 1, 2]) raises Bin edges must be unique even with "
        "duplicates='drop' when labels are given",
        "pandas/core/reshape/tile.py",
    ),
    _c(
        "pandas",
        "pivot_table(margins=True) on a categorical column drops the All row",
        "pandas/core/reshape/pivot.py",
        function="pivot_table",
    ),
    _c(
        "pandas",
        "rolling('2D') on a DatetimeIndex that is sorted descending raises ValueError: index "
        "values must be monotonic",
        "pandas/core/window/rolling.py",
    ),
    _c(
        "pandas",
        "df.explode(['a', 'b']) raises ValueError: columns must have matching element counts "
        "when one cell is an empty list",
        "pandas/core/frame.py",
        function="explode",
    ),
    _c(
        "pandas",
        "json_normalize(data, record_path=['items']) raises KeyError when one record has no "
        "items key instead of skipping it",
        "pandas/io/json/_normalize.py",
        function="json_normalize",
    ),
    _c(
        "pandas",
        "assert_frame_equal(check_exact=False) still reports values are different for float "
        "columns that differ in the last digit",
        "pandas/_testing/asserters.py",
    ),
    _c(
        "pandas",
        "Styler.format(precision=2) is ignored for float columns when exporting with to_html",
        "pandas/io/formats/style_render.py",
    ),
    _c(
        "pandas",
        "to_datetime(errors='coerce', format='%Y-%m-%d') turns valid ISO dates with a time "
        "part into NaT",
        "pandas/core/tools/datetimes.py",
        "pandas/_libs/tslibs/strptime.pyi",
    ),
    _c(
        "pandas",
        "Series.str.split(expand=True) returns fewer columns than the longest split when the "
        "last rows are missing values",
        "pandas/core/strings/accessor.py",
    ),
    _c(
        "pandas",
        "read_excel(sheet_name=None) on a workbook with an empty sheet raises instead of "
        "returning an empty frame",
        "pandas/io/excel/_base.py",
    ),
    _c(
        "pandas",
        "when I group by two keys and one has missing values, the group with the missing key "
        "disappears even though I asked to keep it",
        "pandas/core/groupby/groupby.py",
        "pandas/core/groupby/grouper.py",
        "pandas/core/groupby/ops.py",
    ),
]


# --- setup -----------------------------------------------------------------------------------


def prepare_repos(work: Path, names: list[str]) -> dict[str, Path]:
    """A git repository per package holding its installed sources, made once per work dir."""
    venv = work / "venv"
    if not (venv / "bin" / "python").exists():
        subprocess.run(["uv", "venv", "-q", str(venv)], check=True)
    roots = {}
    for name in names:
        root = work / "repos" / f"{name}-{PACKAGES[name]}"
        roots[name] = root
        if (root / ".git").is_dir():
            continue
        pinned = f"{name}=={PACKAGES[name]}"
        env = {**os.environ, "VIRTUAL_ENV": str(venv)}
        # Only the sources matter: no dependencies, no compiled extras needed to import.
        subprocess.run(["uv", "pip", "install", "-q", "--no-deps", pinned], check=True, env=env)
        site = next((venv / "lib").glob("python*/site-packages"))
        shutil.rmtree(root, ignore_errors=True)
        shutil.copytree(site / name, root / name, ignore=shutil.ignore_patterns("__pycache__"))
        git = ["git", "-C", str(root)]
        subprocess.run([*git, "init", "-q"], check=True)
        subprocess.run([*git, "add", "-A"], check=True)
        subprocess.run(
            [*git, "-c", "user.name=bench", "-c", "user.email=b@b", "commit", "-qm", "src"],
            check=True,
        )
    return roots


def history_cases(checkout: Path, limit: int) -> list[Case]:
    """This project's own fixes and features that changed exactly one source file."""
    log = subprocess.run(
        ["git", "-C", str(checkout), "log", "--no-merges", "--format=%H%x00%s", HISTORY_REF],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    cases = []
    for line in log.splitlines():
        sha, _, subject = line.partition("\0")
        kind = subject.split("(", 1)[0].split(":", 1)[0]
        if kind not in {"fix", "feat"}:
            continue
        changed = subprocess.run(
            ["git", "-C", str(checkout), "show", "--name-only", "--format=", sha],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.split()
        sources = [p for p in changed if p.startswith("src/") and p.endswith(".py")]
        if len(sources) != 1 or not (checkout / sources[0]).is_file():
            continue
        # Users do not write conventional-commit scopes: keep only the description.
        description = subject.split(":", 1)[1].strip() if ":" in subject else subject
        cases.append(Case(COUNCIL, description, (sources[0],)))
        if len(cases) >= limit:
            break
    return cases


# --- measuring -------------------------------------------------------------------------------


@dataclass
class Result:
    case: Case
    split: str
    council_rank: int | None  # 1-based, None when not ranked at all
    baseline_rank: int | None
    in_budget: bool
    seconds: float
    cpu_seconds: float  # this process's CPU time: what an idle machine's wall time would be


class Baseline:
    """Plain BM25 over whole file contents with bm25s's own tokenizer."""

    def __init__(self, root: Path, paths: list[str]) -> None:
        self.paths = []
        texts = []
        for p in paths:
            data = read_text_file(root, p)
            if data is not None:
                self.paths.append(p)
                texts.append(data.decode("utf-8", errors="replace"))
        tokens = bm25s.tokenize(texts, stopwords="en", return_ids=False, show_progress=False)
        self.retriever = bm25s.BM25()
        self.retriever.index(tokens, show_progress=False)
        self.vocab = set(self.retriever.vocab_dict)

    def ranking(self, query: str) -> list[str]:
        words = bm25s.tokenize([query], stopwords="en", return_ids=False, show_progress=False)
        known = [w for w in words[0] if w in self.vocab]
        if not known:
            return []
        scores = self.retriever.get_scores(known)
        order = sorted(range(len(self.paths)), key=lambda i: (-scores[i], self.paths[i]))
        return [self.paths[i] for i in order if scores[i] > 0]


def first_rank(ranked: list[str], targets: tuple[str, ...]) -> int | None:
    positions = [ranked.index(t) + 1 for t in targets if t in ranked]
    return min(positions) if positions else None


def in_budget(ctx, case: Case) -> bool:
    """The target is among the files handed over, and when the case names the changed
    function and the file came as an excerpt, that function is in it."""
    for target in case.targets:
        if target not in ctx.files:
            continue
        excerpt = ctx.excerpts.get(target)
        if excerpt is None or not case.function or case.function in excerpt.definitions:
            return True
        if f"def {case.function}(" in excerpt.text or f"class {case.function}" in excerpt.text:
            return True
    return False


def run(
    cases: list[Case], roots: dict[str, Path], cache: Path, verbose: bool, only: str | None
) -> list[Result]:
    defaults = ContextConfig()
    results = []
    seen: dict[str, int] = {}
    baselines: dict[str, Baseline] = {}
    for case in cases:
        root = roots[case.repo]
        index = seen.get(case.repo, 0)
        seen[case.repo] = index + 1
        split = "dev" if index % 2 == 0 else "held-out"
        if only and split != only:
            continue
        start, cpu = time.perf_counter(), time.process_time()
        ctx = build_context(
            root,
            case.query,
            map_tokens=defaults.map_tokens,
            file_tokens=defaults.file_tokens,
            cache_dir=cache / case.repo,
        )
        seconds = time.perf_counter() - start
        cpu_seconds = time.process_time() - cpu
        if case.repo not in baselines:
            baselines[case.repo] = Baseline(root, ctx.ranked_paths)
        baseline = baselines[case.repo].ranking(case.query)
        result = Result(
            case,
            split,
            first_rank(ctx.ranked_paths, case.targets),
            first_rank(baseline, case.targets),
            in_budget(ctx, case),
            seconds,
            cpu_seconds,
        )
        results.append(result)
        if verbose:
            print(
                f"{case.repo:9} {split:8} council={result.council_rank} "
                f"bm25={result.baseline_rank} budget={'yes' if result.in_budget else 'no '} "
                f"{seconds:5.2f}s  {case.query[:70]!r}",
                flush=True,
            )
    return results


Timing = tuple[float, float, float, float, int]  # cold wall, cold CPU, warm wall, warm CPU, files


def index_timings(roots: dict[str, Path], work: Path) -> dict[str, Timing]:
    """Per repository: a cold build (empty cache), a warm one, and the number of files."""
    timings = {}
    for name, root in roots.items():
        cache = Path(tempfile.mkdtemp(dir=work, prefix="cold-"))
        query = "the option is ignored and an error is raised"
        start, cpu = time.perf_counter(), time.process_time()
        ctx = build_context(root, query, cache_dir=cache)
        cold, cold_cpu = time.perf_counter() - start, time.process_time() - cpu
        start, cpu = time.perf_counter(), time.process_time()
        build_context(root, query, cache_dir=cache)
        warm, warm_cpu = time.perf_counter() - start, time.process_time() - cpu
        timings[name] = (cold, cold_cpu, warm, warm_cpu, ctx.stats.files_seen)
        shutil.rmtree(cache, ignore_errors=True)
    return timings


# --- report ----------------------------------------------------------------------------------


def summary(results: list[Result]) -> dict[str, float]:
    n = len(results) or 1
    out = {}
    for who in ("council", "baseline"):
        ranks = [getattr(r, f"{who}_rank") for r in results]
        for k in KS:
            out[f"{who} R@{k}"] = sum(1 for r in ranks if r is not None and r <= k) / n
        out[f"{who} MRR"] = sum(1 / r for r in ranks if r is not None) / n
    out["in budget"] = sum(1 for r in results if r.in_budget) / n
    return out


def print_report(results: list[Result], timings: dict[str, Timing]) -> None:
    groups = {
        "all": results,
        "dev": [r for r in results if r.split == "dev"],
        "held-out": [r for r in results if r.split == "held-out"],
    }
    for repo in dict.fromkeys(r.case.repo for r in results):
        groups[repo] = [r for r in results if r.case.repo == repo]
    header = "cases     n  | " + "  ".join(f"R@{k:<2}" for k in KS) + "  MRR  "
    print(f"\n{'':14}{'council':^34}| {'plain BM25 (bm25s)':^34}| in budget")
    print(f"{'':14}{header}| {header[14:]}|")
    for name, group in groups.items():
        if not group:
            continue
        s = summary(group)
        council = "  ".join(f"{s[f'council R@{k}']:.2f}" for k in KS) + f"  {s['council MRR']:.2f}"
        base = "  ".join(f"{s[f'baseline R@{k}']:.2f}" for k in KS) + f"  {s['baseline MRR']:.2f}"
        print(f"{name:9} {len(group):3}  | {council} | {base} | {s['in budget']:.2f}")
    seconds = [r.seconds for r in results]
    cpu = [r.cpu_seconds for r in results]
    print(
        f"\ncontext per query (the first per repository builds its index): median "
        f"{statistics.median(seconds):.2f}s wall / {statistics.median(cpu):.2f}s CPU, "
        f"max {max(seconds):.2f}s wall / {max(cpu):.2f}s CPU over {len(seconds)} queries"
    )
    for name, (cold, cold_cpu, warm, warm_cpu, files) in timings.items():
        print(
            f"index {name:9} {files:5} files: cold {cold:6.2f}s wall / {cold_cpu:6.2f}s CPU, "
            f"warm {warm:5.2f}s wall / {warm_cpu:5.2f}s CPU"
        )
    load = os.getloadavg()[0]
    print(f"load average at the end: {load:.1f} on {os.cpu_count()} cores (timings scale with it)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="only requests, click and rich")
    parser.add_argument("--work", type=Path, help="scratch folder (default: a cache folder)")
    parser.add_argument("--verbose", action="store_true", help="one line per case")
    parser.add_argument("--no-timings", action="store_true", help="skip cold/warm index runs")
    parser.add_argument("--split", choices=["dev", "held-out"], help="run only these cases")
    args = parser.parse_args()
    work = args.work or Path.home() / ".cache" / "council" / "bench-context"
    work.mkdir(parents=True, exist_ok=True)
    names = list(QUICK if args.quick else PACKAGES)
    roots = prepare_repos(work, names)
    checkout = Path(__file__).resolve().parents[1]
    cases = [c for c in CASES if c.repo in roots]
    if not args.quick and (checkout / ".git").exists():
        roots[COUNCIL] = checkout
        cases += history_cases(checkout, HISTORY_CASES)
    cache = work / "index-cache"
    results = run(cases, roots, cache, args.verbose, args.split)
    timings = (
        {}
        if args.no_timings
        else index_timings({n: r for n, r in roots.items() if n != COUNCIL}, work)
    )
    print_report(results, timings)
    return 0


if __name__ == "__main__":
    sys.exit(main())
