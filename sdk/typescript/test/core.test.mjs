// The REST surface against the real server: agents, execute, executions, models (ETag),
// tools, MCP servers, analytics, budgets, audit, deprecations, typed errors.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  AuthenticationError, Client, InvalidRequestError, MissingTenantError, NotFoundError, UnknownToolError,
  APIError, ModelNotFoundError,
} from "../dist/index.js";
import { client, env, unique } from "./helpers.mjs";

test("agents: create, get, list, update, delete", async () => {
  const c = client();
  const name = unique("agent");
  const agent = await c.agents.create({ name, model: "cb:smart-chat", system_prompt: "Be brief.", parameters: { temperature: 0.2 }, tags: ["sdk"] });
  assert.equal(agent.name, name);
  assert.equal(agent.model, "cb:smart-chat");
  assert.equal(agent.version, 1);
  assert.deepEqual(await c.agents.get(agent.id), agent);
  assert.ok((await c.agents.list()).some((a) => a.id === agent.id));
  const updated = await c.agents.update(agent.id, { description: "changed", parameters: { temperature: 0.4 } });
  assert.equal(updated.description, "changed");
  assert.equal(updated.parameters.temperature, 0.4);
  assert.equal(updated.version, 2);
  await c.agents.delete(agent.id);
  await assert.rejects(c.agents.get(agent.id), NotFoundError);
  assert.equal(c.mode, "rest");
});

test("execute answers the result; executions get, list, iterate", async () => {
  const c = client();
  const agent = await c.agents.create({ name: unique("exec"), model: "cb:smart-chat" });
  const prompt = unique("hello");
  const result = await c.agents.execute(agent.id, { prompt, metadata: { resource_id: "r-1" } });
  assert.equal(result.status, "completed");
  assert.equal(result.response.content, `Echo: ${prompt}`);
  assert.ok(result.usage.total_tokens > 0);
  const seen = await c.executions.get(result.execution_id);
  assert.equal(seen.status, "completed");
  assert.equal(seen.response.content, result.response.content);
  const page = await c.executions.list({ agent_id: agent.id, limit: 1 });
  assert.equal(page.executions[0].execution_id, result.execution_id);
  const second = await c.agents.execute(agent.id, { prompt: "again" });
  const all = [];
  for await (const ex of c.executions.iterate({ agent_id: agent.id, limit: 1 })) all.push(ex.execution_id);
  assert.deepEqual(all, [second.execution_id, result.execution_id]);
});

test("models: the ETag cache revalidates with If-None-Match", async () => {
  const seen = [];
  const c = client({
    fetch: async (input, init) => {
      const reply = await fetch(input, init);
      if (String(input).endsWith("/api/v1/models")) seen.push([init.headers["If-None-Match"] ?? null, reply.status]);
      return reply;
    },
  });
  const first = await c.models.list();
  assert.equal(c.models.lastStatus, "fetched");
  assert.ok(first.some((m) => m.id === "cb:smart-chat" && m.kind === "virtual"));
  assert.ok(first.some((m) => m.kind === "concrete"));
  const again = await c.models.list();
  assert.equal(c.models.lastStatus, "not_modified");
  assert.deepEqual(again, first);
  assert.equal(seen[0][0], null);
  assert.equal(seen[0][1], 200);
  assert.match(seen[1][0], /^"/);
  assert.equal(seen[1][1], 304);
  assert.equal((await c.models.get("cb:smart-chat")).kind, "virtual");
  // a tenant mapping changes the list: a new tag, the new body
  await c.models.setMapping("cb:sdk-test", { candidates: ["gpt-4o-mini"], strategy: "balanced" });
  const changed = await c.models.list();
  assert.equal(c.models.lastStatus, "fetched");
  assert.ok(changed.some((m) => m.id === "cb:sdk-test"));
  assert.ok((await c.models.listMappings()).some((m) => m.name === "cb:sdk-test"));
  await c.models.removeMapping("cb:sdk-test");
  assert.ok((await c.models.openai()).data.length > 0);
  assert.ok((await c.models.providers()).some((p) => p.id === "openai"));
  const policy = await c.models.setPolicy({ parameter_caps: { max_tokens: 4000 } });
  assert.equal((await c.models.getPolicy()).parameter_caps.max_tokens, 4000, JSON.stringify(policy));
});

test("tools, MCP servers, analytics, budgets, audit and deprecations", async () => {
  const c = client();
  const tools = await c.tools.list();
  assert.ok(tools.some((t) => t.name === "mortgage_calculator" && t.source === "builtin"));
  assert.ok(Array.isArray(await c.mcpServers.list()));
  const server = await c.mcpServers.register({ name: unique("mcp"), transport: "http", url: "http://127.0.0.1:9/mcp", timeout_s: 1 });
  assert.ok(server.id);
  assert.ok((await c.mcpServers.list()).some((s) => s.id === server.id));
  await c.mcpServers.refresh(server.id).catch((e) => assert.ok(e instanceof APIError));
  await c.mcpServers.remove(server.id);
  assert.ok(!(await c.mcpServers.list()).some((s) => s.id === server.id));

  const usage = await c.analytics.usage({ group_by: "model" });
  assert.equal(typeof usage, "object");
  assert.ok(await c.analytics.models());
  assert.ok(await c.analytics.errors());
  assert.match(await c.analytics.csv("usage"), /,/);

  const budget = await c.budgets.set("tenant", { limit_usd: 25, period: "day" });
  assert.equal(budget.limit_usd, 25);
  assert.equal((await c.budgets.get("tenant")).period, "day");
  assert.ok((await c.budgets.list()).some((b) => b.scope === "tenant"));
  const feed = new AbortController();
  const events = [];
  for await (const ev of c.budgets.events({ signal: feed.signal })) {
    events.push(ev);
    if (ev.type === "budget_set") break;
  }
  assert.equal(events.at(-1).data.scope, "tenant");
  assert.deepEqual(await c.budgets.remove("tenant"), { scope: "tenant", removed: true });

  const entries = await c.audit.list({ kind: ["budget.set", "budget.removed"], limit: 10 });
  assert.ok(entries.some((e) => e.kind === "budget.set"));
  const deprecations = await c.deprecations.usage();
  assert.ok(deprecations.deprecations.length > 0);
});

test("errors: one class per API error type, not retried", async () => {
  const calls = [];
  const c = client({ fetch: (input, init) => (calls.push(String(input)), fetch(input, init)) });
  await assert.rejects(c.agents.get("00000000-0000-4000-8000-000000000000"), (e) => e instanceof NotFoundError && e.status === 404 && e.type === "not_found");
  assert.equal(calls.length, 1, "a 404 is not retried");
  // a stream refused before it starts throws the refusal itself
  await assert.rejects(c.agents.stream("00000000-0000-4000-8000-000000000000", { prompt: "x" }).finalResult(), NotFoundError);
  await assert.rejects(c.agents.create({ name: "x", model: "no-such-model" }), (e) => e instanceof ModelNotFoundError || e instanceof InvalidRequestError);
  await assert.rejects(c.agents.create({ name: "x", model: "cb:smart-chat", tools: ["no_such_tool"] }), UnknownToolError);
  const agent = await c.agents.create({ name: unique("err"), model: "cb:smart-chat" });
  await assert.rejects(c.agents.execute(agent.id, { prompt: "" }), (e) => e instanceof InvalidRequestError && e.details !== undefined);
  const wrongKey = new Client({ baseUrl: env("CB_BASE_URL"), tenantId: env("CB_TENANT_ID"), apiKey: "cbk_wrong" });
  await assert.rejects(wrongKey.agents.list(), AuthenticationError);
  const noTenant = new Client({ baseUrl: env("CB_BASE_URL"), tenantId: "", apiKey: env("CB_API_KEY") });
  await assert.rejects(noTenant.agents.list(), MissingTenantError);
  // getToken is asked on each request
  let asked = 0;
  const tokened = new Client({ baseUrl: env("CB_BASE_URL"), tenantId: env("CB_TENANT_ID"), getToken: async () => (asked++, env("CB_API_KEY")) });
  await tokened.agents.list();
  await tokened.agents.list();
  assert.equal(asked, 2);
});

test("environment defaults: CB_BASE_URL, CB_TENANT_ID, CB_API_KEY", async () => {
  const c = new Client();
  assert.equal(c.baseUrl, env("CB_BASE_URL").replace(/\/$/, ""));
  assert.equal(c.tenantId, env("CB_TENANT_ID"));
  assert.equal(c.pinnedMode, "auto");
  assert.equal(c.mode, "rest");
  assert.ok(Array.isArray(await c.agents.list()));
  assert.equal(await c.health(), true);
});
