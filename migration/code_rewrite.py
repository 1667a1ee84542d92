"""`cb migrate code PATH…`: rewrites uses of the legacy TypeScript SDK (`circuit-breaker-sdk`)
and raw legacy GraphQL calls into the new SDKs (`@circuit-breaker/sdk`, Python
`circuit_breaker`), on parsed trees (tree-sitter for TypeScript/JavaScript, `ast` for Python):
each rewrite replaces the exact source span of parsed nodes.

Rewritten (TypeScript/JavaScript, in files that import the legacy SDK):
- the import / `require` of `circuit-breaker-sdk` → `@circuit-breaker/sdk` (names the rewrite
  left unused are dropped from it);
- `Client.builder().baseUrl(u).apiKey(k).timeout(t).headers(h).build()` →
  `new Client({ baseUrl: u, apiKey: k, timeoutMs: t, headers: h })`; `new Client({…, timeout})`
  → `timeoutMs`;
- `x.agents().create/get/list/delete(…)` → `x.agents.…(…)`; a `createAgent(n)…build()` chain →
  the `AgentCreate` object literal (as the package's own `createAgent` builds it);
- `x.analytics().budgetStatus()/costAnalytics()/setBudget()…get()/execute()` →
  `x.graphql.budgetStatus/costAnalytics/setBudget({…})` (the same result);
- `COMMON_MODELS.NAME` → its model string; the routing setters of `createChat`-style builders
  (ignored by the gateway, virtual model names route) are removed;
- raw `client.query(text, vars)` / `client.mutation(text, vars)` → `client.graphql.query(…)`.
Python: `httpx.post` / `requests.post` to `…/graphql` with a literal `json={"query", "variables"}`
→ `Client(base_url, api_key=…).graphql.query(query, variables)`, where each use of the response
carries over (see py_rewrite). In any file: legacy variable types the gateway accepts as aliases
(`$id: ID!` for `String!`, `LlmchatCompletionInput`) are respelled in GraphQL literals.

Listed by hand (with the line, the pattern and what to do): streaming callbacks, subscriptions,
MCP calls (BROKEN in the legacy SDK), `agents().chat/execute/update`, builders with calls the
rewrite does not know, names the new package does not export, invalid GraphQL operations, and
the optional REST equivalent of a raw GraphQL call (REST answers snake_case objects, so the
reads of the result change: it is not done automatically). `client.llm().chat(…)`,
`chatCompletion`, `createChat(…)…execute(llm)` are kept: the new package serves them
(deprecated).

Output: a unified diff per changed file (or, with `write`, the files are written), then the
by-hand list and a summary. Exit status: 0 when every file was processed (by-hand items do not
change it), 1 when a file could not be read or parsed (the others are still processed), 2 when a
path does not exist or the schema cannot be loaded.
"""

from __future__ import annotations

import difflib
import sys
from pathlib import Path

from graphql import GraphQLSchema

from migration.edits import EditSet, FileResult
from migration.graphql_check import fragment_pool
from migration.graphql_fixes import fix_literals
from migration.graphql_ops import SchemaError, load_schema
from migration.py_rewrite import PyRewriter
from migration.source_scan import (
    GRAPHQL_EXT,
    PY_EXT,
    SOURCE_EXT,
    Literal,
    SourceError,
    extract,
    iter_files,
    read_text,
)
from migration.ts_rewrite import TsRewriter


def rewrite_file(path: Path, schema: GraphQLSchema, pool: dict[str, str]) -> FileResult:
    """The rewritten text of one file and what is left to do by hand."""
    try:
        old = read_text(path)
        if path.suffix not in SOURCE_EXT:
            raise SourceError("not a .graphql, TypeScript/JavaScript or Python file")
        if path.suffix in PY_EXT:
            new, manual = PyRewriter(path, old, schema, pool).run()
        elif path.suffix in GRAPHQL_EXT:
            edits = EditSet(old.encode())
            lit = Literal(str(path), 1, old, exact=True)
            manual = fix_literals(schema, [lit], edits, pool)
            new = edits.apply()
        else:
            rewriter = TsRewriter(path, old.encode(), schema, pool)
            if rewriter.root.has_error:
                raise SourceError("cannot parse: syntax error")
            new, manual = rewriter.run()
    except SourceError as exc:
        return FileResult(str(path), "", "", error=str(exc))
    return FileResult(str(path), old, new, manual)


def rewrite_paths(paths: list[str], schema: GraphQLSchema) -> list[FileResult]:
    """Rewrite every file under `paths` (FileNotFoundError for a missing path)."""
    files = list(iter_files(paths))
    texts = []
    for path in files:
        try:
            texts += [lit.text for lit in extract(path)]
        except SourceError:
            pass  # reported by rewrite_file
    pool = fragment_pool(texts)
    return [rewrite_file(path, schema, pool) for path in files]


def unified_diff(result: FileResult) -> str:
    lines = difflib.unified_diff(
        result.old.splitlines(keepends=True),
        result.new.splitlines(keepends=True),
        f"a/{result.path}",
        f"b/{result.path}",
    )
    return "".join(
        line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines
    )


def format_report(results: list[FileResult], write: bool) -> str:
    out = []
    for result in results:
        if result.error:
            out.append(f"{result.path}: error: {result.error}\n")
        elif result.new != result.old:
            out.append(f"wrote {result.path}\n" if write else unified_diff(result))
    manual = [item for result in results for item in result.manual]
    if manual:
        out.append("to do by hand:\n")
    for item in manual:
        out.append(f"{item.path}:{item.line}: {item.pattern}\n    {item.action}\n")
    changed = sum(1 for r in results if not r.error and r.new != r.old)
    errors = sum(1 for r in results if r.error)
    verb = "rewritten" if write else "to rewrite"
    summary = f"{len(results)} file(s) checked, {changed} {verb}, {len(manual)} item(s) by hand"
    out.append(summary + (f", {errors} not parsed\n" if errors else "\n"))
    return "".join(out)


def code_main(paths: list[str], write: bool = False) -> int:
    """Print the diff (or, with `write`, rewrite the files) and the by-hand list; the exit
    status (see the module)."""
    try:
        results = rewrite_paths(paths, load_schema())
    except SchemaError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except FileNotFoundError as exc:
        print(f"error: no such file or directory: {exc.args[0]}", file=sys.stderr)
        return 2
    if write:
        for result in results:
            if not result.error and result.new != result.old:
                Path(result.path).write_text(result.new, encoding="utf-8")
    sys.stdout.write(format_report(results, write))
    return 1 if any(r.error for r in results) else 0
