// GraphQL against the real server: raw queries, the §12.1 agent fields, legacy operations,
// typed errors, and subscriptions over graphql-transport-ws (the `ws` package as WebSocket).
import { test } from "node:test";
import assert from "node:assert/strict";
import WebSocket from "ws";
import { AuthenticationError, Client, GraphQLError, InvalidRequestError, NotFoundError } from "../dist/index.js";
import { client, env, unique } from "./helpers.mjs";

test("graphql: query(), extended agent fields, history and metrics", async () => {
  const c = client();
  assert.equal(typeof (await c.graphql.query("{ health }")).health, "string");
  const agent = await c.agents.create({ name: unique("gql"), model: "cb:smart-chat", tools: ["mortgage_calculator"] });
  const run = await c.agents.execute(agent.id, { prompt: "history", metadata: { resource_id: "res-sdk" } });

  const full = await c.graphql.agent(agent.id);
  assert.equal(full.id, agent.id);
  assert.equal(full.tenantId, env("CB_TENANT_ID"));
  assert.ok(full.tenantPermissions.includes("agents:read"));
  assert.match(full.executionEndpoints.execute, new RegExp(`/api/v1/agents/${agent.id}/execute$`));
  assert.equal(full.streamingConfig.resumeHeader, "Last-Event-ID");
  assert.equal(full.virtualModelMappings[0].name, "cb:smart-chat");
  assert.equal(full.toolConfigurations[0].name, "mortgage_calculator");
  assert.equal(full.toolConfigurations[0].source, "builtin");
  assert.equal(await c.graphql.agent("00000000-0000-4000-8000-000000000000"), null);

  const page = await c.graphql.agentList({ filter: { name: agent.name }, first: 5 });
  assert.equal(page.totalCount, 1);
  assert.equal(page.edges[0].node.id, agent.id);

  const history = await c.graphql.executionHistory(agent.id, { first: 5 });
  assert.equal(history.edges[0].node.id, run.execution_id);
  assert.equal(history.edges[0].node.status, "COMPLETED");
  const metrics = await c.graphql.performanceMetrics(agent.id, "LAST_HOUR");
  assert.equal(metrics.window, "LAST_HOUR");
  const execution = await c.graphql.agentExecution(run.execution_id);
  assert.equal(execution.status, "COMPLETED");
  assert.equal(execution.resourceId, "res-sdk");
  assert.ok((await c.graphql.resourceExecutions("res-sdk")).some((e) => e.id === run.execution_id));
  assert.ok((await c.graphql.tools()).some((t) => t.name === "mortgage_calculator"));
  assert.ok(Array.isArray(await c.graphql.mcpServers()));
  assert.ok(Array.isArray(await c.graphql.deprecatedUsage()));

  const updated = await c.graphql.updateAgent(agent.id, { description: "via gql", parameters: { max_tokens: 50 } });
  assert.equal(updated.description, "via gql");
  assert.equal(updated.llmConfig.maxTokens, 50);
  assert.deepEqual(await c.graphql.deleteAgent(agent.id), { success: true, id: agent.id });
  await assert.rejects(c.graphql.deleteAgent(agent.id), NotFoundError);
});

test("graphql: legacy operations (createAgent, agents, llmChatCompletion, providers, budgets, costs)", async () => {
  const c = client();
  const created = await c.graphql.createAgent({
    name: unique("legacy"), description: "made the legacy way",
    llmProvider: { providerType: "openai", model: "gpt-4o-mini", apiKey: "" },
    llmConfig: { temperature: 0.5, stopSequences: [], maxTokens: 100 },
    prompts: { system: "You are legacy.", userTemplate: "{prompt}" },
    capabilities: ["chat"], tools: [],
  });
  assert.equal((await c.agents.get(created.id)).model, "gpt-4o-mini");
  assert.ok((await c.graphql.agents()).some((a) => a.id === created.id));
  const chat = await c.graphql.llmChatCompletion({ model: "cb:smart-chat", messages: [{ role: "user", content: "legacy chat" }] });
  assert.equal(chat.choices[0].message.content, "Echo: legacy chat");
  assert.ok(chat.usage.totalTokens > 0);
  assert.ok((await c.graphql.llmProviders()).some((p) => p.id === "openai"));
  const budget = await c.graphql.setBudget({ limit: 10, period: "monthly", warningThreshold: 0.8 });
  assert.equal(budget.budgetId, "tenant");
  assert.equal((await c.graphql.budgetStatus()).limit, 10);
  const day = new Date().toISOString().slice(0, 10);
  const costs = await c.graphql.costAnalytics({ startDate: day, endDate: day });
  assert.ok(costs.totalTokens > 0);
  await c.budgets.remove("tenant");
  await assert.rejects(c.graphql.setBudget({ limit: 10, period: "weekly", warningThreshold: 0.8 }), InvalidRequestError);
  await assert.rejects(c.graphql.query("{ noSuchField }"), GraphQLError);
  const stranger = new Client({ baseUrl: env("CB_BASE_URL"), tenantId: env("CB_TENANT_ID"), apiKey: "cbk_wrong" });
  await assert.rejects(stranger.graphql.query("{ agents { id } }"), AuthenticationError);
});

test("graphql subscriptions over WebSocket: an execution's events, costs, and a refused key", async () => {
  const c = client({ webSocket: WebSocket });
  const agent = await c.agents.create({ name: unique("sub"), model: "cb:smart-chat" });
  const streamed = await c.agents.stream(agent.id, { prompt: "subscribe me" }).finalResult();
  const events = [];
  for await (const ev of c.graphql.executionEvents(streamed.execution_id)) events.push(ev);
  assert.equal(events[0].type, "execution_start");
  assert.equal(events.filter((e) => e.type === "content_chunk").map((e) => e.delta).join(""), "Echo: subscribe me");
  assert.equal(events.at(-1).type, "execution_complete");

  const costs = c.graphql.costUpdates();
  const iterator = costs[Symbol.asyncIterator]();
  const next = iterator.next();
  await new Promise((r) => setTimeout(r, 500)); // the subscription is up before the execution ends
  const run = await c.agents.execute(agent.id, { prompt: "cost me" });
  const { value } = await Promise.race([next, new Promise((_, reject) => setTimeout(() => reject(new Error("no cost update")), 15000))]);
  assert.equal(value.details.executionId, run.execution_id);
  assert.ok(value.cost > 0);
  costs.close();
  assert.equal((await iterator.next()).done, true);

  const stranger = new Client({ baseUrl: env("CB_BASE_URL"), tenantId: env("CB_TENANT_ID"), apiKey: "cbk_wrong", webSocket: WebSocket });
  await assert.rejects(async () => {
    for await (const _ of stranger.graphql.executionEvents(streamed.execution_id)) break;
  }, AuthenticationError);
});
