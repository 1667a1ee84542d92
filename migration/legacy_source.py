"""Reading a legacy system's records: from its running GraphQL server through its own API, or
from a JSON file of those queries' results (for a server that is already down).

The file holds `{"agents": [...], "stateAgentConfigs": [...], "executions": [...],
"llmProviders": [...]}`, each item as the legacy API returns it (docs/migration.md)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import httpx

AGENT = (
    "id name description llmProvider { providerType model baseUrl }"
    " llmConfig { temperature maxTokens topP frequencyPenalty presencePenalty stopSequences }"
    " prompts { system userTemplate contextInstructions } capabilities tools createdAt updatedAt"
)
LLM_CONFIG = "temperature maxTokens topP frequencyPenalty presencePenalty stopSequences"
STATE_CONFIG = (
    f"id stateId agentId llmConfig {{ {LLM_CONFIG} }} inputMapping outputMapping autoActivity"
    " schedule { initialDelaySeconds intervalSeconds maxExecutions }"
    " retryConfig { maxAttempts backoffSeconds retryOnErrors } enabled createdAt updatedAt"
)
EXECUTION = (
    "id agentId resourceId stateId status inputData outputData errorMessage startedAt"
    " completedAt durationMs retryCount"
)
PROVIDER = (
    "id providerType name baseUrl models { id name maxTokens contextWindow costPerInputToken"
    " costPerOutputToken supportsStreaming supportsFunctionCalling capabilities }"
)
FILE_KEYS = {"agents", "stateAgentConfigs", "executions", "llmProviders"}


class SourceUnavailable(Exception):
    """The legacy source could not be read; the message says what to do."""


class LegacyGraphQL:
    """A running legacy server, read through its GraphQL API."""

    def __init__(self, url: str, headers: dict[str, str], timeout_s: float = 30.0) -> None:
        self.url = url
        self.http = httpx.Client(headers=headers, timeout=timeout_s)

    def close(self) -> None:
        self.http.close()

    def query(self, text: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        try:
            reply = self.http.post(self.url, json={"query": text, "variables": variables or {}})
        except httpx.HTTPError as exc:
            raise SourceUnavailable(
                f"the legacy server at {self.url} did not answer ({type(exc).__name__}: {exc});"
                " check the URL, or import from a file with --from-file"
            ) from None
        try:
            body = reply.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or (reply.status_code >= 400 and not body.get("errors")):
            raise SourceUnavailable(
                f"the legacy server at {self.url} answered HTTP {reply.status_code} without a"
                " GraphQL result (is it the GraphQL endpoint? does it need --legacy-header?)"
            )
        if body.get("errors"):
            message = "; ".join(str(e.get("message")) for e in body["errors"])
            raise SourceUnavailable(f"the legacy server refused a query: {message}")
        return body.get("data") or {}

    def agents(self) -> list[dict[str, Any]]:
        """Every agent, each read whole with `agent(id)`."""
        listed = self.query("query ListAgents { agents { id } }").get("agents") or []
        return [a for a in (self.agent(str(item["id"])) for item in listed) if a is not None]

    def agent(self, legacy_id: str) -> dict[str, Any] | None:
        found = self.query(f"query GetAgent($id: String!) {{ agent(id: $id) {{ {AGENT} }} }}",
                           {"id": legacy_id})  # fmt: skip
        return found.get("agent")

    def state_agent_configs(self, state_id: str) -> list[dict[str, Any]]:
        text = (
            "query StateAgentConfigs($stateId: String!) {"
            f" stateAgentConfigs(stateId: $stateId) {{ {STATE_CONFIG} }} }}"
        )
        return self.query(text, {"stateId": state_id}).get("stateAgentConfigs") or []

    def execution(self, legacy_id: str) -> dict[str, Any] | None:
        text = f"query AgentExecution($id: String!) {{ agentExecution(id: $id) {{ {EXECUTION} }} }}"
        return self.query(text, {"id": legacy_id}).get("agentExecution")

    def resource_executions(self, resource_id: str) -> list[dict[str, Any]]:
        text = (
            "query ResourceExecutions($resourceId: String!) {"
            f" resourceExecutions(resourceId: $resourceId) {{ {EXECUTION} }} }}"
        )
        return self.query(text, {"resourceId": resource_id}).get("resourceExecutions") or []

    def providers(self) -> list[dict[str, Any]]:
        return (
            self.query(f"query Providers {{ llmProviders {{ {PROVIDER} }} }}").get("llmProviders")
            or []
        )

    def read(
        self, execution_ids: Iterable[str], resource_ids: Iterable[str], state_ids: Iterable[str]
    ) -> dict[str, list[dict[str, Any]]]:
        """Agents; the executions named and those of the resources named; the state agent
        configurations of the states named and of the states those executions ran in."""
        executions = {}
        for resource in resource_ids:
            executions.update({e["id"]: e for e in self.resource_executions(resource)})
        for legacy_id in execution_ids:
            found = self.execution(legacy_id)
            if found is None:
                raise SourceUnavailable(f"the legacy server has no execution {legacy_id!r}")
            executions[found["id"]] = found
        states = dict.fromkeys([*state_ids, *(e.get("stateId") for e in executions.values())])
        configs = {}
        for state in (s for s in states if s):
            configs.update({c["id"]: c for c in self.state_agent_configs(state)})
        return {
            "agents": self.agents(),
            "stateAgentConfigs": list(configs.values()),
            "executions": list(executions.values()),
        }


def read_file(path: Path) -> dict[str, list[dict[str, Any]]]:
    """A file of the legacy queries' results, checked for shape."""
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise SourceUnavailable(f"cannot read {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise SourceUnavailable(f"{path} is not JSON: {exc}") from None
    if not isinstance(data, dict) or not set(data) & FILE_KEYS:
        raise SourceUnavailable(
            f"{path} holds none of {sorted(FILE_KEYS)}: it should be an object of the legacy"
            " queries' results (docs/migration.md, 'Importing from a file')"
        )
    unknown = set(data) - FILE_KEYS
    if unknown:
        raise SourceUnavailable(f"{path}: unknown keys {sorted(unknown)}")
    for key in FILE_KEYS & set(data):
        items = data[key]
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise SourceUnavailable(f"{path}: {key} must be a list of objects")
    return {key: list(data.get(key) or []) for key in FILE_KEYS}


def ids_in(path: Path | None) -> list[str]:
    """One id per line (blank lines and `#` comments skipped)."""
    if path is None:
        return []
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise SourceUnavailable(f"cannot read {path}: {exc.strerror}") from None
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def header_pairs(given: list[str]) -> dict[str, str]:
    """`--legacy-header 'Name: value'` options as headers."""
    headers = {}
    for item in given:
        name, sep, value = item.partition(":")
        if not sep or not name.strip():
            raise SourceUnavailable(f"--legacy-header {item!r}: expected 'Name: value'")
        headers[name.strip()] = value.strip()
    return headers
