"""Tests for Maven's context: tag extraction, ranking, budgets, cache and file selection."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from council.context import Tag, build_context, count_tokens, extract_tags
from council.context.ranking import personalised_pagerank, split_words


def _defs(tags: list[Tag]) -> dict[str, Tag]:
    return {t.name: t for t in tags if t.kind == "def"}


def _refs(tags: list[Tag]) -> set[str]:
    return {t.name for t in tags if t.kind == "ref"}


def _write(root: Path, files: dict[str, str | bytes]) -> None:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")


def _git_init(root: Path) -> None:
    subprocess.run(["git", "init", "-q", str(root)], check=True)


# --- extraction ---------------------------------------------------------------------------


def test_python_class_method_function_and_calls() -> None:
    source = b"""from util import helper

class Profile(Base):
    def display_name(
        self,
        style: Style,
    ) -> str:
        return helper(self.name).title()

def get_profile(user_id: int) -> Profile:
    return Profile()
"""
    tags = extract_tags("app/profile.py", source, "python")
    defs = _defs(tags)
    assert defs["Profile"].category == "class" and defs["Profile"].line == 3
    assert defs["Profile"].signature == "class Profile(Base):"
    assert defs["display_name"].category == "method"
    assert defs["display_name"].signature == "def display_name(self, style: Style) -> str:"
    assert defs["get_profile"].category == "function"
    assert defs["get_profile"].line == 10
    assert defs["get_profile"].signature == "def get_profile(user_id: int) -> Profile:"
    assert all(t.path == "app/profile.py" for t in tags)
    assert {"helper", "title", "Base", "Style", "Profile"} <= _refs(tags)
    # The class's own name at its definition is not a reference to it.
    assert not [t for t in tags if t.kind == "ref" and t.name == "Profile" and t.line == 3]


def test_javascript_function_class_and_arrow_export() -> None:
    source = b"""import { request } from "./http";
export const fetchUser = async (id) => request(`/users/${id}`);
export const MAX_USERS = 50;
export class UserStore extends BaseStore {
  load(id) { return new Cache(fetchUser(id)); }
}
function render() { return <UserCard user={x} />; }
"""
    tags = extract_tags("web/users.js", source, "javascript")
    defs = _defs(tags)
    assert defs["fetchUser"].category == "function"
    assert defs["fetchUser"].signature.startswith("export const fetchUser = async (id) =>")
    assert defs["MAX_USERS"].category == "const"
    assert defs["UserStore"].category == "class"
    assert defs["UserStore"].signature == "export class UserStore extends BaseStore"
    assert defs["load"].category == "method"
    assert defs["render"].category == "function"
    assert {"request", "BaseStore", "Cache", "fetchUser", "UserCard"} <= _refs(tags)


def test_typescript_interface_and_function() -> None:
    source = b"""export interface User { id: number; name: string }
export type UserId = string;
export function getUser(id: UserId): User {
  return repo.find(id);
}
"""
    tags = extract_tags("src/user.ts", source, "typescript")
    defs = _defs(tags)
    assert defs["User"].category == "interface"
    assert defs["User"].signature == "export interface User"
    assert defs["UserId"].category == "type"
    assert defs["getUser"].category == "function"
    assert defs["getUser"].signature == "export function getUser(id: UserId): User"
    assert {"find"} <= _refs(tags)
    # Type references on line 3 are refs; the interface's own name on line 1 is not.
    assert {(t.name, t.line) for t in tags if t.kind == "ref"} >= {("UserId", 3), ("User", 3)}
    assert ("User", 1) not in {(t.name, t.line) for t in tags if t.kind == "ref"}


def test_tsx_component() -> None:
    source = b"""import { Avatar } from "./avatar";
type Props = { name: string };
export const ProfileCard = ({ name }: Props) => (
  <div className="card"><Avatar alt={name} /></div>
);
export function ProfileList({ names }: { names: string[] }) {
  return <ul>{names.map((n) => <ProfileCard name={n} />)}</ul>;
}
"""
    tags = extract_tags("ui/ProfileCard.tsx", source, "tsx")
    defs = _defs(tags)
    assert defs["ProfileCard"].category == "function"
    assert defs["ProfileCard"].line == 3
    assert defs["ProfileList"].category == "function"
    assert defs["Props"].category == "type"
    assert {"Avatar", "ProfileCard", "Props", "map"} <= _refs(tags)


def test_java_class_and_method() -> None:
    source = b"""package shop;
import shop.util.Money;
public class OrderService extends BaseService {
    public static final int LIMIT = 10;
    private int count;
    public Money total(Order order) {
        return Money.sum(order.lines(), new Tax());
    }
}
interface Priced { Money price(); }
"""
    tags = extract_tags("src/OrderService.java", source, "java")
    defs = _defs(tags)
    assert defs["OrderService"].category == "class"
    assert defs["OrderService"].signature == "public class OrderService extends BaseService"
    assert defs["total"].category == "method"
    assert defs["total"].signature == "public Money total(Order order)"
    assert defs["total"].line == 6
    assert defs["LIMIT"].category == "const"
    assert "count" not in defs  # a private instance field is not part of the outline
    assert defs["Priced"].category == "interface"
    assert defs["price"].signature == "Money price();"
    assert {"Money", "sum", "lines", "Tax", "Order", "BaseService"} <= _refs(tags)


def test_syntax_errors_do_not_crash_and_good_defs_survive() -> None:
    source = b"def good(x):\n    return x\n\ndef broken(:\n    pass\n\nclass Fine:\n    pass\n"
    defs = _defs(extract_tags("bad.py", source, "python"))
    assert {"good", "Fine"} <= set(defs)
    # Garbage and truncated bytes in a supported language still yield a (possibly empty) list.
    assert isinstance(extract_tags("x.ts", b"\xff\xfe export interface {{{{", "typescript"), list)


# --- helpers ------------------------------------------------------------------------------


def test_count_tokens_is_deterministic_and_grows_with_text() -> None:
    assert count_tokens("") == 0
    short = count_tokens("def f(x):")
    longer = count_tokens("def f(x):\n    return some_long_identifier_name(x)")
    assert 0 < short < longer
    assert count_tokens("def f(x):") == short


def test_split_words_handles_snake_camel_and_plurals() -> None:
    assert split_words("getUserProfiles") == ["get", "user", "profile"]
    assert split_words("load_HTTPServer_entries") == ["load", "http", "server", "entry"]


def test_pagerank_raises_the_node_everyone_points_to() -> None:
    nodes = ["a", "b", "c", "hub"]
    edges = {"a": {"hub": 1.0}, "b": {"hub": 1.0}, "c": {"hub": 1.0, "a": 1.0}}
    ranks = personalised_pagerank(nodes, edges, {})
    assert sum(ranks.values()) == pytest.approx(1.0)
    assert max(ranks, key=ranks.__getitem__) == "hub"
    # Personalising toward `b` lifts it above its uniform-teleport rank.
    biased = personalised_pagerank(nodes, edges, {"b": 1.0})
    assert biased["b"] > ranks["b"]


# --- whole builds -------------------------------------------------------------------------

SERVICE_REPO = {
    "app/profile.py": (
        "from app.db import fetch_row\n\n\n"
        "class Profile:\n    def __init__(self, name):\n        self.name = name\n\n\n"
        "def get_profile(user_id):\n    return Profile(fetch_row('profiles', user_id))\n"
    ),
    "app/orders.py": (
        "from app.db import fetch_row\n\n\n"
        "def list_orders(customer_id):\n    return fetch_row('orders', customer_id)\n\n\n"
        "def cancel_order(order_id):\n    return fetch_row('orders', order_id)\n"
    ),
    "app/billing.py": (
        "from app.db import fetch_row\n\n\n"
        "def charge_invoice(invoice_id):\n    return fetch_row('invoices', invoice_id)\n"
    ),
    "app/shipping.py": (
        "from app.db import fetch_row\n\n\n"
        "def ship_parcel(parcel_id):\n    return fetch_row('parcels', parcel_id)\n"
    ),
    "app/db.py": (
        "import sqlite3\n\n\n"
        "def fetch_row(table, key):\n    return sqlite3.connect(':memory:').execute(table)\n"
    ),
    "web/api.ts": ("export function listOrders(customerId: string): string[] {\n  return [];\n}\n"),
    "README.md": "# Shop\nA small shop.\n",
}


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    root = tmp_path / "shop"
    _write(root, SERVICE_REPO)
    _git_init(root)
    return root


def test_query_about_profile_ranks_the_defining_file_first(shop: Path) -> None:
    ctx = build_context(shop, "Show the user's profile page with their display name")
    assert ctx.ranked_paths[0] == "app/profile.py"
    assert sorted(ctx.ranked_paths) == sorted(SERVICE_REPO)


def test_identifier_in_query_ranks_its_file_first(shop: Path) -> None:
    ctx = build_context(shop, "cancel_order must refund the payment")
    assert ctx.ranked_paths[0] == "app/orders.py"


def test_graph_rank_raises_a_central_utility_file(shop: Path) -> None:
    # Nothing in the query matches any file: only the reference graph can order them.
    ctx = build_context(shop, "make it faster")
    ranked = ctx.ranked_paths
    assert ranked[0] == "app/db.py"
    for leaf in ("app/billing.py", "app/shipping.py", "web/api.ts", "README.md"):
        assert ranked.index("app/db.py") < ranked.index(leaf)


@pytest.mark.parametrize("budget", [0, 1, 5, 12, 30, 60, 120, 400, 4000])
def test_map_fits_every_budget(shop: Path, budget: int) -> None:
    ctx = build_context(shop, "profile orders", map_tokens=budget, file_tokens=0)
    assert count_tokens(ctx.repo_map) <= budget
    assert ctx.map_tokens == count_tokens(ctx.repo_map)
    if budget >= 400:
        # A roomy budget shows every file and the signature lines of its definitions.
        for path in SERVICE_REPO:
            assert path in ctx.repo_map
        assert "│def get_profile(user_id):" in ctx.repo_map
        assert "│    def __init__(self, name):" in ctx.repo_map


def test_small_map_keeps_the_most_relevant_definitions(shop: Path) -> None:
    ctx = build_context(shop, "profile", map_tokens=40, file_tokens=0)
    assert ctx.repo_map.startswith("app/profile.py:\n")
    assert "│class Profile:" in ctx.repo_map
    assert "│def get_profile(user_id):" in ctx.repo_map
    assert "ship_parcel" not in ctx.repo_map


def test_map_renders_elisions_in_file_rank_order(shop: Path) -> None:
    ctx = build_context(shop, "profile", map_tokens=4000, file_tokens=0)
    lines = ctx.repo_map.splitlines()
    assert lines[:3] == ["app/profile.py:", "⋮", "│class Profile:"]
    headers = [line.rstrip(":") for line in lines if line and line[0] not in "│⋮"]
    assert headers == [p for p in ctx.ranked_paths if p in headers]
    assert headers[0] == "app/profile.py"


def test_files_budget_is_respected_and_oversized_file_becomes_an_excerpt(tmp_path: Path) -> None:
    # Before issue 16 an oversized top file was skipped, so Builder never saw it.
    root = tmp_path / "repo"
    big_body = "".join(f"    profile_value_{i} = {i}\n" for i in range(400))
    _write(
        root,
        {
            "profile_big.py": "def load_profile():\n" + big_body,
            "profile_small.py": "def save_profile(p):\n    return p\n",
            "other.py": "def unrelated():\n    return 1\n",
        },
    )
    _git_init(root)
    budget = 200
    assert count_tokens((root / "profile_big.py").read_text()) > budget
    ctx = build_context(root, "load profile", file_tokens=budget)
    assert ctx.ranked_paths[0] == "profile_big.py"
    excerpt = ctx.excerpts["profile_big.py"]
    assert ctx.files["profile_big.py"] == excerpt.text
    assert excerpt.text.startswith("def load_profile():\n") and excerpt.text.endswith("⋮\n")
    assert excerpt.ranges[0][0] == 1 and excerpt.line_count == 401
    assert ctx.files["profile_small.py"] == (root / "profile_small.py").read_text()
    assert ctx.file_tokens == sum(count_tokens(t) for t in ctx.files.values()) <= budget
    # A file given in full is not repeated in the map; the excerpted one stays in the map.
    assert "save_profile" not in ctx.repo_map
    assert "│def load_profile():" in ctx.repo_map


def test_zero_file_budget_gives_no_files(shop: Path) -> None:
    ctx = build_context(shop, "profile", file_tokens=0)
    assert ctx.files == {} and ctx.file_tokens == 0


def test_mentioned_path_is_ranked_first_and_included(shop: Path) -> None:
    ctx = build_context(shop, "profile page", mentioned_paths=["./app/shipping.py"], file_tokens=60)
    assert ctx.ranked_paths[0] == "app/shipping.py"
    assert "app/shipping.py" in ctx.files
    assert ctx.files["app/shipping.py"] == SERVICE_REPO["app/shipping.py"]


def test_mentioned_absolute_path_and_missing_path(shop: Path) -> None:
    ctx = build_context(
        shop,
        "anything",
        mentioned_paths=[str(shop / "web" / "api.ts"), "does/not/exist.py"],
        file_tokens=0,
    )
    assert ctx.ranked_paths[0] == "web/api.ts"
    assert "does/not/exist.py" not in ctx.ranked_paths


def test_cache_skips_parsing_unchanged_files_and_reparses_changed_ones(
    shop: Path, tmp_path: Path
) -> None:
    cache_dir = tmp_path / "cache"
    source_files = [p for p in SERVICE_REPO if p.endswith((".py", ".ts"))]

    first = build_context(shop, "profile", cache_dir=cache_dir)
    assert first.stats.parsed_files == len(source_files)
    # Every text file is indexed for search (README too); only code is parsed for tags.
    assert sorted(first.stats.reindexed) == sorted(SERVICE_REPO)
    assert first.stats.cache_hits == 0
    assert any(cache_dir.iterdir())

    second = build_context(shop, "profile", cache_dir=cache_dir)
    assert second.stats.parsed_files == second.stats.indexed_files == 0
    assert second.stats.cache_hits == len(SERVICE_REPO)
    assert second.ranked_paths == first.ranked_paths
    assert second.repo_map == first.repo_map

    (shop / "app" / "billing.py").write_text(
        "def charge_invoice(invoice_id):\n    return invoice_id\n\n\n"
        "def refund_invoice(invoice_id):\n    return invoice_id\n"
    )
    third = build_context(shop, "refund", cache_dir=cache_dir, file_tokens=0)
    # Only the changed file is parsed and tokenised again; the rest comes from the cache,
    # and the new word is searchable at once.
    assert third.stats.reindexed == ["app/billing.py"]
    assert third.stats.parsed_files == 1
    assert third.stats.cache_hits == len(SERVICE_REPO) - 1
    assert third.ranked_paths[0] == "app/billing.py"
    assert "│def refund_invoice(invoice_id):" in third.repo_map


def test_corrupt_cache_file_is_ignored(shop: Path, tmp_path: Path) -> None:
    cache_dir = tmp_path / "cache"
    build_context(shop, "profile", cache_dir=cache_dir)
    for file in cache_dir.iterdir():
        file.write_text("{not json")
    ctx = build_context(shop, "profile", cache_dir=cache_dir)
    assert ctx.stats.parsed_files > 0
    assert ctx.ranked_paths[0] == "app/profile.py"


def test_gitignored_and_binary_files_are_excluded(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    _write(
        root,
        {
            ".gitignore": "secrets/\n*.log\n",
            "src/main.py": "def main():\n    return 0\n",
            "src/untracked_new.py": "def fresh():\n    return 1\n",
            "secrets/profile_keys.py": "def profile_key():\n    return 'x'\n",
            "debug.log": "profile profile profile\n",
            "logo.png": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)),
            "huge.py": "x = 1\n" * 200_000,
        },
    )
    _git_init(root)
    subprocess.run(["git", "-C", str(root), "add", "src/main.py", ".gitignore"], check=True)
    ctx = build_context(root, "profile keys", file_tokens=10_000)
    assert set(ctx.ranked_paths) == {".gitignore", "src/main.py", "src/untracked_new.py"}
    assert "profile_key" not in ctx.repo_map


def test_walk_without_git_skips_vendor_folders_and_honours_exclude(tmp_path: Path) -> None:
    root = tmp_path / "plain"
    _write(
        root,
        {
            "lib/core.js": "export function core() { return 1; }\n",
            "lib/generated/api.js": "export function generated() {}\n",
            "node_modules/left-pad/index.js": "module.exports = function leftPad() {};\n",
            ".venv/lib/site.py": "def site():\n    pass\n",
            "dist/bundle.js": "function bundle() {}\n",
            "__pycache__/x.py": "def cached():\n    pass\n",
        },
    )
    ctx = build_context(root, "core", exclude=["lib/generated"])
    assert ctx.ranked_paths == ["lib/core.js"]


def test_minified_bundles_are_not_candidates(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    bundle = "".join(f"function f{i}(a){{return a+{i}}};" for i in range(2000))
    _write(root, {"static/app.min.js": bundle, "src/app.js": "export function app() {}\n"})
    _git_init(root)
    ctx = build_context(root, "app")
    assert ctx.ranked_paths == ["src/app.js"]


def test_signature_drops_comments_inside_parameters() -> None:
    source = b"""class Router:
    def __init__(
        self,
        models: list | None = None,  # deployments to route between
        ## retries ##
        retries: int = 3,
    ) -> None:
        pass
"""
    defs = _defs(extract_tags("router.py", source, "python"))
    assert defs["__init__"].signature == (
        "def __init__(self, models: list | None = None, retries: int = 3) -> None:"
    )


def test_folder_ignored_by_the_enclosing_repo_is_walked(tmp_path: Path) -> None:
    root = tmp_path / "outer"
    _write(
        root,
        {".gitignore": "vendor/\n", "vendor/lib/profile.py": "def get_profile():\n    pass\n"},
    )
    _git_init(root)
    ctx = build_context(root / "vendor", "profile")
    assert ctx.ranked_paths == ["lib/profile.py"]


def test_symlink_out_of_the_repository_is_never_read(tmp_path: Path) -> None:
    secret = tmp_path / "outside" / "keys.py"
    secret.parent.mkdir()
    secret.write_text("def profile_key():\n    return 'secret'\n")
    root = tmp_path / "repo"
    _write(root, {"src/main.py": "def main():\n    return 0\n", "src/real.py": "X = 1\n"})
    (root / "src" / "keys.py").symlink_to(secret)
    (root / "src" / "alias.py").symlink_to(root / "src" / "real.py")
    _git_init(root)
    ctx = build_context(root, "profile key secret", file_tokens=10_000)
    assert "src/keys.py" not in ctx.ranked_paths
    assert "secret" not in "".join(ctx.files.values())
    # A link that stays inside the repository is an ordinary file.
    assert ctx.files["src/alias.py"] == "X = 1\n"
