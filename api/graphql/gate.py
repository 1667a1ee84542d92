"""The breaking-change gate: the committed schema (`api/graphql/schema.graphql`) must keep
every promise of the legacy baseline (`api/graphql/legacy_baseline.graphql`), as
graphql-core's `find_breaking_changes` judges it (a removed type, field, argument or enum
value, a changed type, a stricter argument or input field, a new required input…).

`python -m api.graphql.gate` prints what breaks and exits 1; the unit test
`tests/unit/test_graphql_schema_gate.py` does the same."""

from __future__ import annotations

import sys

from graphql import BreakingChange, build_schema, find_breaking_changes

from api.graphql.export import COMMITTED, LEGACY_BASELINE


def breaking_changes(baseline_sdl: str, sdl: str) -> list[BreakingChange]:
    """What `sdl` breaks of `baseline_sdl`, nothing ignored."""
    return find_breaking_changes(build_schema(baseline_sdl), build_schema(sdl))


def report(changes: list[BreakingChange]) -> str:
    """One line per breaking change: its kind and graphql-core's description."""
    return "\n".join(f"{change.type.name}: {change.description}" for change in changes)


def main() -> int:
    changes = breaking_changes(
        LEGACY_BASELINE.read_text(encoding="utf-8"), COMMITTED.read_text(encoding="utf-8")
    )
    if changes:
        print(f"{COMMITTED.name} breaks the legacy contract ({LEGACY_BASELINE.name}):")
        print(report(changes))
        return 1
    print(f"{COMMITTED.name} keeps the legacy contract ({LEGACY_BASELINE.name})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
