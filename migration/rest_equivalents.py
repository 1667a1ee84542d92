"""The REST call of the new SDKs for each legacy GraphQL root field that has one."""

from __future__ import annotations

# field → (TypeScript, Python)
REST_CALLS: dict[str, tuple[str, str]] = {
    "agents": ("client.agents.list()", "client.agents.list()"),
    "agent": ("client.agents.get(id)", "client.agents.get(agent_id)"),
    "createAgent": (
        "client.agents.create({ name, model, system_prompt, … })",
        "client.agents.create(name=…, model=…, system_prompt=…)",
    ),
    "updateAgent": ("client.agents.update(id, patch)", "client.agents.update(agent_id, **changes)"),
    "deleteAgent": ("client.agents.delete(id)", "client.agents.delete(agent_id)"),
    "agentExecution": ("client.executions.get(id)", "client.executions.get(execution_id)"),
    "llmChatCompletion": (
        "client.llm().chatCompletion({ model, messages, max_tokens }) (POST /v1/chat/completions)",
        "client.chat_completion(model=…, messages=[…]) (POST /v1/chat/completions)",
    ),
    "llmProviders": ("client.models.providers()", "client.providers.list()"),
    "budgetStatus": ('client.budgets.get("tenant")', 'client.budgets.get("tenant")'),
    "setBudget": (
        'client.budgets.set("tenant", { limit_usd, period: "month" })',
        'client.budgets.set("tenant", limit_usd=…, period="month")',
    ),
    "costAnalytics": (
        "client.analytics.usage({ from, to })",
        "client.analytics.usage(start=…, end=…)",
    ),
    "mcpServers": ("client.mcpServers.list()", "client.mcp_servers.list()"),
    "tools": ("client.tools.list()", "client.tools.list()"),
}


def rest_hint(fields: list[str], python: bool) -> str | None:
    """What to call over REST instead, for the fields that have an equivalent."""
    calls = [REST_CALLS[f][1 if python else 0] for f in fields if f in REST_CALLS]
    if not calls:
        return None
    return (
        "optional: REST equivalent "
        + "; ".join(calls)
        + " (REST answers snake_case objects, not the GraphQL selection: adapt the reads)"
    )
