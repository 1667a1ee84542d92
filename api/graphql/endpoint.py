"""The `/graphql` HTTP endpoint: strawberry's FastAPI router, plus

- GraphiQL for a browser (`GET /graphql` asking for `text/html`), from this project's own
  files: `api/graphql/graphiql/dist`, built by `make graphiql` from an npm lockfile and
  served under `/graphiql/`, so it works with no internet;
- a `GET /graphql` without a query from anything else (the legacy SDKs' start-up probe sends
  `Accept: */*`) stays a 400;
- a body that is not a JSON object, or is nested too deeply to decode, is a 400, and a
  batch (a JSON array of operations) is refused with a 400 that says so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cross_web import HTTPException
from fastapi import Request
from fastapi.responses import HTMLResponse, Response
from strawberry.fastapi import GraphQLRouter
from strawberry.http import GraphQLRequestData
from strawberry.http.base import BaseRequestProtocol

from api import static_ui

GRAPHIQL_DIR = Path(__file__).parent / "graphiql" / "dist"
ASSET_PATH = "/graphiql/{name}"
BATCH_REFUSED = "batched operations (a JSON array) are not accepted: send one operation per request"


class GraphQLEndpoint(GraphQLRouter):
    """Strawberry's router with this gateway's GraphiQL and stricter request parsing."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.add_api_route(ASSET_PATH, graphiql_asset, methods=["GET"], include_in_schema=False)

    def should_render_graphql_ide(self, request: BaseRequestProtocol) -> bool:
        """Only for a browser: `Accept: */*` alone (an SDK's probe) gets the usual 400."""
        return (
            request.method == "GET"
            and request.query_params.get("query") is None
            and "text/html" in request.headers.get("accept", "")
        )

    async def render_graphql_ide(self, request: Request) -> HTMLResponse:  # type: ignore[override]
        return graphiql_page()

    def parse_json(self, data: str | bytes) -> Any:
        try:
            return self.decode_json(data)
        except RecursionError:
            raise HTTPException(400, "the JSON is nested too deeply") from None
        except ValueError:  # not JSON, or not UTF-8
            raise HTTPException(400, "Unable to parse request body as JSON") from None

    async def parse_http_body(self, request: Any) -> GraphQLRequestData | list[GraphQLRequestData]:
        if request.method == "POST" and "json" in (request.content_type or ""):
            body = self.parse_json(await request.get_body())
            if not isinstance(body, dict | list):
                raise HTTPException(
                    400, "the body must be a JSON object: {query, variables, operationName}"
                )
        return await super().parse_http_body(request)

    def _validate_batch_request(self, request_data: Any, protocol: Any) -> None:
        raise HTTPException(400, BATCH_REFUSED)


def graphiql_page() -> HTMLResponse:
    """GraphiQL's page, or a 503 that says how to build it."""
    return static_ui.page(GRAPHIQL_DIR, "GraphiQL", "graphiql")


async def graphiql_asset(name: str) -> Response:
    """One of GraphiQL's built files."""
    return static_ui.asset(GRAPHIQL_DIR, name, "GraphiQL")
