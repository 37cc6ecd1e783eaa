"""apply_edits on real files: tolerant matching, composition, atomic writes, feedback."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from council.edits import (
    EditPolicy,
    FileEdit,
    Hunk,
    apply_edits,
    feedback_for,
    parse_edits,
)

CALC = """\
class Calculator:
    def add(self, a, b):
        return a + b

    def sub(self, a, b):
        return a + b

    def mul(self, a, b):
        return a * b
"""


def _repo(tmp_path: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        target = tmp_path / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, newline="")
    return tmp_path


def _sr(path: str, search: str, replace: str) -> FileEdit:
    return FileEdit(path=path, kind="search_replace", search=search, replace=replace)


def _apply(root: Path, answer: str, policy: EditPolicy | None = None):
    return apply_edits(root, parse_edits(answer), policy or EditPolicy())


def test_end_to_end_answer_with_whole_file_search_replace_and_diff(tmp_path: Path) -> None:
    root = _repo(tmp_path, {"app/calc.py": CALC, "setup.cfg": "[tool]\nname = x\n"})
    answer = (
        "Fixing `sub` and adding a helper module.\n\n"
        "app/calc.py\n```python\n<<<<<<< SEARCH\n    def sub(self, a, b):\n        return a + b\n"
        "=======\n    def sub(self, a, b):\n        return a - b\n>>>>>>> REPLACE\n```\n\n"
        "**app/util.py**\n```python\ndef double(x):\n    return 2 * x\n```\n\n"
        "```diff\n--- a/setup.cfg\n+++ b/setup.cfg\n@@ -2 +2 @@\n-name = x\n+name = calc\n```\n"
    )
    result = _apply(root, answer)
    assert result.ok, feedback_for(result)
    assert result.applied == ["app/calc.py", "app/util.py", "setup.cfg"]
    assert "return a - b" in (root / "app/calc.py").read_text()
    assert (root / "app/calc.py").read_text().count("return a + b") == 1
    assert (root / "app/util.py").read_text() == "def double(x):\n    return 2 * x\n"
    assert (root / "setup.cfg").read_text() == "[tool]\nname = calc\n"
    assert feedback_for(result) == ""


def test_trailing_whitespace_in_file_does_not_block_the_match(tmp_path: Path) -> None:
    root = _repo(tmp_path, {"a.py": "def f():   \n    return 1  \n"})
    result = apply_edits(
        root, [_sr("a.py", "def f():\n    return 1\n", "def f():\n    return 2\n")], EditPolicy()
    )
    assert result.ok
    assert (root / "a.py").read_text() == "def f():\n    return 2\n"


def test_indent_drift_is_tolerated_and_the_replacement_reindented(tmp_path: Path) -> None:
    root = _repo(tmp_path, {"app/calc.py": CALC})
    # The model quoted the method without its class indentation.
    edit = _sr(
        "app/calc.py",
        "def sub(self, a, b):\n    return a + b\n",
        "def sub(self, a, b):\n    # subtraction\n    return a - b\n",
    )
    result = apply_edits(root, [edit], EditPolicy())
    assert result.ok, feedback_for(result)
    assert (
        "    def sub(self, a, b):\n        # subtraction\n        return a - b\n"
        in (root / "app/calc.py").read_text()
    )


def test_over_indented_search_matches_too(tmp_path: Path) -> None:
    root = _repo(tmp_path, {"m.py": "def f():\n    x = 1\n    return x\n"})
    edit = _sr("m.py", "        x = 1\n        return x\n", "        x = 2\n        return x\n")
    result = apply_edits(root, [edit], EditPolicy())
    assert result.ok
    assert (root / "m.py").read_text() == "def f():\n    x = 2\n    return x\n"


def test_blank_line_differences_are_tolerated(tmp_path: Path) -> None:
    root = _repo(tmp_path, {"app/calc.py": CALC})
    edit = _sr(
        "app/calc.py",
        "        return a + b\n    def sub(self, a, b):\n        return a + b\n",
        "        return a + b\n\n    def sub(self, a, b):\n        return a - b\n",
    )
    result = apply_edits(root, [edit], EditPolicy())
    assert result.ok, feedback_for(result)
    text = (root / "app/calc.py").read_text()
    assert "    def sub(self, a, b):\n        return a - b\n\n    def mul" in text
    assert text.count("return a + b") == 1


def test_ambiguous_search_is_refused_and_file_unchanged(tmp_path: Path) -> None:
    root = _repo(tmp_path, {"app/calc.py": CALC})
    result = apply_edits(
        root, [_sr("app/calc.py", "        return a + b\n", "        return 0\n")], EditPolicy()
    )
    assert not result.ok and result.applied == []
    (failure,) = result.failed
    assert "matches 2 places" in failure.reason
    assert "lines 3, 6" in failure.reason
    assert (root / "app/calc.py").read_text() == CALC


def test_not_found_reports_closest_real_lines(tmp_path: Path) -> None:
    root = _repo(tmp_path, {"app/calc.py": CALC})
    edit = _sr(
        "app/calc.py",
        "    def multiply(self, a, b):\n        return a * b\n",
        "    def mul(self, a, b):\n        return b * a\n",
    )
    result = apply_edits(root, [edit], EditPolicy())
    (failure,) = result.failed
    assert "does not match" in failure.reason
    assert "    def mul(self, a, b):\n        return a * b" in failure.closest
    assert failure.search == "    def multiply(self, a, b):\n        return a * b\n"
    message = feedback_for(result)
    assert "def multiply(self, a, b):" in message  # what the model searched for
    assert "    def mul(self, a, b):" in message  # the real lines to copy
    assert "app/calc.py" in message
    assert (root / "app/calc.py").read_text() == CALC


def test_edits_to_one_file_compose_in_order(tmp_path: Path) -> None:
    root = _repo(tmp_path, {"a.py": "x = 1\n"})
    edits = [
        _sr("a.py", "x = 1\n", "x = 1\ny = 2\n"),
        _sr("a.py", "y = 2\n", "y = 3\n"),  # only exists after the first edit
        FileEdit(path="a.py", kind="udiff", hunks=[Hunk([" y = 3", "+z = 4"])]),
    ]
    result = apply_edits(root, edits, EditPolicy())
    assert result.ok and result.applied == ["a.py"]
    assert (root / "a.py").read_text() == "x = 1\ny = 3\nz = 4\n"


def test_empty_search_creates_then_appends(tmp_path: Path) -> None:
    root = _repo(tmp_path, {"notes.txt": "one"})
    edits = [_sr("pkg/new.py", "", "A = 1\n"), _sr("notes.txt", "", "two\n")]
    result = apply_edits(root, edits, EditPolicy())
    assert result.ok
    assert (root / "pkg/new.py").read_text() == "A = 1\n"
    assert (root / "notes.txt").read_text() == "one\ntwo\n"


def test_search_in_missing_file_fails(tmp_path: Path) -> None:
    result = apply_edits(tmp_path, [_sr("nope.py", "x\n", "y\n")], EditPolicy())
    assert "does not exist" in result.failed[0].reason
    assert not (tmp_path / "nope.py").exists()


def test_diff_with_wrong_line_numbers_and_invented_edge_context(tmp_path: Path) -> None:
    root = _repo(tmp_path, {"app/calc.py": CALC})
    answer = (
        "```diff\n--- a/app/calc.py\n+++ b/app/calc.py\n"
        "@@ -90,4 +90,4 @@\n"
        "     def sub(self, a, b):\n"
        "-        return a + b\n"
        "+        return a - b\n"
        "     # a context line the file does not have\n"
        "@@ -200,2 +200,3 @@\n"
        "     def mul(self, a, b):\n"
        "         return a * b\n"
        "+    div = None\n"
        "```\n"
    )
    result = _apply(root, answer)
    assert result.ok, feedback_for(result)
    text = (root / "app/calc.py").read_text()
    assert "    def sub(self, a, b):\n        return a - b\n" in text
    assert text.endswith("        return a * b\n    div = None\n")


def test_diff_new_file_and_delete(tmp_path: Path) -> None:
    root = _repo(tmp_path, {"old.py": "OLD = 1\n"})
    answer = (
        "```diff\n--- /dev/null\n+++ b/pkg/new.py\n@@ -0,0 +1,2 @@\n+A = 1\n+B = 2\n"
        "--- a/old.py\n+++ /dev/null\n@@ -1 +0,0 @@\n-OLD = 1\n```\n"
    )
    result = _apply(root, answer)
    assert result.ok and result.applied == ["pkg/new.py", "old.py"]
    assert (root / "pkg/new.py").read_text() == "A = 1\nB = 2\n"
    assert not (root / "old.py").exists()


def test_diff_from_dev_null_onto_existing_file_fails(tmp_path: Path) -> None:
    root = _repo(tmp_path, {"a.py": "keep = True\n"})
    answer = "```diff\n--- /dev/null\n+++ b/a.py\n@@\n+x = 1\n```\n"
    result = _apply(root, answer)
    assert "already exists" in result.failed[0].reason
    assert (root / "a.py").read_text() == "keep = True\n"


def test_failed_hunk_keeps_the_whole_diff_out_but_other_files_apply(tmp_path: Path) -> None:
    root = _repo(tmp_path, {"a.py": "a = 1\nb = 2\n", "c.py": "c = 1\n"})
    answer = (
        "```diff\n--- a/a.py\n+++ b/a.py\n@@\n-a = 1\n+a = 10\n@@\n-zzz = 9\n+zzz = 0\n"
        "--- a/c.py\n+++ b/c.py\n@@\n-c = 1\n+c = 2\n```\n"
    )
    result = _apply(root, answer)
    assert result.applied == ["c.py"]
    (failure,) = result.failed
    assert "Hunk 2 of 2" in failure.reason
    assert failure.search == "zzz = 9\n"
    assert (root / "a.py").read_text() == "a = 1\nb = 2\n"
    assert (root / "c.py").read_text() == "c = 2\n"
    assert "`c.py`" in feedback_for(result)  # told which files already hold the change


def test_crlf_file_keeps_crlf(tmp_path: Path) -> None:
    root = _repo(tmp_path, {"win.py": "a = 1\r\nb = 2\r\n"})
    result = _apply(
        root, "win.py\n```python\n<<<<<<< SEARCH\nb = 2\n=======\nb = 3\n>>>>>>> REPLACE\n```"
    )
    assert result.ok
    assert (root / "win.py").read_bytes() == b"a = 1\r\nb = 3\r\n"


def test_missing_final_newline_is_preserved(tmp_path: Path) -> None:
    root = _repo(tmp_path, {"a.txt": "a\nb"})
    result = apply_edits(root, [_sr("a.txt", "a\n", "A\n")], EditPolicy())
    assert result.ok
    assert (root / "a.txt").read_text() == "A\nb"


def test_file_mode_is_kept_and_no_temp_files_are_left(tmp_path: Path) -> None:
    root = _repo(tmp_path, {"run.sh": "#!/bin/sh\necho 1\n"})
    os.chmod(root / "run.sh", 0o755)
    result = apply_edits(root, [_sr("run.sh", "echo 1\n", "echo 2\n")], EditPolicy())
    assert result.ok
    assert stat.S_IMODE((root / "run.sh").stat().st_mode) == 0o755
    assert sorted(p.name for p in root.iterdir()) == ["run.sh"]


def test_whole_file_with_elided_code_is_not_written(tmp_path: Path) -> None:
    root = _repo(tmp_path, {"app/calc.py": CALC})
    answer = (
        "**app/calc.py**\n```python\nclass Calculator:\n    # ... existing methods ...\n\n"
        "    def div(self, a, b):\n        return a / b\n```\n"
    )
    result = _apply(root, answer)
    assert "elides code" in result.failed[0].reason
    assert (root / "app/calc.py").read_text() == CALC


def test_whole_file_replaces_existing_content(tmp_path: Path) -> None:
    root = _repo(tmp_path, {"app/calc.py": CALC})
    result = _apply(root, "app/calc.py\n```python\nclass Calculator:\n    pass\n```\n")
    assert result.ok
    assert (root / "app/calc.py").read_text() == "class Calculator:\n    pass\n"


def test_non_utf8_file_is_a_failure_not_a_crash(tmp_path: Path) -> None:
    (tmp_path / "blob.py").write_bytes(b"\xff\xfe\x00binary")
    result = apply_edits(tmp_path, [_sr("blob.py", "x\n", "y\n")], EditPolicy())
    assert "not a UTF-8 text file" in result.failed[0].reason
    assert (tmp_path / "blob.py").read_bytes() == b"\xff\xfe\x00binary"


def test_feedback_fence_survives_backticks_in_the_search_text(tmp_path: Path) -> None:
    root = _repo(tmp_path, {"README.md": "# x\n"})
    result = apply_edits(root, [_sr("README.md", "```bash\nrun\n```\n", "")], EditPolicy())
    message = feedback_for(result)
    assert "````\n```bash\nrun\n```\n````" in message


def test_closest_lines_are_found_in_a_large_file(tmp_path: Path) -> None:
    body = "".join(f"def handler_{i}(request):\n    return respond({i})\n\n" for i in range(2000))
    root = _repo(tmp_path, {"big.py": body})
    edit = _sr(
        "big.py",
        "def handler_1234(req):\n    return respond(1234)\n",
        "def handler_1234(req):\n    return respond(0)\n",
    )
    result = apply_edits(root, [edit], EditPolicy())
    (failure,) = result.failed
    assert "def handler_1234(request):\n    return respond(1234)" in failure.closest
    assert (root / "big.py").read_text() == body


def test_write_errors_become_failures_and_other_files_still_land(tmp_path: Path) -> None:
    root = _repo(tmp_path, {"a": "I am a file\n"})
    edits = [
        FileEdit(path="a/b.py", kind="whole", content="B = 1\n"),  # `a` is a file, not a folder
        FileEdit(path="c.py", kind="whole", content="C = 1\n"),
    ]
    result = apply_edits(root, edits, EditPolicy())
    assert result.applied == ["c.py"]
    (failure,) = result.failed
    assert failure.edit.path == "a/b.py" and "could not be written" in failure.reason
    assert (root / "a").read_text() == "I am a file\n"
    assert (root / "c.py").read_text() == "C = 1\n"


def test_ambiguous_diff_hunk_is_not_guessed(tmp_path: Path) -> None:
    root = _repo(tmp_path, {"app/calc.py": CALC})
    answer = (
        "```diff\n--- a/app/calc.py\n+++ b/app/calc.py\n@@ -6 +6 @@\n"
        "-        return a + b\n+        return a - b\n```\n"
    )
    result = _apply(root, answer)
    assert "matches 2 places" in result.failed[0].reason
    assert (root / "app/calc.py").read_text() == CALC


def test_edits_built_with_crlf_text_apply_cleanly(tmp_path: Path) -> None:
    root = _repo(tmp_path, {"a.py": "a = 1\r\nb = 2\r\n"})
    edits = [
        _sr("a.py", "a = 1\r\n", "a = 10\r\n"),
        FileEdit(path="a.py", kind="udiff", hunks=[Hunk(["-b = 2\r", "+b = 20\r"])]),
    ]
    result = apply_edits(root, edits, EditPolicy())
    assert result.ok, feedback_for(result)
    assert (root / "a.py").read_bytes() == b"a = 10\r\nb = 20\r\n"


def test_feedback_only_mentions_applied_files_when_there_are_some(tmp_path: Path) -> None:
    root = _repo(tmp_path, {"a.py": "a = 1\n"})
    result = apply_edits(root, [_sr("a.py", "zzz\n", "y\n")], EditPolicy())
    message = feedback_for(result)
    assert message.startswith("Some of your edits were not applied.")
    assert "already hold your changes" not in message
    assert "Do not resend" not in message


def test_an_edit_of_the_last_line_follows_the_answer_s_final_newline(tmp_path: Path) -> None:
    # The file has no final newline; the answer's REPLACE text ends its last line with one.
    root = _repo(tmp_path, {"Calc.java": "class Calc {\n    int one() { return 1; }\n}"})
    answer = (
        "Calc.java\n```java\n<<<<<<< SEARCH\n    int one() { return 1; }\n}\n=======\n"
        "    int one() { return 1; }\n    int two() { return 2; }\n}\n>>>>>>> REPLACE\n```\n"
    )
    result = _apply(root, answer)
    assert result.ok, feedback_for(result)
    assert (root / "Calc.java").read_text() == (
        "class Calc {\n    int one() { return 1; }\n    int two() { return 2; }\n}\n"
    )
    # A REPLACE text without a final newline is followed too, and so is deleting the tail.
    root = _repo(tmp_path / "b", {"a.txt": "a\nb\n"})
    assert apply_edits(root, [_sr("a.txt", "b\n", "B")], EditPolicy()).ok
    assert (root / "a.txt").read_text() == "a\nB"
    root = _repo(tmp_path / "c", {"a.txt": "a\nb"})
    assert apply_edits(root, [_sr("a.txt", "b\n", "")], EditPolicy()).ok
    assert (root / "a.txt").read_text() == "a\n"


def _big_module(min_bytes: int) -> tuple[str, int]:
    """A Python module of at least `min_bytes`: many small functions, each distinct."""
    parts, i = [], 0
    size = 0
    while size < min_bytes:
        part = f"def function_{i}(x):\n    return x + {i}\n\n\n"
        parts.append(part)
        size += len(part)
        i += 1
    return "".join(parts), i


def test_search_replace_applies_to_a_one_megabyte_file(tmp_path: Path) -> None:
    text, count = _big_module(1_000_000)
    root = _repo(tmp_path, {"big.py": text})
    n = count - 3
    answer = (
        "The bug is near the end of the module:\n\n"
        "big.py\n```python\n<<<<<<< SEARCH\n"
        f"def function_{n}(x):\n    return x + {n}\n=======\n"
        f"def function_{n}(x):\n    return x - {n}\n>>>>>>> REPLACE\n```\n"
    )
    result = apply_edits(root, parse_edits(answer), EditPolicy())  # the default limit
    assert result.ok and result.applied == ["big.py"]
    after = (root / "big.py").read_text()
    assert f"return x - {n}\n" in after and f"return x + {n}\n" not in after
    assert len(after) == len(text)  # one character changed, nothing else rewritten


def test_the_size_limit_comes_from_council_yaml_and_names_the_setting(tmp_path: Path) -> None:
    from council.config import parse_config

    config = parse_config("limits: {max_file_kb: 1}\n")
    assert config.limits.max_file_bytes == 1024
    assert parse_config("").limits.max_file_kb >= 2048  # the default holds real modules
    root = _repo(tmp_path, {"a.py": "x = 1\n"})
    policy = EditPolicy(max_file_bytes=config.limits.max_file_bytes)
    result = apply_edits(root, [_sr("a.py", "x = 1\n", "x = 1\n" + "y" * 2000 + "\n")], policy)
    (refusal,) = result.refused
    assert (
        "limits.max_file_kb" in refusal.reason and "over the limit of 1024 bytes" in refusal.reason
    )
    assert (root / "a.py").read_text() == "x = 1\n"
