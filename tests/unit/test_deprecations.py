"""Deprecation tracking, without Ray: which fields an operation uses (fragments, directives),
the registry against the schema, the HTTP headers' formats, the per-replica tally and its
batching, and the usage projection (counts merged, unknown tenants dropped, a rebuild the
same)."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import Iterator
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import pytest
from graphql import GraphQLEnumType, GraphQLInputObjectType, GraphQLObjectType, parse

from actors.event_store import EventStore
from actors.settings import Settings
from domain.deprecations import (
    DeprecatedUsage,
    Deprecation,
    UsageTally,
    deprecation_header,
    sunset_header,
)
from domain.tenant import Tenant
from projections import deprecations, runner
from projections.db import ReadModelDB


def _schema() -> Any:
    from api.graphql.schema import schema

    return schema._schema


def _used(query: str, variables: dict[str, Any] | None = None, name: str | None = None) -> set:
    from api.graphql.deprecation import deprecated_selections

    return set(deprecated_selections(_schema(), parse(query), name, variables))


def test_the_fields_an_executed_operation_selects_are_found_through_fragments() -> None:
    assert _used("{ agents { id name } }") == {"Query.agents"}
    assert _used("{ agentList { edges { node { id llmProvider { model } } } } }") == {
        "AgentDefinitionGQL.llmProvider"
    }
    via_fragment = """
      query Q { agent(id: "x") { ...A } agents { ... on AgentDefinitionGQL { id } } }
      fragment A on AgentDefinitionGQL { llmProvider { providerType } }
    """
    assert _used(via_fragment) == {"Query.agents", "AgentDefinitionGQL.llmProvider"}
    assert _used("{ health agentList { totalCount } }") == set()
    assert _used("{ __schema { types { name } } }") == set()


def test_only_the_operation_that_runs_and_the_fields_it_keeps_count() -> None:
    two = "query A { agents { id } } query B { health }"
    assert _used(two, name="A") == {"Query.agents"}
    assert _used(two, name="B") == set()
    skipped = "query ($s: Boolean!) { agents @skip(if: $s) { id } }"
    assert _used(skipped, {"s": True}) == set()
    assert _used(skipped, {"s": False}) == {"Query.agents"}
    assert _used("{ agents @include(if: false) { id } health }") == set()


def test_every_deprecated_field_is_registered_with_its_dates_and_every_entry_deprecated() -> None:
    from api.graphql.deprecation import DEPRECATIONS

    schema = _schema()
    deprecated_now = set()
    for type_ in schema.type_map.values():
        if type_.name.startswith("__"):
            continue
        if isinstance(type_, GraphQLObjectType):
            for name, field in type_.fields.items():
                if field.deprecation_reason is not None:
                    deprecated_now.add(f"{type_.name}.{name}")
                deprecated_now.update(
                    f"{type_.name}.{name}({a}:)"
                    for a, arg in field.args.items()
                    if arg.deprecation_reason is not None
                )
        elif isinstance(type_, (GraphQLInputObjectType, GraphQLEnumType)):
            values = type_.fields if isinstance(type_, GraphQLInputObjectType) else type_.values
            assert all(v.deprecation_reason is None for v in values.values()), type_.name
    assert deprecated_now <= set(DEPRECATIONS)
    for coordinate in deprecated_now:
        entry = DEPRECATIONS[coordinate]
        type_name, field_name = coordinate.split(".")
        reason = schema.type_map[type_name].fields[field_name].deprecation_reason
        assert reason == entry.reason()
        assert entry.replacement in reason and entry.sunset_on.isoformat() in reason
        assert entry.deprecated_on < entry.sunset_on
    missing = {c for c in DEPRECATIONS if c.split(".")[0] in schema.type_map} - deprecated_now
    present = {c for c in missing if c.split(".")[1] in schema.type_map[c.split(".")[0]].fields}
    assert not present, f"registered but not deprecated in the schema: {present}"


def test_headers_follow_rfc_9745_and_rfc_8594() -> None:
    early = Deprecation("Q.a", "b", dt.date(2026, 12, 2), dt.date(2027, 6, 30))
    late = Deprecation("Q.c", "d", dt.date(2027, 1, 15), dt.date(2027, 9, 1))
    value = deprecation_header([late, early])
    assert value.startswith("@")
    assert dt.datetime.fromtimestamp(int(value[1:]), dt.UTC) == dt.datetime(
        2026, 12, 2, tzinfo=dt.UTC
    )
    sunset = sunset_header([late, early])
    assert sunset == "Wed, 30 Jun 2027 23:59:59 GMT"
    assert parsedate_to_datetime(sunset) == dt.datetime(2027, 6, 30, 23, 59, 59, tzinfo=dt.UTC)


def test_the_tally_counts_per_tenant_and_field_and_is_bounded() -> None:
    tally = UsageTally(limit=3)
    tally.add("t1", ["Query.agents", "X.y"], 10.0)
    tally.add("t1", ["Query.agents"], 12.0)
    tally.add("t2", ["Query.agents"], 11.0)
    tally.add("t3", ["Query.agents"], 13.0)  # a fourth pair: over the bound
    rows = tally.take()
    assert rows == [
        {"tenant_id": "t1", "field": "Query.agents", "count": 2, "first_at": 10.0, "last_at": 12.0},
        {"tenant_id": "t1", "field": "X.y", "count": 1, "first_at": 10.0, "last_at": 10.0},
        {"tenant_id": "t2", "field": "Query.agents", "count": 1, "first_at": 11.0, "last_at": 11.0},
    ]
    assert tally.dropped == 1 and tally.take() == []


async def test_the_log_records_one_batch_per_interval_not_one_write_per_use(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from api.graphql import deprecation

    monkeypatch.setattr(deprecation, "FLUSH_S", 0.05)
    recorded: list[list[dict[str, Any]]] = []

    class Reads:
        async def record_deprecations(self, rows: list[dict[str, Any]]) -> None:
            recorded.append(rows)

    log = deprecation.DeprecationLog(Reads())  # type: ignore[arg-type]
    for _ in range(50):
        log.note("t1", frozenset({"Query.agents"}))
    log.note("t2", frozenset({"Query.agents", "AgentDefinitionGQL.llmProvider"}))
    await asyncio.sleep(0.2)
    assert len(recorded) == 1
    assert {(r["tenant_id"], r["field"]): r["count"] for r in recorded[0]} == {
        ("t1", "Query.agents"): 50,
        ("t2", "AgentDefinitionGQL.llmProvider"): 1,
        ("t2", "Query.agents"): 1,
    }
    await log.flush()  # nothing new: no event
    assert len(recorded) == 1


@pytest.fixture
def store(tmp_path: Path) -> Iterator[EventStore]:
    app = EventStore(env=Settings(data_dir=str(tmp_path)).store_env())
    yield app
    app.close()


@pytest.fixture
def db(tmp_path: Path) -> Iterator[ReadModelDB]:
    handle = ReadModelDB("sqlite:///" + str(tmp_path / "readmodels.sqlite"))
    runner.create_tables(handle)
    yield handle
    handle.close()


def _row(tenant: str, field: str, count: int, first: float, last: float) -> dict[str, Any]:
    return {"tenant_id": tenant, "field": field, "count": count, "first_at": first,
            "last_at": last}  # fmt: skip


def test_the_projection_adds_batches_per_tenant_and_field(store: EventStore, db: ReadModelDB):
    a, b = str(uuid.uuid4()), str(uuid.uuid4())
    for tenant in (a, b):
        store.save(Tenant(id=uuid.UUID(tenant), tenant_id=tenant, name="T"))
    ghost = str(uuid.uuid4())  # never created (a made-up tenant id): not kept
    store.save(DeprecatedUsage([_row(a, "Query.agents", 3, 100.0, 110.0),
                                _row(b, "Query.agents", 1, 105.0, 105.0),
                                _row(ghost, "Query.agents", 9, 1.0, 2.0)]))  # fmt: skip
    store.save(
        DeprecatedUsage(
            [
                _row(a, "Query.agents", 2, 90.0, 120.0),
                _row(a, "AgentDefinitionGQL.llmProvider", 4, 95.0, 96.0),
            ]
        )
    )
    runner.catch_up_fully(store, db, runner.READ_MODELS)

    def seen(tenant: str | None) -> list[tuple[Any, ...]]:
        return [(r["tenant_id"], r["field"], r["count"], r["first_used_at"], r["last_used_at"])
                for r in deprecations.usage(db, tenant)]  # fmt: skip

    assert seen(a) == [(a, "Query.agents", 5, 90.0, 120.0),
                       (a, "AgentDefinitionGQL.llmProvider", 4, 95.0, 96.0)]  # fmt: skip
    assert seen(b) == [(b, "Query.agents", 1, 105.0, 105.0)]
    assert {r[0] for r in seen(None)} == {a, b}
    before = seen(None)
    assert runner.rebuild(store, db, runner.READ_MODELS) > 0
    assert seen(None) == before
