"""Serving /graphql: what answers without credentials, the legacy SDKs' start-up probes,
operation limits and batches over HTTP, and GraphiQL served by the gateway with nothing
remote (loaded in headless Chromium with every other host unreachable, when it is here)."""

from __future__ import annotations

from urllib.parse import urljoin

from tests.support.browser import BROWSER, rendered, served_locally
from tests.support.client import SQLITE_ONLY, ApiClient
from tests.support.graphql import graphql


def _codes(reply: dict) -> list[str]:
    return [e.get("extensions", {}).get("code") for e in reply.get("errors", [])]


@SQLITE_ONLY
def test_credentials_probes_limits_and_batches(gateway: ApiClient) -> None:
    tenant = gateway.new_tenant()
    http = gateway.http

    # without credentials: health and introspection answer, anything else is UNAUTHENTICATED
    assert graphql(gateway, {}, "{ health }") == {"data": {"health": "ok"}}
    schema = graphql(gateway, {}, "{ __schema { queryType { name } } }")
    assert schema["data"]["__schema"]["queryType"]["name"] == "Query"
    refused = graphql(gateway, {}, "{ health agents { id } llmProviders { id } }")
    assert refused["data"] is None and _codes(refused) == ["UNAUTHENTICATED"]
    assert "agents, llmProviders" in refused["errors"][0]["message"]
    create = 'mutation { createAgent(input: {name: "x"}) { id } }'
    assert _codes(graphql(gateway, {"X-Tenant-ID": tenant.id}, create)) == ["UNAUTHENTICATED"]
    # credentials present but wrong: HTTP 401, as on REST
    wrong = http.post(
        "/graphql", json={"query": "{ agents { id } }"}, headers=tenant.headers("cb_wrong")
    )
    assert wrong.status_code == 401
    assert wrong.json()["error"]["type"] == "authentication_failed"
    assert graphql(gateway, tenant.headers(), "{ agents { id } }") == {"data": {"agents": []}}

    # the legacy SDKs' start-up probes carry no Authorization header
    for accept in ({"Accept": "*/*"}, {"Accept": "application/json"}, {}):
        probe = http.get("/graphql", headers=accept)
        assert probe.status_code in (400, 405), (accept, probe.status_code, probe.text)
    public = http.get("/v1/models")
    assert public.status_code == 200, public.text
    public_ids = {m["id"] for m in public.json()["data"]}
    assert {"auto", "cb:smart-chat", "cb:cost-optimal", "gpt-4o-mini"} <= public_ids
    # a tenant's own virtual name is the tenant's, never in the public catalog
    mapped = http.put(
        f"/api/v1/tenants/{tenant.id}/model-mappings/cb:acme-private",
        json={"candidates": ["gpt-4o-mini"], "strategy": "balanced"},
        headers=tenant.headers(),
    )
    assert mapped.status_code == 200, mapped.text
    own = http.get("/v1/models", headers=tenant.headers())
    assert "cb:acme-private" in {m["id"] for m in own.json()["data"]}
    again = http.get("/v1/models")
    assert "cb:acme-private" not in {m["id"] for m in again.json()["data"]}
    assert http.get("/v1/models", headers={"Authorization": "Bearer cb_wrong"}).status_code == 401

    # limits: refused before anything runs, each with its code
    aliases = "{ " + " ".join(f"a{i}: agents {{ id }}" for i in range(500)) + " }"
    too_many = graphql(gateway, tenant.headers(), aliases)
    assert too_many["data"] is None and "TOO_MANY_ALIASES" in _codes(too_many)
    deep = "{ agents { llmProvider " + "{ model " * 12 + "}" * 13 + " }"
    assert _codes(graphql(gateway, tenant.headers(), deep)) == ["QUERY_TOO_DEEP"]
    huge = "{ " + "health " * 6000 + "}"
    assert _codes(graphql(gateway, tenant.headers(), huge)) == ["QUERY_TOO_LARGE"]

    # a batch (a JSON array of operations) is refused, and says why
    batch = http.post(
        "/graphql", json=[{"query": "{ health }"}, {"query": "{ health }"}],
        headers=tenant.headers(),
    )  # fmt: skip
    assert batch.status_code == 400 and "one operation per request" in batch.text
    # a body that is not an operation object is a 400, never a 500
    as_json = {**tenant.headers(), "Content-Type": "application/json"}
    for body in (b'"{ health }"', b"null", b"42", b"[[[[" * 5000 + b"]]]]" * 5000, b"\xff"):
        bad = http.post("/graphql", content=body, headers=as_json)
        assert bad.status_code == 400, (body[:20], bad.status_code, bad.text)


@SQLITE_ONLY
def test_graphiql_is_served_by_the_gateway_with_nothing_remote(gateway: ApiClient) -> None:
    page = served_locally(gateway.http, "/graphql", files=7)  # two style sheets, five scripts
    base = str(page.url)
    init = gateway.http.get(urljoin(base, "graphiql/init.js")).text
    assert "graphqlWs.createClient" in init and "isHeadersEditorEnabled: true" in init

    # GraphiQL is for browsers: a query in the URL still runs, whatever Accept says
    ran = gateway.http.get("/graphql", params={"query": "{ health }"}, headers=BROWSER)
    assert ran.json() == {"data": {"health": "ok"}}
    for name in ("nothing.js", "..%2Fschema.py", "index.html", ".built"):
        assert gateway.http.get(f"/graphiql/{name}").status_code == 404, name


@SQLITE_ONLY
def test_graphiql_renders_with_every_other_host_unreachable(gateway: ApiClient) -> None:
    run = rendered(str(gateway.http.base_url).rstrip("/") + "/graphql")
    dom = run.stdout
    assert "graphiql-container" in dom, dom[:2000]  # React rendered GraphiQL
    assert "Loading GraphiQL" not in dom
    assert "Headers" in dom and "health" in dom  # the headers editor, the default query
    assert "Content Security Policy" not in run.stderr, run.stderr[-2000:]
