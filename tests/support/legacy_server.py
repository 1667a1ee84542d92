"""A stand-in legacy server: the legacy GraphQL schema's agent, state-configuration,
execution and provider queries (`../shared/LEGACY_GRAPHQL.md`) over HTTP, executed by
graphql-core against records the test gives. `fail_after` makes it stop answering after that
many requests (a server that goes away midway); `token` makes it require a bearer header."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from graphql import build_schema, graphql_sync

SDL = """
scalar JSON
type AgentLLMProviderGQL { providerType: String! model: String! baseUrl: String }
type AgentPromptsGQL { system: String! userTemplate: String! contextInstructions: String }
type LlmConfigGQL { temperature: Float! maxTokens: Int topP: Float frequencyPenalty: Float
  presencePenalty: Float stopSequences: [String!]! }
type AgentDefinitionGQL { id: String! name: String! description: String!
  llmProvider: AgentLLMProviderGQL! llmConfig: LlmConfigGQL! prompts: AgentPromptsGQL!
  capabilities: [String!]! tools: [String!]! createdAt: String! updatedAt: String! }
enum AgentExecutionStatusGQL { PENDING RUNNING COMPLETED FAILED TIMEOUT CANCELLED }
type AgentExecutionGQL { id: String! agentId: String! resourceId: String! stateId: String!
  status: AgentExecutionStatusGQL! inputData: JSON! outputData: JSON errorMessage: String
  startedAt: String! completedAt: String durationMs: Int retryCount: Int! }
type StateAgentScheduleGQL { initialDelaySeconds: Int intervalSeconds: Int maxExecutions: Int }
type AgentRetryConfigGQL { maxAttempts: Int! backoffSeconds: Int! retryOnErrors: [String!]! }
type StateAgentConfigGQL { id: String! stateId: String! agentId: String! llmConfig: LlmConfigGQL
  inputMapping: JSON! outputMapping: JSON! autoActivity: String schedule: StateAgentScheduleGQL
  retryConfig: AgentRetryConfigGQL enabled: Boolean! createdAt: String! updatedAt: String! }
type LlmModelGQL { id: String! name: String! maxTokens: Int! contextWindow: Int!
  costPerInputToken: Float! costPerOutputToken: Float! supportsStreaming: Boolean!
  supportsFunctionCalling: Boolean! capabilities: [String!]! }
type LlmProviderGQL { id: ID! providerType: String! name: String! baseUrl: String!
  models: [LlmModelGQL!]! createdAt: String! updatedAt: String! }
type Query {
  agent(id: String!): AgentDefinitionGQL
  agents: [AgentDefinitionGQL!]!
  stateAgentConfigs(stateId: String!): [StateAgentConfigGQL!]!
  agentExecution(id: String!): AgentExecutionGQL
  resourceExecutions(resourceId: String!): [AgentExecutionGQL!]!
  llmProviders: [LlmProviderGQL!]!
  health: String!
}
"""


class LegacyServer:
    """The legacy server on 127.0.0.1, a free port, in a thread (a context manager)."""

    def __init__(self, data: dict[str, list[dict[str, Any]]], token: str | None = None) -> None:
        self.data = data
        self.token = token
        self.schema = build_schema(SDL)
        self.requests = 0
        self.fail_after: int | None = None
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_port}/graphql"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> LegacyServer:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def root(self) -> dict[str, Any]:
        data = self.data
        by_id = {kind: {r["id"]: r for r in data.get(kind, [])} for kind in data}
        return {
            "agent": lambda _info, id: by_id["agents"].get(id),  # noqa: A006
            "agents": lambda _info: data["agents"],
            "stateAgentConfigs": lambda _info, stateId: [
                c for c in data["stateAgentConfigs"] if c["stateId"] == stateId
            ],
            "agentExecution": lambda _info, id: by_id["executions"].get(id),  # noqa: A006
            "resourceExecutions": lambda _info, resourceId: [
                e for e in data["executions"] if e["resourceId"] == resourceId
            ],
            "llmProviders": lambda _info: data.get("llmProviders", []),
            "health": lambda _info: "ok",
        }

    def _answer(self, body: dict[str, Any]) -> dict[str, Any]:
        result = graphql_sync(
            self.schema, body["query"], root_value=self.root(),
            variable_values=body.get("variables") or {},
        )  # fmt: skip
        answer: dict[str, Any] = {"data": result.data}
        if result.errors:
            answer["errors"] = [{"message": e.message} for e in result.errors]
        return answer

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        legacy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_: Any) -> None:
                pass

            def do_POST(self) -> None:
                legacy.requests += 1
                if legacy.fail_after is not None and legacy.requests > legacy.fail_after:
                    self.connection.close()  # gone midway: no answer at all
                    return
                if legacy.token and self.headers.get("Authorization") != f"Bearer {legacy.token}":
                    self._send(401, {"errors": [{"message": "unauthorized"}]})
                    return
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                self._send(200, legacy._answer(body))

            def _send(self, status: int, body: dict[str, Any]) -> None:
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        return Handler
