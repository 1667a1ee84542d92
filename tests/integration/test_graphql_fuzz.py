"""Fuzzing /graphql (the sibling of test_fuzz.py): operations generated from the schema the
gateway serves (valid ones, and ones with one schema violation each), with and without
credentials, then hand-written hostile requests (bad JSON, wrong types, huge strings, deep
nesting, unknown fields, variables of the wrong type, introspection…). None gets a 5xx.
Bounded: a few dozen examples per strategy, derandomized."""

from __future__ import annotations

from typing import Any

import httpx
from graphql import ObjectValueNode, build_client_schema, get_introspection_query
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_graphql import Mode, mutations, nodes, queries

from tests.support.client import SQLITE_ONLY, ApiClient

EXAMPLES = 30
# registering an MCP server connects to the URL it names: never a generated one
NOT_FUZZED = {"registerMcpServer"}
JSON_VALUES = st.one_of(
    st.text(max_size=12).map(nodes.String),
    st.integers(-1000, 1000).map(nodes.Int),
    st.just(ObjectValueNode(fields=())),
)


def _fuzz(strategy: st.SearchStrategy[str], send: Any) -> None:
    settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )(given(query=strategy)(send))()


@SQLITE_ONLY
def test_generated_operations_never_get_a_server_error(gateway: ApiClient) -> None:
    tenant = gateway.new_tenant("GraphQL fuzz")
    introspected = gateway.http.post(
        "/graphql", json={"query": get_introspection_query()}, headers=tenant.headers()
    )
    schema = build_client_schema(introspected.json()["data"])
    assert schema.mutation_type is not None
    mutated = [name for name in schema.mutation_type.fields if name not in NOT_FUZZED]
    seen: dict[str, list[int]] = {"tenant": [], "anonymous": []}

    def post(query: str, headers: dict[str, str], who: str) -> dict[str, Any]:
        reply = gateway.http.post("/graphql", json={"query": query}, headers=headers)
        assert reply.status_code < 500, f"{query[:300]} → {reply.status_code}: {reply.text[:300]}"
        seen[who].append(reply.status_code)
        return reply.json()

    def as_tenant(query: str) -> None:
        post(query, tenant.headers(), "tenant")

    for mode in (Mode.POSITIVE, Mode.NEGATIVE):
        scalars = {"JSON": JSON_VALUES}
        _fuzz(
            queries(schema, custom_scalars=scalars, mode=mode),
            as_tenant,
        )
        _fuzz(
            mutations(schema, fields=mutated, custom_scalars=scalars, mode=mode),
            as_tenant,
        )

    def anonymous(query: str) -> None:
        body = post(query, {}, "anonymous")
        codes = {e.get("extensions", {}).get("code") for e in body.get("errors", [])}
        assert body.get("data") is None and codes == {"UNAUTHENTICATED"}, body

    # without credentials every generated operation (none is health alone) is refused
    _fuzz(queries(schema, fields=[f for f in schema.query_type.fields if f != "health"],
                  custom_scalars={"JSON": JSON_VALUES}), anonymous)  # fmt: skip
    assert len(seen["tenant"]) >= 4 * 10 and len(seen["anonymous"]) >= 10
    assert set(seen["tenant"]) | set(seen["anonymous"]) <= {200, 413}


AGENT_BY_ID = "query ($id: String!) { agent(id: $id) { id name } }"
TWO_OPERATIONS = "query A { health } query B { health }"
SUBSCRIPTION = 'subscription { llmStream(requestId: "x") }'


def _hostile(tenant_headers: dict[str, str]) -> list[tuple[str, dict[str, Any]]]:
    """(what, httpx request arguments) of requests no client should send."""
    as_json = {**tenant_headers, "Content-Type": "application/json"}
    deep_json = "[" * 3000 + "]" * 3000
    return [
        ("not JSON", {"content": b"{query: health", "headers": as_json}),
        ("not UTF-8", {"content": b'{"query": "\xff\xfe"}', "headers": as_json}),
        ("a JSON string", {"content": b'"{ health }"', "headers": as_json}),
        ("query is a number", {"json": {"query": 5}}),
        ("query is an object", {"json": {"query": {"health": True}}}),
        ("variables is a string", {"json": {"query": "{ health }", "variables": "x"}}),
        ("extensions is a list", {"json": {"query": "{ health }", "extensions": []}}),
        ("operationName is a number", {"json": {"query": "{ health }", "operationName": 5}}),
        ("unknown operationName", {"json": {"query": "query A { health }", "operationName": "B"}}),
        ("two operations, none named", {"json": {"query": TWO_OPERATIONS}}),
        ("no query", {"json": {"variables": {}}}),
        ("empty query", {"json": {"query": ""}}),
        ("only a comment", {"json": {"query": "# nothing"}}),
        ("a NUL byte", {"json": {"query": "{ health\x00 }"}}),
        (
            "a lone surrogate",
            {"content": b'{"query": "{ agent(id: \\"\\ud800\\") { id } }"}', "headers": as_json},
        ),
        ("unknown field", {"json": {"query": "{ nope { id } }"}}),
        ("unknown argument", {"json": {"query": '{ agent(id: "1", nope: 2) { id } }'}}),
        ("unknown directive", {"json": {"query": "{ health @nope }"}}),
        ("a fragment cycle", {"json": {"query": "{ ...A } fragment A on Query { ...A }"}}),
        ("a variable of the wrong type", {"json": {"query": AGENT_BY_ID, "variables": {"id": 5}}}),
        (
            "a variable that is an object",
            {"json": {"query": AGENT_BY_ID, "variables": {"id": {"$gt": ""}}}},
        ),
        ("a missing variable", {"json": {"query": AGENT_BY_ID, "variables": {}}}),
        ("an undeclared variable", {"json": {"query": "{ agent(id: $x) { id } }"}}),
        (
            "a huge string argument",
            {"json": {"query": '{ agent(id: "' + "x" * 3_000_000 + '") { id } }'}},
        ),
        ("a huge variable", {"json": {"query": AGENT_BY_ID, "variables": {"id": "y" * 3_000_000}}}),
        (
            "over the body limit",
            {"json": {"query": "{ health }", "variables": {"p": "z" * 5 * 10**6}}},
        ),
        (
            "deeply nested JSON",
            {
                "content": b'{"query": "{ health }", "variables": {"v": '
                + deep_json.encode()
                + b"}}",
                "headers": as_json,
            },
        ),
        ("a deeply nested query", {"json": {"query": "{" + "a{" * 5000 + "}" * 5001}}),
        ("a long query", {"json": {"query": "{ " + "health " * 100_000 + "}"}}),
        (
            "a deeply nested input",
            {"json": {"query": "{ agent(id: " + "[" * 3000 + "]" * 3000 + ") { id } }"}},
        ),
        (
            "a wrong input shape",
            {"json": {"query": "mutation { createAgent(input: {name: 1}) { id } }"}},
        ),
        ("a mutation over GET", {"method": "GET", "params": {"query": "mutation { health }"}}),
        (
            "bad variables over GET",
            {"method": "GET", "params": {"query": "{ health }", "variables": "{x"}},
        ),
        ("a subscription over POST", {"json": {"query": SUBSCRIPTION}}),
        (
            "text/plain",
            {"content": b"{ health }", "headers": {**tenant_headers, "Content-Type": "text/plain"}},
        ),
        (
            "a form",
            {
                "content": b"query=%7Bhealth%7D",
                "headers": {**tenant_headers, "Content-Type": "application/x-www-form-urlencoded"},
            },
        ),
        ("multipart", {"files": {"operations": (None, '{"query": "{ health }"}')}}),
        ("an empty batch", {"json": []}),
        ("a batch of garbage", {"json": [1, "x", None]}),
        ("PUT", {"method": "PUT", "json": {"query": "{ health }"}}),
        ("DELETE", {"method": "DELETE"}),
        (
            "full introspection",
            {"json": {"query": get_introspection_query(True, True, True, True, True)}},
        ),
    ]


@SQLITE_ONLY
def test_hostile_requests_never_get_a_server_error(gateway: ApiClient) -> None:
    tenant = gateway.new_tenant("GraphQL hostile")
    answered: dict[str, int] = {}
    for headers in (tenant.headers(), {}):
        for what, request in _hostile(tenant.headers()):
            request = {**request}
            method = request.pop("method", "POST")
            request.setdefault("headers", headers)
            try:
                reply = gateway.http.request(method, "/graphql", **request)
            except httpx.HTTPError as exc:  # the gateway must answer, not drop the connection
                raise AssertionError(f"{what}: {exc!r}") from None
            assert reply.status_code < 500, f"{what} → {reply.status_code}: {reply.text[:300]}"
            assert "Traceback" not in reply.text and tenant.api_key not in reply.text, what
            answered[what] = reply.status_code
    # spot checks that these were refused for the right reason, not by accident
    assert answered["not JSON"] == 400 and answered["a JSON string"] == 400
    assert answered["deeply nested JSON"] == 400 and answered["over the body limit"] == 413
    assert answered["an empty batch"] == 400 and answered["PUT"] == 405
    assert answered["full introspection"] == 200
