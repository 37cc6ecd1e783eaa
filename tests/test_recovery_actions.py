"""Deterministic recoveries on real files, processes and sockets."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from council.recovery.actions import (
    ProcessRegistry,
    add_npm_dependency,
    add_python_dependency,
    add_to_pyproject,
    compatible_range,
    free_port,
    installed_version,
    pin_npm_dependency,
    pin_python_dependency,
    port_in_use_for,
    recover,
    retry_longer,
    retry_more_memory,
    undo,
    who_holds_port,
)
from council.recovery.catalogue import classify
from council.recovery.index import Resolution, resolve_import, wheel_top_levels
from council.recovery.signature import GateRun
from council.sandbox import run
from tests.fakes.heal_corpus import FakeIndex

PYPROJECT = """\
# The project's own comment stays.
[project]
name = "demo"   # inline comment
version = "0.1.0"
description = "brackets ] [ and a # in a string"
dependencies = [
    "requests>=2.31",  # HTTP
    "click",
]

[project.optional-dependencies]
dev = ["pytest"]

[tool.ruff]
line-length = 100
"""


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


# -- Python dependencies ---------------------------------------------------------------------


def test_adds_to_pyproject_keeping_everything_else(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(PYPROJECT)
    result = add_python_dependency(tmp_path, "PyYAML")
    assert result.applied and result.needs_prepare
    assert result.files_changed == ["pyproject.toml"]
    text = (tmp_path / "pyproject.toml").read_text()
    assert text == PYPROJECT.replace('    "click",\n', '    "click",\n    "PyYAML",\n')
    data = tomllib.loads(text)
    assert data["project"]["dependencies"] == ["requests>=2.31", "click", "PyYAML"]


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ('[project]\nname = "x"\ndependencies = ["a", "b"]\n',
         '[project]\nname = "x"\ndependencies = ["a", "b", "PyYAML"]\n'),
        ('[project]\nname = "x"\ndependencies = []\n',
         '[project]\nname = "x"\ndependencies = ["PyYAML"]\n'),
        ('[project]\nname = "x"\ndependencies = [\n  "a",\n  "b"  # no comma\n]\n',
         '[project]\nname = "x"\ndependencies = [\n  "a",\n  "b",  # no comma\n  "PyYAML"\n]\n'),
        ('[project]\nname = "x"\nversion = "1"\n\n[tool.x]\nk = 1\n',
         '[project]\nname = "x"\nversion = "1"\ndependencies = [\n    "PyYAML",\n]\n\n'
         '[tool.x]\nk = 1\n'),
        ('[project]\r\nname = "x"\r\ndependencies = [\r\n    "a",\r\n]\r\n',
         '[project]\r\nname = "x"\r\ndependencies = [\r\n    "a",\r\n    "PyYAML",\r\n]\r\n'),
    ],
)  # fmt: skip
def test_pyproject_text_edits_are_minimal(before: str, after: str) -> None:
    assert add_to_pyproject(before, "PyYAML") == after


@pytest.mark.parametrize(
    "text",
    [
        '[project]\nname = "x"\ndynamic = ["dependencies"]\n',  # the build backend owns them
        '[tool.poetry]\nname = "x"\n',  # no [project] table
        'project = { name = "x", dependencies = [] }\n',  # inline table: not worth a text edit
        "[project\nbroken",
    ],
)
def test_pyproject_edit_declines_what_it_cannot_do_safely(text: str) -> None:
    assert add_to_pyproject(text, "PyYAML") is None


def test_falls_back_to_requirements_txt(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text("flask==3.0.0\n# comment\nrequests")
    result = add_python_dependency(tmp_path, "python-dateutil")
    assert result.applied and result.files_changed == ["requirements.txt"]
    text = (tmp_path / "requirements.txt").read_text()
    assert text == "flask==3.0.0\n# comment\nrequests\npython-dateutil\n"


def test_pyproject_without_project_table_uses_requirements(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.ruff]\nline-length = 88\n")
    result = add_python_dependency(tmp_path, "attrs")
    assert result.files_changed == ["requirements.txt"]
    assert (tmp_path / "pyproject.toml").read_text() == "[tool.ruff]\nline-length = 88\n"
    assert (tmp_path / "requirements.txt").read_text() == "attrs\n"


def test_already_declared_is_not_added_twice(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(PYPROJECT.replace('"click"', '"pyyaml>=6"'))
    before = _snapshot(tmp_path)
    result = add_python_dependency(tmp_path, "PyYAML")  # same project, other spelling
    assert not result.applied and "already declared" in result.description
    assert _snapshot(tmp_path) == before


def test_dry_run_changes_nothing(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(PYPROJECT)
    before = _snapshot(tmp_path)
    result = add_python_dependency(tmp_path, "PyYAML", dry_run=True)
    assert not result.applied and result.dry_run
    assert result.description == "would add PyYAML to pyproject.toml"
    assert _snapshot(tmp_path) == before


@pytest.mark.parametrize("name", ["evil; rm -rf /", "a b", '"x"', "-e", ""])
def test_refuses_names_that_are_not_packages(tmp_path: Path, name: str) -> None:
    (tmp_path / "requirements.txt").write_text("")
    assert not add_python_dependency(tmp_path, name).applied
    assert (tmp_path / "requirements.txt").read_text() == ""


def test_recover_from_a_real_missing_import(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(PYPROJECT)
    (tmp_path / "main.py").write_text("from Crypto.Cipher import AES\n")
    result = run([sys.executable, "main.py"], tmp_path, timeout_s=30)
    match = classify(result, root=tmp_path)[0]
    dry = recover(match, tmp_path, dry_run=True)
    assert not dry.applied and (tmp_path / "pyproject.toml").read_text() == PYPROJECT
    done = recover(match, tmp_path)
    assert done.applied and done.needs_prepare
    deps = tomllib.loads((tmp_path / "pyproject.toml").read_text())["project"]["dependencies"]
    assert deps[-1] == "pycryptodome"


# -- npm dependencies ------------------------------------------------------------------------


def test_adds_npm_package_keeping_indent(tmp_path: Path) -> None:
    original = {
        "name": "web",
        "scripts": {"test": "node --test"},
        "devDependencies": {"zod": "^3.0.0"},
    }
    (tmp_path / "package.json").write_text(json.dumps(original, indent=4) + "\n")
    result = add_npm_dependency(tmp_path, "@types/node", dev=True)
    assert result.applied and result.needs_prepare
    text = (tmp_path / "package.json").read_text()
    assert text.startswith('{\n    "name": "web",') and text.endswith("}\n")
    data = json.loads(text)
    assert data["devDependencies"] == {"@types/node": "latest", "zod": "^3.0.0"}
    assert list(data) == ["name", "scripts", "devDependencies"]

    runtime = add_npm_dependency(tmp_path, "express")
    assert json.loads((tmp_path / "package.json").read_text())["dependencies"] == {
        "express": "latest"
    }
    assert runtime.facts["section"] == "dependencies"


def test_npm_package_already_declared_or_invalid(tmp_path: Path) -> None:
    (tmp_path / "package.json").write_text('{"dependencies": {"lodash": "^4"}}')
    before = _snapshot(tmp_path)
    assert not add_npm_dependency(tmp_path, "lodash").applied
    assert not add_npm_dependency(tmp_path, "./local").applied
    assert not add_npm_dependency(tmp_path, "left-pad", version="1.0; rm -rf /").applied
    dry = add_npm_dependency(tmp_path, "left-pad", dry_run=True)
    assert dry.dry_run and not dry.applied
    assert _snapshot(tmp_path) == before


def test_npm_recover_from_a_real_require(tmp_path: Path) -> None:
    (tmp_path / "package.json").write_text('{\n  "name": "x"\n}\n')
    (tmp_path / "index.js").write_text("require('left-pad');\n")
    result = run(["node", "index.js"], tmp_path, timeout_s=30)
    done = recover(classify(result)[0], tmp_path)
    assert done.applied
    assert json.loads((tmp_path / "package.json").read_text())["dependencies"] == {
        "left-pad": "latest"
    }


# -- ports -----------------------------------------------------------------------------------

SERVER = """
import socket, sys, time
family = socket.AF_INET6 if sys.argv[1] == "6" else socket.AF_INET
s = socket.socket(family)
s.bind(("::1" if sys.argv[1] == "6" else "127.0.0.1", 0))
s.listen()
print(s.getsockname()[1], flush=True)
time.sleep(120)
"""


@pytest.fixture
def server(request: pytest.FixtureRequest) -> Iterator[tuple[subprocess.Popen[str], int]]:
    family = getattr(request, "param", "4")
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVER, family],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert proc.stdout is not None
    port = int(proc.stdout.readline())
    yield proc, port
    if proc.poll() is None:
        proc.kill()
    proc.wait()


@pytest.mark.parametrize("server", ["4", "6"], indirect=True)
def test_who_holds_port_names_the_real_pid(server: tuple[subprocess.Popen[str], int]) -> None:
    proc, port = server
    holders = who_holds_port(port)
    assert [h.pid for h in holders] == [proc.pid]
    assert "time.sleep(120)" in holders[0].cmdline
    assert holders[0].address.endswith(f":{port}")


def test_free_port_leaves_a_process_council_did_not_start(
    server: tuple[subprocess.Popen[str], int], tmp_path: Path
) -> None:
    proc, port = server
    registry = ProcessRegistry(tmp_path / "processes.jsonl")
    result = free_port(port, registry=registry)
    assert not result.applied
    assert f"pid {proc.pid}" in result.description and "did not start" in result.description
    assert result.commands_run == []
    time.sleep(0.2)
    assert proc.poll() is None  # still running
    assert [h.pid for h in who_holds_port(port)] == [proc.pid]


def test_free_port_stops_a_process_council_started(
    server: tuple[subprocess.Popen[str], int], tmp_path: Path
) -> None:
    proc, port = server
    registry = ProcessRegistry.for_repo(tmp_path)
    registry.record(proc.pid, ["python", "server"])
    dry = free_port(port, registry=registry, dry_run=True)
    assert not dry.applied and dry.dry_run and proc.poll() is None

    result = free_port(port, registry=registry)
    assert result.applied, result.description
    assert result.commands_run == [["kill", "-TERM", str(proc.pid)]]
    assert proc.wait(timeout=5) == -15
    assert who_holds_port(port) == []
    with socket.socket() as sock:  # the port really is free again
        sock.bind(("127.0.0.1", port))


def test_free_port_with_explicit_owned_pids(server: tuple[subprocess.Popen[str], int]) -> None:
    proc, port = server
    assert not free_port(port, owned_pids=[proc.pid + 100000]).applied
    assert free_port(port, owned_pids=[proc.pid]).applied
    assert proc.wait(timeout=5) == -15


def test_registry_owns_children_of_its_group_but_not_a_reused_pid(tmp_path: Path) -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c", "import subprocess,sys,time;"
         "p=subprocess.Popen([sys.executable,'-c','import time;time.sleep(60)']);"
         "print(p.pid,flush=True);time.sleep(60)"],
        stdout=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    stranger = subprocess.Popen([sys.executable, "-c", "import time;time.sleep(60)"])
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        registry = ProcessRegistry(tmp_path / "p.jsonl")
        registry.record(parent.pid)
        assert registry.owns(parent.pid)
        assert registry.owns(child)  # same process group, started after its leader
        assert not registry.owns(stranger.pid)
        # The same pid number with another start time is another process.
        entry = registry.entries()[0]
        (tmp_path / "p.jsonl").write_text(
            json.dumps({**entry, "start": entry["start"] + 10**9}) + "\n"
        )
        assert not ProcessRegistry(tmp_path / "p.jsonl").owns(parent.pid)
        assert not ProcessRegistry(tmp_path / "p.jsonl").owns(child)
    finally:
        os.killpg(parent.pid, 9)
        parent.wait()
        stranger.kill()
        stranger.wait()


def test_port_recovery_from_a_real_clash(
    server: tuple[subprocess.Popen[str], int], tmp_path: Path
) -> None:
    proc, port = server
    node = tmp_path / "s.js"
    node.write_text(f"require('http').createServer().listen({port}, '127.0.0.1');\n")
    clash = run(["node", "s.js"], tmp_path, timeout_s=30, network=True)
    match = classify(clash)[0]
    assert match.id == "port_in_use" and match.facts["port"] == str(port)
    refused = recover(match, tmp_path)
    assert not refused.applied and str(proc.pid) in refused.description
    assert recover(match, tmp_path, owned_pids=[proc.pid]).applied


# -- retries ---------------------------------------------------------------------------------


def test_timeout_retry_once_with_a_longer_limit(tmp_path: Path) -> None:
    first = run(["sleep", "1.5"], tmp_path, timeout_s=0.5)
    assert first.timed_out
    match = classify(first)[0]
    action = recover(match, tmp_path, gate="test", timeout_s=0.5)
    assert action.applied and action.facts["timeout_s"] == 1.5
    again = run(["sleep", "1.5"], tmp_path, timeout_s=action.facts["timeout_s"] + 1)
    assert again.ok  # the longer limit was enough
    assert not recover(match, tmp_path, gate="test", timeout_s=1.5, attempts=1).applied
    assert recover(match, tmp_path, timeout_s=10, dry_run=True).dry_run


def test_retry_limits() -> None:
    assert retry_longer("test", 300).facts["timeout_s"] == 600
    assert retry_longer("test", 3000).facts["timeout_s"] == 3600
    assert not retry_longer("test", 3600).applied
    assert not retry_longer("test", 300, attempts=1).applied
    assert retry_more_memory("build", 2048).facts["memory_mb"] == 4096
    assert not retry_more_memory("build", 2048, attempts=1).applied


def test_recoveries_that_need_a_model_or_a_person_do_nothing(tmp_path: Path) -> None:
    before = _snapshot(tmp_path)
    assertion = classify(GateRun("test", 1, "E   AssertionError: assert 2 == 3"))[0]
    auth = classify(GateRun("deploy", 1, "fatal: Authentication failed for 'x'"))[0]
    assert "model patch" in recover(assertion, tmp_path).description
    assert "person" in recover(auth, tmp_path).description
    assert not recover(assertion, tmp_path).applied and not recover(auth, tmp_path).applied
    assert _snapshot(tmp_path) == before


# -- the package index, pins and undo ---------------------------------------------------------


@pytest.fixture
def index(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[FakeIndex]:
    fake = FakeIndex(
        {
            "dns": ("0.0.1", []),  # the name exists on the index and installs nothing
            "dnspython": ("2.8.0", ["dns"]),
            "python-slugify": ("8.0.4", ["slugify"]),
        }
    )
    monkeypatch.setenv("COUNCIL_PYPI_JSON", fake.url)
    monkeypatch.setenv("COUNCIL_CACHE_DIR", str(tmp_path / "cache"))
    yield fake
    fake.close()


def test_the_index_says_which_project_installs_an_import(index: FakeIndex, tmp_path: Path) -> None:
    found = resolve_import("dns.resolver", {})
    assert found == Resolution("dnspython", "index", "2.8.0")
    assert index.requests == [
        "/pypi/dns/json",
        "/pypi/dnspython/json",
        "/files/dnspython-2.8.0-py3-none-any.whl",
    ]
    # Cached on disk by project and version: the wheel is not fetched again.
    index.requests.clear()
    assert resolve_import("dns", {}) == found
    assert not [r for r in index.requests if r.startswith("/files/")]
    # The table answers first, without the index; an unknown import is None.
    index.requests.clear()
    assert resolve_import("yaml", {"yaml": "PyYAML"}) == Resolution("PyYAML", "table")
    assert resolve_import("councilheal_nothing", {}) is None
    assert index.requests and all("councilheal" in r for r in index.requests)


def test_offline_asks_only_an_index_on_this_machine(
    index: FakeIndex, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COUNCIL_OFFLINE", "1")
    assert resolve_import("dns", {}) is not None  # a loopback mirror is still asked
    monkeypatch.setenv("COUNCIL_PYPI_JSON", "https://pypi.invalid/pypi")
    assert resolve_import("dns", {}) is None


def test_recover_declares_the_index_s_distribution(index: FakeIndex, tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(PYPROJECT)
    (tmp_path / "main.py").write_text("import dns.name\n")
    failed = run([sys.executable, "main.py"], tmp_path, timeout_s=30)
    match = classify(failed, root=tmp_path)[0]
    assert match.id == "missing_python_module" and "distribution" not in match.facts
    result = recover(match, tmp_path)
    assert result.applied and result.facts["distribution"] == "dnspython"
    assert '    "dnspython",\n' in (tmp_path / "pyproject.toml").read_text()


def test_wheel_top_levels_without_top_level_txt() -> None:
    import io
    import zipfile

    blob = io.BytesIO()
    with zipfile.ZipFile(blob, "w") as wheel:
        for name in ("dns/__init__.py", "six.py", "_cffi.cpython-311-x86_64-linux-gnu.so",
                     "x-1.0.dist-info/RECORD", "x-1.0.data/scripts/tool"):  # fmt: skip
            wheel.writestr(name, "")
    assert wheel_top_levels(blob.getvalue()) == {"dns", "six", "_cffi"}


@pytest.mark.parametrize(
    ("version", "spec"),
    [
        ("6.0.3", ">=6.0,<7"),
        ("2.8.0", ">=2.8,<3"),
        ("0.15.2", ">=0.15,<0.16"),
        ("10.1", ">=10.1,<11"),
    ],
)
def test_compatible_range(version: str, spec: str) -> None:
    assert compatible_range(version) == spec


def test_pin_rewrites_only_that_entry_keeping_comments(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(PYPROJECT)
    assert add_python_dependency(tmp_path, "PyYAML").applied
    pinned = pin_python_dependency(tmp_path, "pyyaml", "6.0.3")
    assert pinned.applied and pinned.facts["requirement"] == "pyyaml>=6.0,<7"
    assert (tmp_path / "pyproject.toml").read_text() == PYPROJECT.replace(
        '    "click",\n', '    "click",\n    "pyyaml>=6.0,<7",\n'
    )
    (tmp_path / "requirements.txt").write_text("# pins\nrequests==2.31.0\nattrs  # note\n")
    assert pin_python_dependency(tmp_path, "attrs", "24.2.0").applied
    assert (tmp_path / "requirements.txt").read_text() == (
        "# pins\nrequests==2.31.0\nattrs>=24.2,<25\n"
    )


def test_undo_puts_the_declaration_back(tmp_path: Path) -> None:
    (tmp_path / "package.json").write_text('{\n    "name": "x",\n    "dependencies": {}\n}\n')
    before = _snapshot(tmp_path)
    added = add_npm_dependency(tmp_path, "left-pad")
    assert added.applied
    undo(tmp_path, added)
    assert _snapshot(tmp_path) == before
    added = add_npm_dependency(tmp_path, "left-pad")
    pinned = pin_npm_dependency(tmp_path, "left-pad", "1.3.0")
    assert pinned.applied
    assert json.loads((tmp_path / "package.json").read_text())["dependencies"] == {
        "left-pad": "^1.3.0"
    }
    assert (tmp_path / "package.json").read_text().startswith('{\n    "name"')  # indent kept


def test_installed_version_reads_a_venv_and_node_modules(tmp_path: Path) -> None:
    site = tmp_path / "venv" / "lib" / "python3.11" / "site-packages"
    (site / "PyYAML-6.0.3.dist-info").mkdir(parents=True)
    (tmp_path / "nm" / "node_modules" / "left-pad").mkdir(parents=True)
    (tmp_path / "nm" / "node_modules" / "left-pad" / "package.json").write_text(
        '{"version": "1.3.0"}'
    )

    class Venv:
        path = tmp_path / "venv"

    class Modules:
        node_modules = tmp_path / "nm" / "node_modules"

    assert installed_version(Venv(), "pyyaml") == "6.0.3"
    assert installed_version(Modules(), "left-pad") == "1.3.0"
    assert installed_version(Venv(), "requests") is None


# -- a port the output does not name ---------------------------------------------------------


def test_the_port_comes_from_the_failing_test_s_source(
    server: tuple[subprocess.Popen[str], int], tmp_path: Path
) -> None:
    proc, port = server
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_srv.py").write_text(
        f"import socket\n\nOTHER_PORT = 1\nPORT = {port}\n\n\ndef test_it():\n"
        "    socket.socket().bind(('127.0.0.1', PORT))\n"
    )
    output = "tests/test_srv.py:8: in test_it\nE   OSError: [Errno 98] Address already in use\n"
    assert port_in_use_for(tmp_path, output) == port
    match = classify(GateRun("test", 1, output))[0]
    assert match.id == "port_in_use" and "port" not in match.facts
    refused = recover(match, tmp_path, output=output)
    assert not refused.applied and f"port {port} is held by pid {proc.pid}" in refused.description
    assert refused.facts["found_in"] == "the failing code's source"
    # The holder comes with who started it.
    (holder,) = who_holds_port(port)
    assert holder.parents and f"pid {os.getpid()}" in holder.parents[0]
