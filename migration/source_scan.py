"""Finding source files and the GraphQL documents in them: `.graphql` files, string literals
and templates of TypeScript/JavaScript (tree-sitter) and Python (`ast`)."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import tree_sitter
import tree_sitter_javascript
import tree_sitter_typescript

GRAPHQL_EXT = {".graphql", ".gql"}
TS_EXT = {".ts", ".mts", ".cts"}
TSX_EXT = {".tsx"}
JS_EXT = {".js", ".jsx", ".mjs", ".cjs"}
PY_EXT = {".py"}
SOURCE_EXT = GRAPHQL_EXT | TS_EXT | TSX_EXT | JS_EXT | PY_EXT
SKIP_DIRS = {"node_modules", ".git", ".venv", "venv", "dist", "build", "__pycache__", ".tox"}
GRAPHQL_TAGS = {"gql", "graphql"}

# what a GraphQL document starts with (after comments); the text must then also parse
_LOOKS_LIKE_GRAPHQL = re.compile(
    r"^(?:\s|#[^\n]*\n)*(?:(?:query|mutation|subscription)\b\s*[_A-Za-z0-9]*\s*[({@]"
    r"|fragment\s+[_A-Za-z]\w*\s+on\s|\{\s*[_A-Za-z])"
)


class SourceError(Exception):
    """A file that could not be read or parsed."""


@dataclass
class Literal:
    """A string literal or template of a source file that holds a GraphQL document."""

    path: str
    line: int  # 1-based line where the document's text starts
    text: str  # with each `${…}` / `{…}` substitution replaced by nothing
    substitutions: list[str] = field(default_factory=list)  # their source text
    tagged: bool = False  # a `gql`/`graphql` tagged template: GraphQL whatever it looks like
    start_byte: int = 0  # of the text (inside the quotes) in the file's bytes
    exact: bool = False  # the source bytes from start_byte are exactly `text` (no escapes, …)


def looks_like_graphql(text: str) -> bool:
    return bool(_LOOKS_LIKE_GRAPHQL.match(text))


def iter_files(paths: list[str]) -> Iterator[Path]:
    """The source files of `paths` (files as given, directories walked), sorted."""
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for found in sorted(path.rglob("*")):
                parts = set(found.relative_to(path).parts[:-1])
                if found.is_file() and found.suffix in SOURCE_EXT and not parts & SKIP_DIRS:
                    yield found
        elif path.is_file():
            yield path
        else:
            raise FileNotFoundError(raw)


@cache
def ts_parser(suffix: str) -> tree_sitter.Parser:
    """A tree-sitter parser for a TypeScript/TSX/JavaScript file suffix."""
    if suffix in TS_EXT:
        language = tree_sitter_typescript.language_typescript()
    elif suffix in TSX_EXT:
        language = tree_sitter_typescript.language_tsx()
    else:
        language = tree_sitter_javascript.language()
    return tree_sitter.Parser(tree_sitter.Language(language))


def parse_ts(path: Path, data: bytes) -> tree_sitter.Tree:
    return ts_parser(path.suffix).parse(data)


def walk(node: tree_sitter.Node) -> Iterator[tree_sitter.Node]:
    """Every node under `node` (itself first), in source order."""
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(reversed(current.children))


def read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SourceError(f"cannot read: {exc}") from exc


def extract(path: Path) -> list[Literal]:
    """The GraphQL documents of one file."""
    if path.suffix not in SOURCE_EXT:
        raise SourceError("not a .graphql, TypeScript/JavaScript or Python file")
    if path.suffix in GRAPHQL_EXT:
        return [Literal(str(path), 1, read_text(path), tagged=True, exact=True)]
    if path.suffix in PY_EXT:
        return python_literals(path, read_text(path))
    data = read_text(path).encode()
    return ts_literals(path, data, parse_ts(path, data).root_node)


def ts_literals(path: Path, data: bytes, root: tree_sitter.Node) -> list[Literal]:
    """GraphQL-looking strings and templates of a TypeScript/JavaScript tree."""
    found = []
    for node in walk(root):
        if node.type not in ("string", "template_string"):
            continue
        lit = ts_literal(path, data, node)
        if lit is not None and (lit.tagged or looks_like_graphql(lit.text)):
            found.append(lit)
    return found


def ts_literal(path: Path, data: bytes, node: tree_sitter.Node) -> Literal | None:
    """The value of a string/template node (substitutions dropped), or None if it has none."""
    pieces: list[str] = []
    subs: list[str] = []
    for child in node.named_children:
        if child.type == "string_fragment":
            pieces.append(_text(child))
        elif child.type == "escape_sequence":
            pieces.append(_unescape(_text(child)))
        elif child.type == "template_substitution":
            subs.append(_text(child))
    raw = data[node.start_byte + 1 : node.end_byte - 1].decode()
    text = "".join(pieces)
    parent = node.parent
    tagged = (
        node.type == "template_string"
        and parent is not None
        and parent.type == "call_expression"
        and parent.child_by_field_name("function") is not None
        and _text(parent.child_by_field_name("function")).split(".")[-1] in GRAPHQL_TAGS
    )
    return Literal(
        str(path), node.start_point[0] + 1, text, subs, tagged,
        start_byte=node.start_byte + 1, exact=raw == text and not subs,
    )  # fmt: skip


def _text(node: tree_sitter.Node | None) -> str:
    return "" if node is None or node.text is None else node.text.decode()


def _unescape(seq: str) -> str:
    try:
        return ast.literal_eval(f'"{seq}"')
    except (SyntaxError, ValueError):
        return seq[1:]


def python_tree(path: Path, source: str) -> ast.Module:
    try:
        return ast.parse(source, filename=str(path))
    except SyntaxError as exc:
        raise SourceError(f"cannot parse: {exc.msg} (line {exc.lineno})") from exc


def python_literals(path: Path, source: str) -> list[Literal]:
    """GraphQL-looking string constants and f-strings of a Python module."""
    tree = python_tree(path, source)
    lines = source.encode().splitlines(keepends=True)
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line))
    inside_fstrings = {
        id(value)
        for node in ast.walk(tree)
        if isinstance(node, ast.JoinedStr)
        for value in ast.walk(node)
        if value is not node
    }
    found = []
    for node in ast.walk(tree):
        if id(node) in inside_fstrings:
            continue
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            text, subs = node.value, []
        elif isinstance(node, ast.JoinedStr):
            text, subs = _fstring_parts(node, source)
        else:
            continue
        if not looks_like_graphql(text):
            continue
        start = offsets[node.lineno - 1] + node.col_offset
        lit = Literal(str(path), node.lineno, text, subs, start_byte=start)
        _locate_exact(lit, source.encode(), node, offsets)
        found.append(lit)
    return sorted(found, key=lambda lit: (lit.line, lit.start_byte))


def _fstring_parts(node: ast.JoinedStr, source: str) -> tuple[str, list[str]]:
    text, subs = [], []
    for value in node.values:
        if isinstance(value, ast.Constant):
            text.append(str(value.value))
        else:
            subs.append("{" + (ast.get_source_segment(source, value) or "…") + "}")
    return "".join(text), subs


def _locate_exact(lit: Literal, data: bytes, node: ast.expr, offsets: list[int]) -> None:
    """Mark `lit` exact (and point start_byte inside the quotes) when its source is one plain
    string literal whose characters are its value."""
    if not isinstance(node, ast.Constant) or node.end_lineno is None:
        return
    end = offsets[node.end_lineno - 1] + (node.end_col_offset or 0)
    raw = data[lit.start_byte : end].decode()
    prefix = len(raw) - len(raw.lstrip("rRuU"))
    body = raw[prefix:]
    for quote in ('"""', "'''", '"', "'"):
        if body.startswith(quote) and body.endswith(quote) and len(body) >= 2 * len(quote):
            inner = body[len(quote) : -len(quote)]
            if inner == lit.text:
                lit.start_byte += len(raw[: prefix + len(quote)].encode())
                lit.exact = True
            return
