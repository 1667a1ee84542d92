"""`cb migrate check-ops PATH…`: the GraphQL operations of `.graphql` files and of
TypeScript/JavaScript/Python sources (tagged templates and string literals), checked against
the served schema.

Each operation (and fragment) is reported as `valid`, `deprecated` (valid, but it uses a
deprecated field, argument or enum value: the replacement and removal date follow) or
`invalid` (each error with a suggested fix). Template substitutions (`${…}`, f-string
`{…}`) are dropped before parsing; fragments spread across literals are looked up in all the
checked files. Legacy aliases the gateway accepts (`$id: ID!` for `String!`,
`LlmchatCompletionInput`) are valid, with a note.

Exit status: 0 when no operation is invalid, 1 when one is or a file could not be read or
parsed, 2 when a path does not exist or the schema cannot be loaded.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
from graphql import GraphQLSchema, build_client_schema, build_schema, get_introspection_query

from migration.graphql_check import Definition, check_document, fragment_pool
from migration.source_scan import Literal, SourceError, extract, iter_files

SCHEMA_FILE = Path(__file__).resolve().parent.parent / "api" / "graphql" / "schema.graphql"


class SchemaError(Exception):
    """The schema could not be loaded."""


def load_schema(source: str | None = None) -> GraphQLSchema:
    """The packaged SDL, an SDL or introspection-JSON file, or a running gateway's `/graphql`
    (introspected; `CB_API_KEY` and `CB_TENANT_ID` are sent when set)."""
    try:
        if source and source.startswith(("http://", "https://")):
            return _introspect(source)
        path = Path(source) if source else SCHEMA_FILE
        text = path.read_text(encoding="utf-8")
        if path.suffix == ".json":
            data = json.loads(text)
            return build_client_schema(data.get("data", data))
        return build_schema(text)
    except (OSError, ValueError, TypeError, KeyError, httpx.HTTPError) as exc:
        raise SchemaError(f"cannot load the schema from {source or SCHEMA_FILE}: {exc}") from exc
    except Exception as exc:  # graphql-core's own errors on a bad SDL
        raise SchemaError(f"cannot build the schema from {source or SCHEMA_FILE}: {exc}") from exc


def _introspect(url: str) -> GraphQLSchema:
    endpoint = url if url.rstrip("/").endswith("/graphql") else url.rstrip("/") + "/graphql"
    headers = {}
    if key := os.environ.get("CB_API_KEY"):
        headers["Authorization"] = f"Bearer {key}"
    if tenant := os.environ.get("CB_TENANT_ID"):
        headers["X-Tenant-ID"] = tenant
    query = get_introspection_query(input_value_deprecation=True)
    reply = httpx.post(endpoint, json={"query": query}, headers=headers, timeout=30)
    reply.raise_for_status()
    body = reply.json()
    if body.get("errors"):
        raise ValueError(body["errors"][0].get("message", "introspection failed"))
    return build_client_schema(body["data"])


@dataclass
class Finding:
    """One checked operation or fragment, placed in its file."""

    path: str
    line: int
    name: str
    status: str
    errors: list[dict[str, Any]] = field(default_factory=list)
    deprecations: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass
class Report:
    findings: list[Finding] = field(default_factory=list)
    file_errors: list[tuple[str, str]] = field(default_factory=list)  # (path, why)

    def counts(self) -> dict[str, int]:
        out = {"valid": 0, "deprecated": 0, "invalid": 0}
        for found in self.findings:
            out[found.status] += 1
        return out


def _placed(lit: Literal, definition: Definition) -> Finding:
    def at(line: int) -> int:
        return lit.line + line - 1

    found = Finding(lit.path, at(definition.line), definition.name, definition.status)
    for problem in definition.problems:
        found.errors.append(
            {"message": problem.message, "line": at(problem.line), "fix": problem.fix}
        )
    for use in definition.deprecated:
        found.deprecations.append({**asdict(use), "line": at(use.line)})
    found.notes = list(definition.notes)
    if lit.substitutions and definition.problems:
        subs = ", ".join(lit.substitutions)
        found.notes.append(f"substitutions dropped before checking: {subs}")
    return found


def check_paths(paths: list[str], schema: GraphQLSchema) -> Report:
    """Check every GraphQL document found under `paths` (FileNotFoundError for a missing one)."""
    report = Report()
    literals: list[Literal] = []
    for path in iter_files(paths):
        try:
            literals.extend(extract(path))
        except SourceError as exc:
            report.file_errors.append((str(path), str(exc)))
    pool = fragment_pool([lit.text for lit in literals])
    for lit in literals:
        for definition in check_document(schema, lit.text, pool):
            report.findings.append(_placed(lit, definition))
    return report


def format_text(report: Report) -> str:
    lines = []
    for path, why in report.file_errors:
        lines.append(f"{path}: error {why}")
    for found in report.findings:
        lines.append(f"{found.path}:{found.line}: {found.status} {found.name}")
        for error in found.errors:
            lines.append(f"    line {error['line']}: error: {error['message']}")
            if error["fix"]:
                lines.append(f"        fix: {error['fix']}")
        for use in found.deprecations:
            when = f"; removed after {use['removed_after']}" if use["removed_after"] else ""
            lines.append(
                f"    line {use['line']}: deprecated: {use['coordinate']}:"
                f" use {use['replacement']}{when}"
            )
        lines.extend(f"    note: {note}" for note in found.notes)
    counts = report.counts()
    total = sum(counts.values())
    summary = (
        f"{total} checked: {counts['valid']} valid, {counts['deprecated']} deprecated,"
        f" {counts['invalid']} invalid"
    )
    if report.file_errors:
        summary += f"; {len(report.file_errors)} file(s) not parsed"
    lines.append(summary)
    return "\n".join(lines) + "\n"


def format_json(report: Report) -> str:
    body = {
        "operations": [asdict(f) for f in report.findings],
        "file_errors": [{"path": p, "error": e} for p, e in report.file_errors],
        "summary": {**report.counts(), "total": len(report.findings)},
    }
    return json.dumps(body, indent=2) + "\n"


def check_ops_main(paths: list[str], schema: str | None = None, as_json: bool = False) -> int:
    """Print the report of `paths` (text, or JSON with `as_json`) and return the exit status."""
    try:
        loaded = load_schema(schema)
        report = check_paths(paths, loaded)
    except SchemaError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except FileNotFoundError as exc:
        print(f"error: no such file or directory: {exc.args[0]}", file=sys.stderr)
        return 2
    sys.stdout.write(format_json(report) if as_json else format_text(report))
    return 1 if report.counts()["invalid"] or report.file_errors else 0
