"""parse_edits against answers shaped like real model output."""

from __future__ import annotations

import pytest

from council.edits import FileEdit, parse_edits

WHOLE_MULTI = """\
Sure! I'll add a `Calculator` class and wire it into the package.

**app/calc.py**
```javascript
class Calculator:
    def add(self, a: int, b: int) -> int:
        return a + b
```

Then export it from `app/__init__.py`:

```python
from app.calc import Calculator

__all__ = ["Calculator"]
```

Now run the tests in `tests/test_calc.py`:

```bash
pytest tests/test_calc.py -q
```

That's it! Let me know if you need anything else.
"""


def test_whole_files_with_prose_bold_path_and_wrong_fence_language() -> None:
    edits = parse_edits(WHOLE_MULTI)
    assert [(e.path, e.kind) for e in edits] == [
        ("app/calc.py", "whole"),
        ("app/__init__.py", "whole"),
    ]
    assert edits[0].content == (
        "class Calculator:\n    def add(self, a: int, b: int) -> int:\n        return a + b\n"
    )
    assert edits[1].content.startswith("from app.calc import Calculator\n")
    # the shell fence after a prose mention of the test file is not an edit of that file


@pytest.mark.parametrize(
    "label",
    [
        "app/service.py",
        "**app/service.py**",
        "`app/service.py`",
        "`app/service.py`:",
        "# File: app/service.py",
        "File: app/service.py",
        "### app/service.py",
        "#### `app/service.py`",
        "**File: `app/service.py`**",
        "Filename: app/service.py",
        "- `app/service.py` (new file)",
        "1. **app/service.py**",
        "./app/service.py",
    ],
)
def test_path_label_forms_before_the_fence(label: str) -> None:
    answer = f"Here you go.\n\n{label}\n```python\nVALUE = 1\n```\n"
    assert parse_edits(answer) == [
        FileEdit(path="app/service.py", kind="whole", content="VALUE = 1\n")
    ]


@pytest.mark.parametrize(
    "info",
    [
        'python title="app/x.py"',
        "python title=app/x.py",
        "app/x.py",
        "python:app/x.py",
        "python app/x.py",
        "py filename=app/x.py",
    ],
)
def test_path_in_fence_info_string(info: str) -> None:
    edits = parse_edits(f"The updated module:\n\n```{info}\nx = 1\n```\n")
    assert [(e.path, e.content) for e in edits] == [("app/x.py", "x = 1\n")]


def test_path_as_first_line_comment_inside_fence_is_used_and_dropped() -> None:
    answer = (
        "Here are both files.\n\n"
        "```python\n# app/models.py\nclass User:\n    pass\n```\n\n"
        "```js\n// src/index.js\nexport const x = 1;\n```\n\n"
        "```sql\n-- File: db/001_init.sql\nCREATE TABLE t (id int);\n```\n"
    )
    edits = parse_edits(answer)
    assert [(e.path, e.content) for e in edits] == [
        ("app/models.py", "class User:\n    pass\n"),
        ("src/index.js", "export const x = 1;\n"),
        ("db/001_init.sql", "CREATE TABLE t (id int);\n"),
    ]


def test_comment_is_kept_when_the_path_came_from_the_label() -> None:
    edits = parse_edits("app/a.py\n```python\n# app/a.py\nA = 1\n```\n")
    assert edits[0].content == "# app/a.py\nA = 1\n"


def test_crlf_answer_is_normalised() -> None:
    answer = "Updated:\r\n\r\n**app/a.py**\r\n```python\r\ndef f():\r\n    return 1\r\n```\r\n"
    assert parse_edits(answer)[0].content == "def f():\n    return 1\n"


def test_markdown_fences_inside_a_python_docstring_stay_in_the_content() -> None:
    content = (
        '"""Helpers.\n'
        "\n"
        "Example:\n"
        "\n"
        "```python\n"
        ">>> slug('A B')\n"
        "'a-b'\n"
        "```\n"
        '"""\n'
        "\n"
        "\n"
        "def slug(s: str) -> str:\n"
        '    return s.lower().replace(" ", "-")\n'
    )
    answer = f"Here is `app/text.py`:\n\n```python\n{content}```\n\nDone.\n"
    edits = parse_edits(answer)
    assert len(edits) == 1
    assert edits[0].content == content


def test_readme_with_inner_fences_and_a_four_backtick_outer_fence() -> None:
    readme = "# Tool\n\nInstall:\n\n```\npip install tool\n```\n"
    answer = f"README.md\n````markdown\n{readme}````\n"
    assert parse_edits(answer)[0].content == readme
    # with a three-backtick outer fence the inner one has a language, so it nests
    readme2 = "# Tool\n\n```bash\npip install tool\n```\n\nMore text.\n"
    answer2 = f"README.md\n```markdown\n{readme2}```\n"
    assert parse_edits(answer2)[0].content == readme2


def test_fence_indented_in_a_list_item_is_dedented() -> None:
    answer = "1. Create `app/a.py`:\n\n   ```python\n   def f():\n       return 1\n   ```\n"
    assert parse_edits(answer)[0].content == "def f():\n    return 1\n"


@pytest.mark.parametrize(
    "answer",
    [
        "",
        "I could not find anything to change; the code already does that.",
        "Run this:\n\n```bash\npip install requests\n```\n",
        "The `app.models` module should look like:\n\n```python\nclass A: ...\n```\n",
        "Output from `tests/test_x.py`:\n\n```text\nFAILED tests/test_x.py::test_a\n```\n",
        "```python\nprint('no path anywhere')\n```\n",
    ],
)
def test_answers_without_edits_give_an_empty_list(answer: str) -> None:
    assert parse_edits(answer) == []


SEARCH_REPLACE = """\
I'll fix the subtraction bug and rename the helper.

app/calc.py
```python
<<<<<<< SEARCH
def sub(a, b):
    return a + b
=======
def sub(a, b):
    return a - b
>>>>>>> REPLACE
```

Now update the call site in the same file:

```python
<<<<<<< SEARCH
    total = sub(x, y)
=======
    total = sub(x, y)
    log(total)
>>>>>>> REPLACE
```

And create a new module:

```python
app/log.py
<<<<<<< SEARCH
=======
def log(value):
    print(value)
>>>>>>> REPLACE
```
"""


def test_search_replace_blocks_with_path_reuse_and_empty_search() -> None:
    edits = parse_edits(SEARCH_REPLACE)
    assert [(e.path, e.kind) for e in edits] == [
        ("app/calc.py", "search_replace"),
        ("app/calc.py", "search_replace"),
        ("app/log.py", "search_replace"),
    ]
    assert edits[0].search == "def sub(a, b):\n    return a + b\n"
    assert edits[0].replace == "def sub(a, b):\n    return a - b\n"
    assert edits[1].replace == "    total = sub(x, y)\n    log(total)\n"
    assert edits[2].search == ""
    assert edits[2].replace == "def log(value):\n    print(value)\n"


def test_several_blocks_in_one_fence_and_path_in_prose_and_info() -> None:
    answer = (
        "Edit `src/app.js` like this:\n"
        "```javascript\n"
        "<<<<<<< SEARCH\nconst a = 1;\n=======\nconst a = 2;\n>>>>>>> REPLACE\n"
        "<<<<<<< SEARCH\nconst b = 1;\n=======\nconst b = 2;\n>>>>>>> REPLACE\n"
        "```\n\n"
        '```python title="lib/x.py"\n'
        "<<<<<<< SEARCH\nX = 1\n=======\nX = 2\n>>>>>>> REPLACE\n"
        "```\n"
    )
    edits = parse_edits(answer)
    assert [(e.path, e.search, e.replace) for e in edits] == [
        ("src/app.js", "const a = 1;\n", "const a = 2;\n"),
        ("src/app.js", "const b = 1;\n", "const b = 2;\n"),
        ("lib/x.py", "X = 1\n", "X = 2\n"),
    ]


def test_search_replace_without_fences_and_with_markdown_in_content() -> None:
    answer = (
        "docs/usage.md\n"
        "<<<<<<< SEARCH\n## Usage\n=======\n## Usage\n\n```bash\ncouncil run\n```\n"
        ">>>>>>> REPLACE\n"
    )
    edits = parse_edits(answer)
    assert len(edits) == 1
    assert edits[0].path == "docs/usage.md"
    assert edits[0].replace == "## Usage\n\n```bash\ncouncil run\n```\n"


def test_unfinished_search_replace_block_is_ignored() -> None:
    answer = "app/a.py\n```python\n<<<<<<< SEARCH\nx = 1\n=======\nx = 2\n```\n"
    assert parse_edits(answer) == []


GIT_DIFF = """\
Here is the patch:

```diff
diff --git a/app/calc.py b/app/calc.py
index 3b18e51..a9c2f0d 100644
--- a/app/calc.py
+++ b/app/calc.py
@@ -10,7 +10,7 @@ class Calculator:
     def sub(self, a, b):
-        return a + b
+        return a - b

     def mul(self, a, b):
@@ -40,3 +40,6 @@
         return a / b
+
+    def neg(self, a):
+        return -a
--- /dev/null
+++ b/app/util.py
@@ -0,0 +1,2 @@
+def clamp(x, lo, hi):
+    return max(lo, min(x, hi))
--- a/app/old.py
+++ /dev/null
@@ -1,1 +0,0 @@
-OLD = True
```

Let me know if the tests pass.
"""


def test_git_style_diff_with_several_files_new_and_deleted() -> None:
    edits = parse_edits(GIT_DIFF)
    assert [(e.path, e.kind, e.is_new_file, e.is_delete) for e in edits] == [
        ("app/calc.py", "udiff", False, False),
        ("app/util.py", "udiff", True, False),
        ("app/old.py", "udiff", False, True),
    ]
    first, second = edits[0].hunks
    assert first.old_start == 10
    assert first.before == [
        "    def sub(self, a, b):",
        "        return a + b",
        "",
        "    def mul(self, a, b):",
    ]
    assert first.after == [
        "    def sub(self, a, b):",
        "        return a - b",
        "",
        "    def mul(self, a, b):",
    ]
    assert second.after[-2:] == ["    def neg(self, a):", "        return -a"]
    assert edits[1].hunks[0].after == ["def clamp(x, lo, hi):", "    return max(lo, min(x, hi))"]


def test_bare_diff_without_fence_or_line_numbers_then_prose() -> None:
    answer = (
        "Apply this:\n\n"
        "--- app/a.py\n+++ app/a.py\n@@\n def f():\n-    return 1\n+    return 2\n\n"
        "This changes the return value.\n"
    )
    edits = parse_edits(answer)
    assert len(edits) == 1
    assert edits[0].path == "app/a.py"
    assert edits[0].hunks[0].lines == [" def f():", "-    return 1", "+    return 2"]


def test_diff_fence_with_path_label_and_hunks_only() -> None:
    answer = "`app/a.py`\n```diff\n@@ ... @@\n def f():\n-    return 1\n+    return 2\n```\n"
    edits = parse_edits(answer)
    assert [(e.path, e.kind) for e in edits] == [("app/a.py", "udiff")]
    assert edits[0].hunks[0].old_start is None


def test_diff_in_fence_without_diff_language() -> None:
    answer = "```python\n--- a/x.py\n+++ b/x.py\n@@ -1 +1 @@\n-a = 1\n+a = 2\n```\n"
    edits = parse_edits(answer)
    assert [(e.path, e.hunks[0].before, e.hunks[0].after) for e in edits] == [
        ("x.py", ["a = 1"], ["a = 2"])
    ]


def test_blank_context_line_without_its_space_stays_inside_the_hunk() -> None:
    answer = "```diff\n--- a/x.py\n+++ b/x.py\n@@\n a = 1\n\n-b = 2\n+b = 3\n```\n"
    hunk = parse_edits(answer)[0].hunks[0]
    assert hunk.before == ["a = 1", "", "b = 2"]


def test_mixed_forms_come_back_in_the_order_written() -> None:
    answer = (
        "First the test:\n\n**tests/test_a.py**\n```python\ndef test_a():\n    assert True\n```\n\n"
        "Then the fix:\n\napp/a.py\n```python\n<<<<<<< SEARCH\nA = 1\n=======\nA = 2\n"
        ">>>>>>> REPLACE\n```\n\n"
        "And the config:\n\n```diff\n--- a/setup.cfg\n+++ b/setup.cfg\n@@\n-x\n+y\n```\n"
    )
    assert [(e.path, e.kind) for e in parse_edits(answer)] == [
        ("tests/test_a.py", "whole"),
        ("app/a.py", "search_replace"),
        ("setup.cfg", "udiff"),
    ]


def test_unsafe_paths_are_parsed_so_the_applier_can_refuse_them() -> None:
    answer = "**../outside.py**\n```python\nx = 1\n```\n\n/etc/passwd\n```\nroot::0:0\n```\n"
    assert [e.path for e in parse_edits(answer)] == ["../outside.py", "/etc/passwd"]


@pytest.mark.parametrize(
    "intro",
    [
        "You can now call `app/calc.py` functions like this:",
        "Here's how to use `app/calc.py`:",
        "For example, with `app/calc.py` in place:",
        "Run `app/calc.py` directly:",
    ],
)
def test_usage_snippets_after_a_prose_mention_do_not_overwrite_the_file(intro: str) -> None:
    answer = f"{intro}\n\n```python\nfrom app.calc import add\nprint(add(1, 2))\n```\n"
    assert parse_edits(answer) == []


def test_prose_that_introduces_the_file_still_names_it() -> None:
    answer = (
        "Update `app/calc.py` to use the new helper:\n\n```python\nfrom app.util import h\n```\n"
    )
    assert [e.path for e in parse_edits(answer)] == ["app/calc.py"]


def test_older_original_updated_markers() -> None:
    answer = "app/a.py\n```\n<<<<<<< ORIGINAL\nA = 1\n=======\nA = 2\n>>>>>>> UPDATED\n```\n"
    assert [(e.path, e.search, e.replace) for e in parse_edits(answer)] == [
        ("app/a.py", "A = 1\n", "A = 2\n")
    ]


def test_search_replace_path_is_not_taken_from_an_earlier_block_content() -> None:
    answer = (
        "First file:\n\n**app/a.py**\n```python\nimport os\n# config.py\n```\n\n"
        "```python\n<<<<<<< SEARCH\nX = 1\n=======\nX = 2\n>>>>>>> REPLACE\n```\n"
    )
    edits = parse_edits(answer)
    # the block names no file and none came before it: it is dropped, not sent to config.py
    assert [(e.path, e.kind) for e in edits] == [("app/a.py", "whole")]
