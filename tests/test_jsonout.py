"""JSON extraction from model-shaped replies: fences, prose, trailing commas, junk."""

from __future__ import annotations

import pytest

from council.gateway.jsonout import JSONExtractionError, extract_json


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"a": 1}', {"a": 1}),
        ("  [1, 2, 3]\n", [1, 2, 3]),
        ('Here is the plan:\n```json\n{"tasks": ["x"]}\n```\nLet me know!', {"tasks": ["x"]}),
        ('```\n{"a": "b"}\n```', {"a": "b"}),
        ('Sure! {"a": {"b": [1, 2]}} Hope this helps.', {"a": {"b": [1, 2]}}),
        ('{"a": 1, "b": [1, 2,],}', {"a": 1, "b": [1, 2]}),
        ('```json\n{\n  "a": 1,\n}\n```', {"a": 1}),
        # braces and commas inside strings are data, not structure
        (
            'Result: {"code": "if (x) { y(); }", "s": "a,}"} done',
            {"code": "if (x) { y(); }", "s": "a,}"},
        ),
        ('{"q": "he said \\"}\\" loudly"}', {"q": 'he said "}" loudly'}),
        # a python block before the json one does not win
        ('```python\nprint({1: 2})\n```\n```json\n{"ok": true}\n```', {"ok": True}),
        # prose with template braces before the real object
        ('Use the {name} placeholder.\n{"name": "x"}', {"name": "x"}),
        # an unterminated fence at the end of a truncated reply
        ('```json\n{"a": [1]}', {"a": [1]}),
        ("{\u201ckey\u201d: 1}", {"key": 1}),
    ],
)
def test_extracts(text: str, expected: object) -> None:
    assert extract_json(text) == expected


@pytest.mark.parametrize(
    "text",
    ["", "   ", "I cannot do that.", '{"a": 1', "```json\nnot json\n```", "42", '"just a string"'],
)
def test_refuses_text_without_json(text: str) -> None:
    with pytest.raises(JSONExtractionError):
        extract_json(text)
