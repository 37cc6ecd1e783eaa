"""Tests for context retrieval (issue 16): fused ranking, excerpts under budget, query parsing,
BM25 against a reference implementation."""

from __future__ import annotations

import subprocess
from pathlib import Path

import bm25s
import pytest

from council.context import build_context, count_tokens
from council.context.bm25 import bm25_scores
from council.context.lexicon import query_terms, text_terms
from council.context.query import Query, parse_frames


def _write(root: Path, files: dict[str, str]) -> None:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")


def _repo(root: Path, files: dict[str, str]) -> Path:
    _write(root, files)
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    return root


def _test_module(topic: str, count: int) -> str:
    """A test file with many tests whose names and bodies repeat the query's words."""
    body = [f"from pkg.{topic} import convert_units, Quantity\n\n"]
    for i in range(count):
        body.append(
            f"def test_convert_units_incompatible_{i}():\n"
            f"    # convert units between incompatible quantities, case {i}\n"
            f"    q = Quantity({i}, 'metre')\n"
            f"    assert convert_units(q, 'second') is None\n\n\n"
        )
    return "".join(body)


def _big_module(name: str, functions: int) -> str:
    parts = ['"""Core helpers: quantities, conversion, units and formatting."""\n\n']
    for i in range(functions):
        parts.append(
            f"def {name}_helper_{i}(value, unit):\n"
            f"    # convert the value to the unit when the units are compatible\n"
            f"    return value, unit\n\n\n"
        )
    return "".join(parts)


UNITS = '''"""Conversion between units of one dimension."""

FACTORS = {"metre": 1.0, "foot": 0.3048}


class Quantity:
    def __init__(self, value, unit):
        self.value = value
        self.unit = unit


def convert_units(quantity, target):
    if target not in FACTORS:
        raise ValueError(f"cannot convert {quantity.unit!r} to {target!r}: dimensions differ")
    return Quantity(quantity.value * FACTORS[quantity.unit] / FACTORS[target], target)
'''


@pytest.fixture
def test_heavy(tmp_path: Path) -> Path:
    files = {
        "pkg/__init__.py": "",
        "pkg/units.py": UNITS,
        "pkg/core.py": _big_module("core", 300),
        "pkg/formatting.py": _big_module("format", 120),
        "README.md": "# pkg\nConvert units. Incompatible units raise an error.\n",
    }
    for i in range(6):
        files[f"tests/test_units_{i}.py"] = _test_module("units", 150)
    return _repo(tmp_path / "heavy", files)


def test_error_message_finds_the_small_module_among_heavy_tests(test_heavy: Path) -> None:
    query = (
        "Converting feet to seconds crashes with\n"
        "ValueError: cannot convert 'foot' to 'second': dimensions differ\n"
        "I expected None like for incompatible units elsewhere."
    )
    ctx = build_context(test_heavy, query)
    assert ctx.ranked_paths[0] == "pkg/units.py"
    # The thousand matching test definitions no longer outweigh it; they rank below source.
    first_test = min(i for i, p in enumerate(ctx.ranked_paths) if p.startswith("tests/"))
    assert first_test > ctx.ranked_paths.index("pkg/core.py")
    assert "pkg/units.py" in ctx.files


def test_a_query_about_tests_lets_test_files_rise(test_heavy: Path) -> None:
    about_code = build_context(test_heavy, "incompatible units conversion", file_tokens=0)
    about_tests = build_context(
        test_heavy, "the tests for incompatible units conversion are slow", file_tokens=0
    )
    best_test = min(about_code.ranked_paths.index(f"tests/test_units_{i}.py") for i in range(6))
    best_test_now = min(
        about_tests.ranked_paths.index(f"tests/test_units_{i}.py") for i in range(6)
    )
    assert best_test_now < best_test


NAMED = {
    "http/headers.py": (
        "def parse_header(line):\n    return line.split(':', 1)\n\n\n"
        "def normalize_header_value(value):\n    return value.strip()\n\n\n"
        + "".join(
            f"def header_rule_{i}(header):\n    # normalize the header value\n"
            f"    return normalize_header_value(header)\n\n\n"
            for i in range(80)
        )
    ),
    "http/charset.py": (
        "def idiff(a, b):\n    # symmetric difference of two charsets\n    return set(a) ^ set(b)\n"
    ),
    "http/client.py": "".join(
        f"def send_{i}(header, charset):\n    return header, charset\n\n\n" for i in range(60)
    ),
}


def test_a_named_function_ranks_its_file_first(tmp_path: Path) -> None:
    root = _repo(tmp_path / "named", NAMED)
    ctx = build_context(root, "idiff returns the wrong header charset difference", file_tokens=0)
    assert ctx.ranked_paths[0] == "http/charset.py"


def test_a_quoted_string_literal_finds_its_file(tmp_path: Path) -> None:
    root = _repo(
        tmp_path / "quoted",
        {
            **NAMED,
            "http/cli.py": (
                "import sys\n\n\ndef main(argv):\n    if '--profile' not in argv:\n"
                "        sys.exit('no profile selected, pass one with --profile')\n"
            ),
            "http/profiles.py": "".join(
                f"def profile_{i}(selected):\n    # the selected profile\n    return selected\n\n\n"
                for i in range(50)
            ),
        },
    )
    query = 'It says "no profile selected, pass one with --profile" although I passed one'
    ctx = build_context(root, query, file_tokens=0)
    assert ctx.ranked_paths[0] == "http/cli.py"


def test_vendored_copies_rank_below_the_projects_own_code(tmp_path: Path) -> None:
    """pip-like: a vendored HTTP library full of retry words next to the project's small retry
    helper. The project's own file is the one handed over; a query about the vendored copy
    still finds it."""
    vendored = "".join(
        f"class Retry{i}:\n    # Retry a connection error with backoff; retries exhausted.\n"
        f"    def retry_connection_error(self, retries, backoff):\n        return retries\n\n\n"
        for i in range(40)
    )
    root = _repo(
        tmp_path / "vendoring",
        {
            "tool/_vendor/urllib9/retry.py": vendored,
            "tool/_vendor/urllib9/__init__.py": "",
            "tool/net/retrying.py": (
                "def with_retries(call, retries):\n"
                "    # give up after `retries` connection errors\n"
                "    for _ in range(retries):\n        call()\n"
            ),
            "tool/cli.py": "def main():\n    pass\n",
        },
    )
    ctx = build_context(root, "it gives up after one connection error even with --retries 10")
    assert ctx.ranked_paths[0] == "tool/net/retrying.py"
    about = build_context(root, "the vendored urllib9 retry gives up after one connection error")
    assert about.ranked_paths[0] == "tool/_vendor/urllib9/retry.py"


def test_traceback_frames_rank_the_innermost_repo_file_first(tmp_path: Path) -> None:
    root = _repo(tmp_path / "tb", NAMED)
    query = (
        "Traceback (most recent call last):\n"
        '  File "/home/me/venv/lib/python3.12/site-packages/http/client.py", line 5, in send_1\n'
        '  File "/home/me/venv/lib/python3.12/site-packages/http/charset.py", line 3, in idiff\n'
        "TypeError: 'NoneType' object is not iterable\n"
    )
    ctx = build_context(root, query, file_tokens=0)
    assert ctx.ranked_paths[:2] == ["http/charset.py", "http/client.py"]


LEDGER_FUNCS = [
    f"def ledger_entry_{i}(book, amount):\n"
    f"    total = book.balance + amount\n"
    f"    book.history.append(total)\n"
    f"    return total\n\n\n"
    for i in range(120)
]
LEDGER = (
    "import decimal\nimport logging\n\nlog = logging.getLogger(__name__)\n\n\n"
    + "".join(LEDGER_FUNCS[:60])
    + "class Book:\n"
    "    def __init__(self):\n        self.balance = 0\n        self.history = []\n\n"
    "    def apply_interest(self, rate):\n"
    "        # compound interest, rounded half-even to cents\n"
    "        interest = decimal.Decimal(self.balance) * rate\n"
    "        self.balance += interest.quantize(decimal.Decimal('0.01'))\n"
    "        return self.balance\n\n\n" + "".join(LEDGER_FUNCS[60:])
)


def test_budget_carries_the_relevant_function_as_an_excerpt(tmp_path: Path) -> None:
    root = _repo(tmp_path / "ledger", {"bank/ledger.py": LEDGER, "bank/util.py": "X = 1\n"})
    budget = 400
    assert count_tokens(LEDGER) > 10 * budget
    ctx = build_context(
        root, "compound interest is rounded wrongly to cents", file_tokens=budget, map_tokens=0
    )
    assert ctx.ranked_paths[0] == "bank/ledger.py"
    assert ctx.file_tokens == sum(count_tokens(t) for t in ctx.files.values()) <= budget
    excerpt = ctx.excerpts["bank/ledger.py"]
    assert ctx.files["bank/ledger.py"] == excerpt.text
    assert excerpt.definitions[0] == "apply_interest"
    text = excerpt.text
    # The whole method with its class line and the imports; not the unrelated functions.
    method_start = LEDGER.index("    def apply_interest")
    method = LEDGER[method_start : LEDGER.index("\n\n\n", method_start)]
    assert method in text
    assert "class Book:" in text and "import decimal" in text
    assert "ledger_entry_3(" not in text
    # Every shown line is the file's line at that place: edits can quote them verbatim.
    lines = LEDGER.splitlines()
    shown = [n for a, b in excerpt.ranges for n in range(a, b + 1)]
    assert [line for line in text.splitlines() if line != "⋮"] == [lines[n - 1] for n in shown]
    assert excerpt.label.startswith("bank/ledger.py (excerpt: lines 1-")


@pytest.mark.parametrize("budget", [0, 30, 80, 200, 1000])
def test_excerpts_and_files_fit_every_budget(test_heavy: Path, budget: int) -> None:
    ctx = build_context(test_heavy, "convert units incompatible", file_tokens=budget)
    assert ctx.file_tokens == sum(count_tokens(t) for t in ctx.files.values()) <= budget


def test_map_lists_top_files_with_relevant_definitions_first(tmp_path: Path) -> None:
    root = _repo(tmp_path / "ledger", {"bank/ledger.py": LEDGER, "bank/util.py": "X = 1\n"})
    ctx = build_context(root, "compound interest rounded to cents", map_tokens=60, file_tokens=0)
    assert ctx.repo_map.startswith("bank/ledger.py:\n")
    assert "def apply_interest(self, rate):" in ctx.repo_map
    assert ctx.definitions["bank/ledger.py"][0] == "apply_interest"


# --- parts ----------------------------------------------------------------------------------


def test_identifiers_are_split_and_kept_whole() -> None:
    terms = text_terms("def getUserProfile(self): return self.user_profiles['x']  # HTTPError")
    assert terms["user"] == 2 and terms["profile"] == 2
    assert terms["getuserprofile"] == 1 and terms["user_profiles"] == 1
    assert terms["http"] == 1 and terms["error"] == 1
    assert query_terms("Please add pandas.DataFrame.pivot_table") == [
        "panda",
        "data",
        "frame",
        "dataframe",
        "pivot",
        "table",
        "pivot_table",
    ]


def test_query_parse_finds_phrases_identifiers_paths_and_frames() -> None:
    q = Query.parse(
        "Running `council run` on src/app/views.py fails:\n"
        '  File "/x/site-packages/app/models.py", line 42, in save\n'
        "KeyError: missing primary key for 'Order'\n"
        "See app.models.Order.save and tests/test_models.py:17\n"
    )
    assert "council run" in q.phrases and "missing primary key for 'Order'" in q.phrases
    assert {"save", "Order", "models"} <= q.identifiers
    assert "src/app/views.py" in q.paths and "app/models/Order/save" in q.paths
    assert [(f.path, f.line, f.function) for f in q.frames] == [
        ("/x/site-packages/app/models.py", 42, "save"),
        ("tests/test_models.py", 17, ""),
    ]
    assert q.about_tests and not q.about_docs


def test_java_frames_put_the_innermost_call_last() -> None:
    frames = parse_frames(
        "java.lang.NullPointerException\n"
        "    at shop.OrderService.total(OrderService.java:12)\n"
        "    at shop.Main.main(Main.java:5)\n"
    )
    assert [f.path for f in frames] == ["shop/Main.java", "shop/OrderService.java"]


def test_bm25_scores_match_bm25s_lucene() -> None:
    corpus = [
        "def parse_header(line): return line.split(':')",
        "class HeaderParser: parse header lines of a request",
        "def send(request, charset): return request",
        "the quick brown fox",
    ]
    docs = {str(i): text_terms(text) for i, text in enumerate(corpus)}
    tokens = [[t for t, n in docs[str(i)].items() for _ in range(n)] for i in range(len(corpus))]
    reference = bm25s.BM25(method="lucene", k1=1.5, b=0.75)
    reference.index(tokens, show_progress=False)
    query = ["parse", "header", "request"]
    expected = reference.get_scores(query)
    ours = bm25_scores(query, docs)
    for i, score in enumerate(expected):
        assert ours.get(str(i), 0.0) == pytest.approx(float(score), rel=1e-5)


# --- the Maven step in a real run -------------------------------------------------------------


def _legacy_module() -> str:
    """A module far over the file budget; one function is what the feature is about."""
    parts = ['"""Legacy user helpers."""\n\nimport datetime\n\n\n']
    for i in range(250):
        parts.append(
            f"def legacy_audit_{i}(record):\n"
            f"    # audit trail entry {i} for the back office\n"
            f"    return {{'entry': {i}, 'record': record}}\n\n\n"
        )
        if i == 125:
            parts.append(
                "def profile_join_date_iso(user):\n"
                "    # the user's profile: username, email, full_name and join_date as ISO date\n"
                "    return datetime.date.fromisoformat(user['join_date']).isoformat()\n\n\n"
            )
    return "".join(parts)


@pytest.mark.slow
def test_maven_sees_candidates_and_builder_gets_a_large_module_as_an_excerpt(
    tmp_path, tmp_path_factory, monkeypatch, model_server
) -> None:
    import json

    from council.config import parse_config
    from council.events import Emitter
    from council.pipelines.run import TddFlow
    from council.store import Store
    from tests.fakes import council_script as cs

    monkeypatch.setenv("COUNCIL_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "council-cache"))
    project = cs.make_repo(tmp_path / "profile-service")
    legacy = _legacy_module()
    (project / "app" / "legacy_users.py").write_text(legacy)
    git = ["git", "-C", str(project), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "legacy"], check=True)
    assert count_tokens(legacy) > 8000  # the default file budget

    cs.script_happy_path(model_server)
    config = json.loads(cs.council_yaml(model_server))
    pipeline = TddFlow.start(
        repo=project,
        feature=cs.FEATURE,
        config=parse_config(json.dumps(config)),
        store=Store.for_repo(project),
        emit=Emitter(),
    )
    outcome = pipeline.execute()
    assert outcome.status == "green", outcome.reason

    maven = model_server.requests_for("maven")[0]["messages"][-1]["content"]
    assert "Candidate files, most relevant first" in maven
    assert "app/legacy_users.py: profile_join_date_iso" in maven
    builder = model_server.requests_for("builder")[0]["messages"][-1]["content"]
    assert "app/legacy_users.py (excerpt: lines" in builder
    assert "def profile_join_date_iso(user):" in builder
    assert "return {'entry': 3, 'record': record}" not in builder  # the map lists it; no body
    # Maven's picks still come whole.
    assert (project / "app" / "models.py").read_text() in builder


def test_a_huge_pasted_blob_is_parsed_in_linear_time(tmp_path: Path) -> None:
    # Each of these made a pattern quadratic before (100 kB of them took minutes).
    blobs = ["a" * 200_000, "a." * 100_000, "Aa" * 100_000 + ": x", "a/" * 100_000]
    for blob in blobs:
        q = Query.parse(blob)
        assert len(q.terms) <= 400 and len(q.names) <= 400
    words = " ".join(f"word{i}x" for i in range(20_000))
    root = _repo(tmp_path / "named", NAMED)
    ctx = build_context(root, f"idiff is wrong\n{words}", file_tokens=0)
    assert ctx.ranked_paths[0] == "http/charset.py"


def test_java_excerpt_keeps_the_method_its_annotations_and_class_line(tmp_path: Path) -> None:
    methods = "".join(
        f"    public int audit{i}(int x) {{\n        return x + {i};\n    }}\n\n"
        for i in range(200)
    )
    source = (
        "package shop;\n\nimport java.math.BigDecimal;\n\npublic class Ledger {\n"
        + methods
        + "    // Rounds half-even to cents.\n    @Override\n"
        "    public BigDecimal compoundInterest(BigDecimal balance, BigDecimal rate) {\n"
        "        return balance.multiply(rate).setScale(2, java.math.RoundingMode.HALF_EVEN);\n"
        "    }\n" + methods.replace("audit", "check") + "}\n"
    )
    root = _repo(tmp_path / "java", {"src/shop/Ledger.java": source})
    ctx = build_context(root, "compoundInterest rounds to cents wrongly", file_tokens=300)
    excerpt = ctx.excerpts["src/shop/Ledger.java"]
    assert excerpt.definitions[0] == "compoundInterest"
    text = excerpt.text
    assert "public class Ledger {" in text and "import java.math.BigDecimal;" in text
    assert "    // Rounds half-even to cents.\n    @Override\n    public BigDecimal" in text
    assert "setScale(2, java.math.RoundingMode.HALF_EVEN);\n    }\n" in text
    assert "audit7" not in text and count_tokens(text) <= 300
