"""Byte-span edits of a source file, and what a rewrite found that it left to be done by
hand."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class ManualItem:
    """A use the rewriter left alone: where, what it is, and what to do."""

    path: str
    line: int
    pattern: str
    action: str


@dataclass
class FileResult:
    path: str
    old: str
    new: str
    manual: list[ManualItem] = field(default_factory=list)
    error: str | None = None  # why the file was not rewritten (it could not be parsed)


class EditSet:
    """Replacements of byte spans of `data`; an edit that contains earlier ones replaces them
    (build it from `render` of the span, which applies them)."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.edits: list[tuple[int, int, bytes]] = []

    def add(self, start: int, end: int, text: str) -> None:
        inner = [e for e in self.edits if start <= e[0] and e[1] <= end]
        if any(e[0] < end and start < e[1] for e in self.edits if e not in inner):
            return  # crosses another edit: keep the first
        self.edits = [e for e in self.edits if e not in inner]
        self.edits.append((start, end, text.encode()))

    def covered(self, start: int, end: int) -> bool:
        """Whether an edit already contains the span."""
        return any(e[0] <= start and end <= e[1] for e in self.edits)

    def render(self, start: int, end: int) -> str:
        """The text of a span with the edits inside it applied."""
        out, at = [], start
        for s, e, text in sorted(x for x in self.edits if start <= x[0] and x[1] <= end):
            out += [self.data[at:s], text]
            at = e
        out.append(self.data[at:end])
        return b"".join(out).decode()

    def apply(self) -> str:
        return self.render(0, len(self.data))


def line_of(data: bytes, offset: int) -> int:
    """The 1-based line of a byte offset."""
    return data.count(b"\n", 0, offset) + 1
