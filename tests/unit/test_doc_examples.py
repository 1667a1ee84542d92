"""The guide's example extraction and answer matching (tests/support/doc_examples.py)."""

from __future__ import annotations

import pytest

from tests.support.doc_examples import ANY, blocks, json_mismatch, output_json, text_mismatch

PAGE = """# A page

```shell
make run
```

```sh
curl -s "$CB/health"
```

```json expected
{"status": "ok"}
```

````python
print("```")
````

```text
not an example
```
"""


def test_blocks_are_found_with_their_expected_answers() -> None:
    found = blocks(PAGE)
    shown = [(b.lang, b.line) for b in found]
    assert shown == [("shell", 3), ("sh", 7), ("python", 15), ("text", 19)]
    assert found[1].expected is not None and found[1].expected.code == '{"status": "ok"}\n'
    assert found[2].code == 'print("```")\n'  # a longer fence holds a shorter one
    assert found[0].expected is None and found[3].expected is None


def test_an_expected_answer_must_follow_an_example() -> None:
    with pytest.raises(ValueError, match="follows no example"):
        blocks("```text\nx\n```\n\n```json expected\n{}\n```\n")


def test_json_answers_match_what_they_show() -> None:
    actual = {"id": "a1", "status": "completed", "usage": {"total_tokens": 9}, "tags": [1, 2, 3]}
    assert json_mismatch({"status": "completed", "id": ANY}, actual) is None
    assert json_mismatch({"usage": {"total_tokens": ANY}, "tags": [1, ANY]}, actual) is None
    assert json_mismatch({"tags": [1, 2, 3]}, actual) is None
    assert "expected 'failed'" in json_mismatch({"status": "failed"}, actual)
    assert "no key 'error'" in json_mismatch({"error": ANY}, actual)
    assert "expected 2 items" in json_mismatch({"tags": [1, 2]}, actual)
    assert "expected 1" in json_mismatch({"usage": {"total_tokens": 1}}, actual)
    assert json_mismatch({"n": 1}, {"n": True}) is not None  # a bool is no number here


def test_output_is_the_whole_or_the_last_line() -> None:
    assert output_json('{"a": 1}\n') == {"a": 1}
    assert output_json('progress\n{"a": 2}\n\n') == {"a": 2}
    with pytest.raises(ValueError):
        output_json("\n")


def test_text_answers_are_lines_in_order_with_gaps() -> None:
    output = "id: 1\nevent: execution_start\ndata: {...}\n\nid: 9\nevent: execution_complete\n"
    assert text_mismatch("event: execution_start\nid: …\nevent: execution_complete", output) is None
    assert text_mismatch("event: execution_complete\nevent: execution_start", output) is not None
