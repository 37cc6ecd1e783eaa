"""The project's own environment: installed as its users install it, self-references meaning this
tree, dependencies cached per hash and the project itself in a per-worktree layer."""

from __future__ import annotations

import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest

from council.events import CommandRun
from council.toolchains import PythonToolchain
from council.toolchains.python_env import _self_extras, discover_dependencies


def _write(root: Path, files: dict[str, str]) -> Path:
    for name, body in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(body).lstrip("\n"), encoding="utf-8")
    return root


def _git_repo(root: Path) -> Path:
    subprocess.run(["git", "init", "-q", "-b", "main", str(root)], check=True)
    subprocess.run(["git", "-C", str(root), "add", "-A"], check=True)
    subprocess.run(
        ["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "i"],
        check=True,
    )
    return root


def _status(root: Path) -> str:
    return subprocess.run(
        ["git", "-C", str(root), "status", "--porcelain", "--ignored"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout


# A setuptools project (no [build-system]: the legacy backend) that reads its own version from
# installed metadata and ships a console script; its dev requirements install it with an extra.
META_PROJECT = {
    "pyproject.toml": """
        [project]
        name = "meta-proj"
        version = "1.2.3"
        dependencies = []
        [project.optional-dependencies]
        testutils = ["six==1.17.0"]
        [project.scripts]
        meta-hello = "meta_proj:hello"
    """,
    "requirements-dev.txt": "-e .[testutils]\npytest\n",
    "src/meta_proj/__init__.py": """
        from importlib.metadata import version

        __version__ = version("meta-proj")


        def hello():
            print("hello from", __version__)
    """,
    "tests/test_meta.py": """
        import shutil
        import subprocess

        import six  # from the testutils extra

        import meta_proj


        def test_version_from_installed_metadata():
            assert meta_proj.__version__ == "1.2.3"


        def test_console_script_runs_the_tree():
            out = subprocess.run(
                [shutil.which("meta-hello")], capture_output=True, text=True, check=True
            )
            assert out.stdout.strip() == "hello from 1.2.3"
            assert six.PY3
    """,
}


def test_self_references_in_requirement_lines(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    root.mkdir()
    cases = {
        ".[testutils,spelling]": ["testutils", "spelling"],
        "-e .": [],
        "-e .[dev]": ["dev"],
        "--editable=./[a]": ["a"],
        "file:.": [],
        "My_Proj[stats] ; python_version > '3'": ["stats"],
        "my-proj": [],
        "my-proj @ file:///elsewhere": [],
        "my-project[stats]": None,
        "./sub[x]": None,
        "-r other.txt": None,
        "# .[x]": None,
        "pytest==9.2.0": None,
    }
    for line, extras in cases.items():
        assert _self_extras(line, "my-proj", root) == extras, line


def test_dev_group_naming_the_project_itself_becomes_an_extra(tmp_path: Path) -> None:
    root = _write(
        tmp_path / "proj",
        {
            "pyproject.toml": """
                [project]
                name = "Seaborn"
                dependencies = ["numpy==2.3.5"]
                [project.optional-dependencies]
                stats = ["scipy==1.16.3"]
                [dependency-groups]
                dev = ["seaborn[stats]", "pytest==9.2.0"]
            """
        },
    )
    deps = discover_dependencies(root)
    assert deps.installable and deps.extras == ["stats"]
    assert sorted(deps.requirements) == ["numpy==2.3.5", "pytest==9.2.0", "scipy==1.16.3"]
    assert not any(r.lower().startswith("seaborn") for r in deps.requirements)


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("council-cache")


def test_requirements_installing_the_project_with_an_extra_build_and_pass(
    tmp_path: Path, cache_dir: Path
) -> None:
    root = _git_repo(_write(tmp_path / "meta", META_PROJECT))
    toolchain = PythonToolchain()
    env = toolchain.prepare(root, cache_dir=cache_dir)
    assert env.project == "meta-proj" and env.overlay is not None
    report = toolchain.run_tests(root, env, timeout_s=120)
    assert report.green, report.output_tail
    assert report.passed == 2
    assert _status(root) == ""  # no egg-info or build folder left in the tree

    # Another worktree of the same project: the dependencies are reused, and the project's
    # install is the first tree's re-pointed at this one (same build files: no build at all).
    other = tmp_path / "meta-2"
    shutil.copytree(root, other)
    init = other / "src/meta_proj/__init__.py"
    init.write_text(init.read_text().replace("hello from", "hi from"))
    events: list = []
    second = toolchain.prepare(other, cache_dir=cache_dir, emit=events.append)
    assert second.reused and second.path == env.path and second.overlay != env.overlay
    assert not [e.argv for e in events if isinstance(e, CommandRun) and "install" in e.argv]
    changed = toolchain.run_tests(other, second, timeout_s=120)
    assert not changed.green and "hi from 1.2.3" in changed.output_tail  # that tree's code ran

    # A tree whose build files differ (a new console script): the project is built for it,
    # without its dependencies.
    third = tmp_path / "meta-3"
    shutil.copytree(root, third)
    pyproject = third / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + 'meta-bye = "meta_proj:hello"\n')
    events.clear()
    built = toolchain.prepare(third, cache_dir=cache_dir, emit=events.append)
    installs = [e.argv for e in events if isinstance(e, CommandRun) and "install" in e.argv]
    assert len(installs) == 1 and "--no-deps" in installs[0]
    assert (built.bin_dir / "meta-bye").is_file()
    assert toolchain.run_tests(third, built, timeout_s=120).green

    # The same tree again: nothing to install at all.
    events.clear()
    again = toolchain.prepare(root, cache_dir=cache_dir, emit=events.append)
    assert again.overlay == env.overlay
    assert not any(isinstance(e, CommandRun) for e in events)


def test_dev_group_self_reference_installs_this_tree_not_a_release(
    tmp_path: Path, cache_dir: Path
) -> None:
    root = _git_repo(
        _write(
            tmp_path / "selfref",
            {
                "pyproject.toml": """
                    [project]
                    name = "council-selfref-probe"
                    version = "0.0.1"
                    [project.optional-dependencies]
                    stats = ["six==1.17.0"]
                    [dependency-groups]
                    dev = ["council-selfref-probe[stats]", "pytest"]
                    [build-system]
                    requires = ["setuptools>=61"]
                    build-backend = "setuptools.build_meta"
                """,
                "council_selfref_probe.py": "VALUE = 42\n",
                "tests/test_probe.py": """
                    from importlib.metadata import distribution
                    from pathlib import Path

                    import six

                    import council_selfref_probe


                    def test_the_tree_is_what_is_installed():
                        here = Path(__file__).resolve().parents[1]
                        assert Path(council_selfref_probe.__file__).resolve().parent == here
                        url = distribution("council-selfref-probe").read_text("direct_url.json")
                        assert here.as_uri() in url
                        assert council_selfref_probe.VALUE == 42 and six.PY3
                """,
            },
        )
    )
    toolchain = PythonToolchain()
    env = toolchain.prepare(root, cache_dir=cache_dir)
    assert env.project == "council-selfref-probe"
    report = toolchain.run_tests(root, env, timeout_s=120)
    assert report.green, report.output_tail
    assert _status(root) == ""


def test_a_setup_cfg_project_gets_its_test_extras_and_names_itself(
    tmp_path: Path, cache_dir: Path
) -> None:
    """Metadata in setup.cfg (setup.py a stub): its `testing` extra is installed, and a
    requirements file naming the project by its setup.cfg name means this tree, not the index."""
    root = _git_repo(
        _write(
            tmp_path / "legacy",
            {
                "setup.py": "from setuptools import setup\n\nsetup()\n",
                "setup.cfg": """
                    [metadata]
                    name = council-legacy-probe
                    version = 0.0.1

                    [options]
                    py_modules = council_legacy_probe

                    [options.extras_require]
                    testing =
                        six==1.17.0
                """,
                "requirements-dev.txt": "council_legacy_probe[testing] ; python_version >= '3'\n",
                "council_legacy_probe.py": "VALUE = 7\n",
                "tests/test_legacy.py": """
                    import six

                    import council_legacy_probe


                    def test_extra_and_tree():
                        assert council_legacy_probe.VALUE == 7 and six.PY3
                """,
            },
        )
    )
    deps = discover_dependencies(root)
    assert deps.name == "council-legacy-probe" and "testing" in deps.extras
    toolchain = PythonToolchain()
    env = toolchain.prepare(root, cache_dir=cache_dir)
    assert env.project == "council-legacy-probe"
    report = toolchain.run_tests(root, env, timeout_s=120)
    assert report.green, report.output_tail


def test_a_project_that_cannot_be_built_runs_from_the_tree_with_a_notice(
    tmp_path: Path, cache_dir: Path
) -> None:
    root = _write(
        tmp_path / "broken",
        {
            "pyproject.toml": """
                [project]
                name = "broken-build"
                version = "0.1.0"
                [build-system]
                requires = ["hatchling"]
                build-backend = "hatchling.build"
            """,
            "app/__init__.py": "",
            "app/core.py": "def add(a, b):\n    return a + b\n",
            "tests/test_core.py": "from app.core import add\n\ndef test_add():\n"
            "    assert add(1, 2) == 3\n",
        },
    )
    events: list = []
    toolchain = PythonToolchain()
    env = toolchain.prepare(root, cache_dir=cache_dir, emit=events.append)
    assert env.overlay is None and env.project is None
    notes = [e.message for e in events if getattr(e, "level", "") == "warning"]
    assert any("could not be installed" in n and "Error" in n for n in notes), notes
    assert toolchain.run_tests(root, env, timeout_s=120).green
    # Remembered: the next run on the same build files does not try again.
    events.clear()
    toolchain.prepare(root, cache_dir=cache_dir, emit=events.append)
    assert not any(isinstance(e, CommandRun) for e in events)


def test_gates_use_the_ruff_the_project_pins(tmp_path: Path, cache_dir: Path) -> None:
    root = _write(
        tmp_path / "pinned",
        {
            # No [project] table: nothing to build, only tool settings and a dev group.
            "pyproject.toml": """
                [dependency-groups]
                dev = ["ruff==0.17.6", "pytest"]
                [tool.ruff.format]
                quote-style = "single"
            """,
            "app.py": "import os\n",
        },
    )
    toolchain = PythonToolchain()
    env = toolchain.prepare(root, cache_dir=cache_dir)
    events: list = []
    lint = toolchain.lint(root, env, emit=events.append)
    fmt = toolchain.format_check(root, env, emit=events.append)
    assert [f.code for f in lint.findings] == ["F401"] and fmt.passed
    ran = [e.argv[0] for e in events if isinstance(e, CommandRun)]
    assert ran and all(tool == str(env.path / "bin" / "ruff") for tool in ran)
    # A project that does not install ruff is linted with council's own.
    plain = _write(tmp_path / "plain", {"app.py": "import os\n"})
    events.clear()
    toolchain.lint(plain, None, emit=events.append)
    (command,) = [e for e in events if isinstance(e, CommandRun)]
    assert not command.argv[0].startswith(str(cache_dir))
