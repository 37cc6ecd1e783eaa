"""One reader of fenced blocks for the parsers of model answers: edits, JSON, patches, commands."""

from __future__ import annotations

from council.fences import blocks
from council.gateway.jsonout import extract_json
from council.recovery.patch import diff_text
from council.recovery.proposed import proposed_commands

ANSWER = """\
Here is the README with an example inside:

```markdown title="README.md"
# Tool

```bash
tool --help
```
```

Then run:

  ~~~sh
  $ pip install -e .
  # a comment is not a command
  pytest -q
  ~~~

And the fix:

```diff
--- a/app.py
+++ b/app.py
@@ -1,2 +1,2 @@
 text = '''
-```
+~~~
 '''
```

```json
{"done": true,}
```
trailing prose, and a fence never closed:
```python
print("end")
"""


def test_blocks_nest_dedent_keep_diffs_whole_and_run_unclosed_fences_to_the_end() -> None:
    found = blocks(ANSWER)
    assert [b.lang for b in found] == ["markdown", "sh", "diff", "json", "python"]
    assert found[0].info == 'markdown title="README.md"'
    assert found[0].body == "# Tool\n\n```bash\ntool --help\n```\n"  # the inner fence nests
    assert found[1].body.startswith("$ pip install")  # indented fence: body dedented
    assert "-```\n+~~~\n" in found[2].body  # a fence-like diff line does not close the diff
    assert found[4].body == 'print("end")\n' and found[4].end == len(ANSWER.splitlines())


def test_every_answer_reader_uses_the_same_blocks() -> None:
    assert proposed_commands(ANSWER) == ["pip install -e .", "pytest -q"]
    assert diff_text(ANSWER).startswith("--- a/app.py\n+++ b/app.py\n")
    assert extract_json(ANSWER) == {"done": True}


def test_inline_triple_backticks_are_not_a_fence() -> None:
    assert blocks("use ```x``` inline\nno block here\n") == []
