"""The guide's examples as data: fenced blocks of `docs/guide/*.md`, which of them run, and
whether what one printed matches the answer the guide shows after it.

- ```` ```sh ````, ```` ```python ```` and ```` ```js ```` blocks run, in order, each page in
  its own shell state (variables exported by one `sh` block reach the next block).
- ```` ```json expected ```` after a block: its output (the whole, or its last line) is JSON
  matching this one: every key shown is there with the value shown; `"…"` stands for any
  value; a list ending in `"…"` matches any longer list with that beginning.
- ```` ```text expected ````: each line appears in the output, in order (`…` inside a line
  stands for any text).
- ```` ```shell ```` blocks are shown, not run: commands the test suite runs elsewhere
  (starting the server, the whole suite); the guide's test names where.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

RUNNABLE = ("sh", "python", "js")
ANY = "…"
FENCE = re.compile(r"^(`{3,})([\w-]*)[ \t]*(.*)$")


@dataclass
class Block:
    lang: str
    flags: tuple[str, ...]
    code: str
    line: int  # of the opening fence
    expected: Block | None = None

    def where(self, page: str) -> str:
        return f"{page}:{self.line} ({self.lang})"


def blocks(markdown: str) -> list[Block]:
    """Every fenced block, with each `expected` block attached to the block before it."""
    found: list[Block] = []
    lines = markdown.splitlines()
    i = 0
    while i < len(lines):
        fence = FENCE.match(lines[i])
        if not fence:
            i += 1
            continue
        ticks, lang, flags = fence.group(1), fence.group(2), tuple(fence.group(3).split())
        start = i + 1  # the fence's line number
        body: list[str] = []
        i += 1
        while i < len(lines) and lines[i].strip() != ticks:
            body.append(lines[i])
            i += 1
        block = Block(lang, flags, "\n".join(body) + "\n", start)
        if "expected" in flags:
            if not found or found[-1].lang not in RUNNABLE or found[-1].expected is not None:
                raise ValueError(f"line {block.line}: an expected answer follows no example")
            found[-1].expected = block
        else:
            found.append(block)
        i += 1
    return found


def output_json(output: str) -> Any:
    """The JSON an example printed: its whole output, or else its last non-empty line."""
    try:
        return json.loads(output)
    except ValueError:
        lines = [line for line in output.splitlines() if line.strip()]
        if not lines:
            raise ValueError("the example printed nothing") from None
        return json.loads(lines[-1])


def json_mismatch(expected: Any, actual: Any, path: str = "$") -> str | None:
    """None when `actual` matches `expected` (see the module's rules), else where not."""
    if expected == ANY:
        return None
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return f"{path}: expected an object, got {actual!r}"
        for key, value in expected.items():
            if key not in actual:
                return f"{path}: no key {key!r} in {sorted(actual)}"
            miss = json_mismatch(value, actual[key], f"{path}.{key}")
            if miss:
                return miss
        return None
    if isinstance(expected, list):
        if not isinstance(actual, list):
            return f"{path}: expected a list, got {actual!r}"
        open_ended = bool(expected) and expected[-1] == ANY
        shown = expected[:-1] if open_ended else expected
        if len(actual) < len(shown) or (not open_ended and len(actual) != len(shown)):
            return f"{path}: expected {len(shown)} items, got {len(actual)}"
        for n, (want, got) in enumerate(zip(shown, actual, strict=False)):
            miss = json_mismatch(want, got, f"{path}[{n}]")
            if miss:
                return miss
        return None
    if expected != actual or type(expected) is not type(actual):
        return f"{path}: expected {expected!r}, got {actual!r}"
    return None


def text_mismatch(expected: str, output: str) -> str | None:
    """None when each expected line appears in `output`, in order, else the first missing."""
    at = 0
    for line in expected.splitlines():
        if not line.strip():
            continue
        pattern = ".*?".join(re.escape(part) for part in line.strip().split(ANY))
        found = re.compile(pattern).search(output, at)
        if not found:
            return f"not found (in order): {line.strip()!r}"
        at = found.end()
    return None
