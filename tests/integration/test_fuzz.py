"""Schema-driven fuzzing of the HTTP API (schemathesis on /openapi.json): no generated
request, however odd, gets a 5xx. Bounded: a few examples per operation, derandomized."""

from __future__ import annotations

from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings

from tests.support.client import ApiClient
from tests.support.cluster import ADMIN_TOKEN, Cluster

# platform-wide changes would reach the other tests' configuration; tenant creation would
# start an actor per example
SKIPPED = ("/api/v1/admin/config", "/api/v1/admin/tenants$")
EXAMPLES = 5


def test_no_generated_request_gets_a_server_error(cluster: Cluster) -> None:
    gateway = ApiClient(cluster, "sqlite")
    tenant = gateway.new_tenant("Fuzz")
    base = str(gateway.http.base_url).rstrip("/")
    schema = schemathesis.openapi.from_url(base + "/openapi.json")
    schema = schema.exclude(path_regex="^(" + "|".join(SKIPPED) + ")")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 20

    statuses: list[int] = []

    def call(case: Any) -> None:
        if "tenant_id" in (case.path_parameters or {}):
            case.path_parameters["tenant_id"] = tenant.id  # never an actor per random id
        admin = case.path.startswith("/api/v1/admin")
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"} if admin else tenant.headers()
        response = case.call(base_url=base, headers=headers, timeout=30)
        statuses.append(response.status_code)
        assert response.status_code < 500, (
            f"{case.method} {case.formatted_path} → {response.status_code}: {response.text[:500]}"
        )

    for operation in operations:
        fuzz = settings(
            max_examples=EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )(given(case=operation.as_strategy())(call))
        fuzz()
    gateway.http.close()
    assert len(statuses) >= 2 * len(operations)  # every operation was really exercised
    assert any(s < 300 for s in statuses) and any(400 <= s < 500 for s in statuses)
