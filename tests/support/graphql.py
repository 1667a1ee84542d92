"""The legacy GraphQL endpoint, for tests."""

from __future__ import annotations

from tests.support.client import ApiClient


def graphql(gateway: ApiClient, headers: dict[str, str], query: str, **variables: object) -> dict:
    """Post `query` to `/graphql`; the reply's JSON (`data` and/or `errors`) once it is a 200."""
    reply = gateway.http.post(
        "/graphql", json={"query": query, "variables": variables}, headers=headers
    )
    assert reply.status_code == 200, reply.text
    return reply.json()
