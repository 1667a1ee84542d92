// `@circuit-breaker/sdk/testing`: the SDK's own Client against the in-process FakeGateway (no
// cluster, no environment): REST, SSE with resume and cancel, OpenAI's door, GraphQL, and the
// SDK's retries and typed errors on injected failures. `npm run test:fake` runs this file alone.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  AuthenticationError, Client, ExecutionCancelledError, InvalidRequestError, MissingTenantError, NotFoundError, PermissionDeniedError,
  ProviderError, RateLimitError, ServiceUnavailableError,
} from "../dist/index.js";
import { FakeGateway } from "../dist/testing.js";

/** Run `body` with a started fake, closed afterwards. */
async function withGateway(body) {
  const gw = await FakeGateway.start();
  try {
    await body(gw, gw.client({ retry: { baseMs: 10 } }));
  } finally {
    await gw.close();
  }
}

test("agents CRUD, execute and history over REST", () => withGateway(async (gw, c) => {
  const agent = await c.agents.create({ name: "Helper", model: "cb:smart-chat", system_prompt: "Be brief.", tags: ["sdk"] });
  assert.equal(agent.version, 1);
  assert.equal(agent.tenant_id, gw.tenantId);
  assert.deepEqual(await c.agents.get(agent.id), agent);
  assert.deepEqual((await c.agents.list()).map((a) => a.id), [agent.id]);
  const updated = await c.agents.update(agent.id, { description: "changed", parameters: { temperature: 0 } });
  assert.equal(updated.version, 2);
  assert.deepEqual(updated.parameters, { temperature: 0 });

  const result = await c.agents.execute(agent.id, { prompt: "What is 2 + 2?", metadata: { resource_id: "r-1" } });
  assert.equal(result.response.content, "Echo: What is 2 + 2?");
  assert.equal(result.usage.total_tokens, result.usage.prompt_tokens + result.usage.completion_tokens);
  const seen = await c.executions.get(result.execution_id);
  assert.equal(seen.status, "completed");
  assert.equal(seen.resource_id, "r-1");
  const page = await c.executions.list({ agent_id: agent.id, limit: 5 });
  assert.deepEqual(page.executions.map((e) => e.execution_id), [result.execution_id]);

  const sent = gw.requestsTo("/execute", "POST")[0];
  assert.deepEqual(sent.json, { prompt: "What is 2 + 2?", metadata: { resource_id: "r-1" } });
  assert.equal(sent.headers.authorization, `Bearer ${gw.apiKey}`);
  assert.equal(sent.headers["x-tenant-id"], gw.tenantId);
  await c.agents.delete(agent.id);
  await assert.rejects(c.agents.get(agent.id), NotFoundError);
  assert.deepEqual(gw.agents, []);
}));

test("a stream sends the real events with increasing ids", () => withGateway(async (gw, c) => {
  gw.replyFor("story", "Once upon a time.", { usage: { prompt_tokens: 11, cost_usd: 0.5 } });
  const agent = await c.agents.create({ name: "Teller", model: "cb:creative" });
  const events = [];
  for await (const ev of c.agents.stream(agent.id, { prompt: "Tell me a story" })) events.push(ev);
  assert.equal(events[0].type, "execution_start");
  assert.equal(events[0].model_requested, "cb:creative");
  assert.equal(events.filter((e) => e.type === "content_chunk").map((e) => e.delta).join(""), "Once upon a time.");
  const usage = events.find((e) => e.type === "usage_update");
  assert.deepEqual([usage.prompt_tokens, usage.cost_usd, usage.estimated], [11, 0.5, false]);
  assert.equal(events.at(-1).type, "execution_complete");
  assert.equal(events.at(-1).result.response.content, "Once upon a time.");
  assert.deepEqual(events.map((e) => e.event_id), events.map((_, i) => i + 1));
  assert.deepEqual(gw.requestsTo("/execute/stream")[0].json.stream_options, { on_disconnect: "continue" });
  const result = await c.agents.stream(agent.id, { prompt: "another story" }).finalResult();
  assert.equal(result.response.content, "Once upon a time.");
}));

test("a dropped stream is resumed with Last-Event-ID", () => withGateway(async (gw, c) => {
  gw.reply("one two three four", { cutAfter: 3 });
  const agent = await c.agents.create({ name: "R", model: "cb:fastest" });
  const stream = c.agents.stream(agent.id, { prompt: "go" });
  const events = [];
  for await (const ev of stream) events.push(ev);
  assert.equal(stream.resumes, 1);
  assert.equal(events.filter((e) => e.type === "content_chunk").map((e) => e.delta).join(""), "one two three four");
  assert.deepEqual(events.map((e) => e.event_id), events.map((_, i) => i + 1));
  const resumed = gw.requestsTo(`/executions/${stream.executionId}/stream`);
  assert.deepEqual(resumed.map((r) => r.headers["last-event-id"]), ["3"]);
  const replay = [];
  for await (const ev of c.executions.resume(stream.executionId, { lastEventId: 5 })) replay.push(ev);
  assert.equal(replay[0].event_id, 6);
  assert.equal(replay.at(-1).type, "execution_complete");
}));

test("a running stream can be cancelled", () => withGateway(async (gw, c) => {
  gw.reply("w ".repeat(50), { delayMs: 20 });
  const agent = await c.agents.create({ name: "C", model: "cb:smart-chat" });
  const stream = c.agents.stream(agent.id, { prompt: "long" });
  for await (const ev of stream) if (ev.type === "content_chunk") break;
  // leaving the loop closed the connection; the execution runs on (on_disconnect: continue)
  const record = await c.executions.cancel(stream.executionId);
  assert.equal(record.status, "cancelled");
  await assert.rejects(c.executions.resume(stream.executionId).finalResult(), ExecutionCancelledError);
}));

test("a scripted failure ends the stream with its typed error", () => withGateway(async (gw, c) => {
  gw.replyFor("boom", "partial", { errorType: "provider_timeout" });
  const agent = await c.agents.create({ name: "F", model: "cb:smart-chat" });
  await assert.rejects(c.agents.stream(agent.id, { prompt: "boom" }).finalResult(), ProviderError);
  const error = await c.agents.execute(agent.id, { prompt: "boom again" }).catch((e) => e);
  assert.ok(error instanceof ProviderError);
  assert.equal(error.status, 504);
  assert.equal((await c.executions.get(error.executionId)).status, "failed");
}));

test("chat completions, whole and streamed, and the model lists", () => withGateway(async (gw, c) => {
  gw.replyFor("capital", "Paris.");
  assert.equal(await c.llm().chat("cb:smart-chat", "The capital of France?"), "Paris.");
  const chunks = [];
  for await (const chunk of c.llm().stream({ model: "cb:fastest", messages: [{ role: "user", content: "capital?" }], stream_options: { include_usage: true } })) {
    chunks.push(chunk);
  }
  assert.equal(chunks[0].choices[0].delta.role, "assistant");
  assert.equal(chunks.filter((x) => x.choices.length).map((x) => x.choices[0].delta.content ?? "").join(""), "Paris.");
  assert.ok(chunks.at(-1).usage.total_tokens > 0);
  const openai = await c.models.openai();
  assert.ok(openai.data.some((m) => m.id === "cb:smart-chat"));
  const publicList = await (await fetch(`${gw.url}/v1/models`)).json(); // no key: the public catalog
  assert.equal(publicList.object, "list");
  assert.ok((await c.models.list()).some((m) => m.id === "cb:smart-chat"));
  await c.models.list();
  assert.equal(c.models.lastStatus, "not_modified"); // the ETag answered 304
}));

test("GraphQL queries and mutations, and the GraphQL surface", () => withGateway(async (gw, c) => {
  const created = await c.graphql.createAgent({
    name: "G", description: "", capabilities: [], tools: [], llmProvider: { providerType: "openai", model: "cb:coding", apiKey: "" },
    llmConfig: { temperature: 0.1, stopSequences: [] }, prompts: { system: "Code.", userTemplate: "" },
  });
  const agent = await c.agents.get(created.id);
  assert.deepEqual([agent.name, agent.model, agent.system_prompt], ["G", "cb:coding", "Code."]);
  assert.deepEqual((await c.graphql.agents()).map((a) => a.id), [agent.id]);
  const result = await c.agents.execute(agent.id, { prompt: "hi" });
  const ext = await c.graphql.agent(agent.id);
  assert.ok(ext.executionEndpoints.stream.endsWith(`/agents/${agent.id}/execute/stream`));
  assert.equal(ext.streamingConfig.resumable, true);
  assert.equal(ext.virtualModelMappings[0].name, "cb:coding");
  const history = await c.graphql.executionHistory(agent.id);
  assert.deepEqual(history.edges.map((e) => e.node.id), [result.execution_id]);
  const node = await c.graphql.agentExecution(result.execution_id);
  assert.equal(node.status, "COMPLETED");
  assert.equal(node.outputData.content, "Echo: hi");
  assert.deepEqual(await c.graphql.query("{ health agentList { totalCount } }"), { health: "ok", agentList: { totalCount: 1 } });

  const overGraphQL = gw.client({ mode: "graphql" });
  const executed = await overGraphQL.agents.execute(agent.id, { prompt: "via graphql" });
  assert.deepEqual([executed.surface, executed.response.content], ["graphql", "Echo: via graphql"]);
  assert.equal((await overGraphQL.executions.get(executed.execution_id)).status, "completed");
  assert.ok(gw.requests.slice(-2).every((r) => r.path === "/graphql"));
}));

test("injected errors map to the SDK's retries and typed errors", () => withGateway(async (gw, c) => {
  const agent = await c.agents.create({ name: "E", model: "cb:smart-chat" });

  gw.fail(429, "rate_limited", { retryAfter: 0, path: "/execute" });
  assert.equal((await c.agents.execute(agent.id, { prompt: "retried" })).response.content, "Echo: retried");
  assert.equal(gw.requestsTo("/execute").length, 2); // refused at admission: sent again

  gw.fail(429, "rate_limited", { retryAfter: 7, times: 5 });
  const limited = await gw.client({ maxRetries: 0 }).agents.execute(agent.id, { prompt: "refused" }).catch((e) => e);
  assert.ok(limited instanceof RateLimitError);
  assert.equal(limited.retryAfter, 7);
  assert.deepEqual(limited.details, { limit: "requests_per_minute" });
  gw.reset();

  const second = await c.agents.create({ name: "E2", model: "cb:smart-chat" });
  gw.fail(502, "provider_error", { path: "/execute" });
  const failed = await c.agents.execute(second.id, { prompt: "ran and failed" }).catch((e) => e);
  assert.ok(failed instanceof ProviderError);
  assert.ok(failed.executionId); // recorded, so never sent again
  assert.equal(gw.requestsTo("/execute").length, 1);

  gw.fail(503, "service_unavailable", { path: `/api/v1/agents/${second.id}`, method: "GET", times: 3 });
  assert.equal((await c.agents.get(second.id)).id, second.id); // answered over GraphQL instead
  assert.equal(c.mode, "graphql");

  const refused = await new Client({ baseUrl: gw.url, tenantId: gw.tenantId, apiKey: "cbk_wrong" }).agents.list().catch((e) => e);
  assert.ok(refused instanceof AuthenticationError);
  assert.equal(refused.status, 401);
  assert.equal(refused.body.error.type, "authentication_failed");
  // tenantId "" (not left out: CB_TENANT_ID may be set where this runs) sends no X-Tenant-ID
  await assert.rejects(new Client({ baseUrl: gw.url, apiKey: gw.apiKey, tenantId: "" }).agents.list(), MissingTenantError);
}));

test("data subjects: execute with a subject, list, export and erase", () => withGateway(async (gw, c) => {
  gw.replyFor("secret", "the answer");
  const agent = await c.agents.create({ name: "S", model: "cb:smart-chat" });
  const subject = "user/42 é"; // travels as one escaped path segment
  const first = await c.agents.execute(agent.id, { prompt: "my secret", subject });
  const streamed = await c.agents.stream(agent.id, { prompt: "streamed secret", subject }).finalResult();
  const chat = await c.llm().chatCompletion({ model: `agent:${agent.id}`, user: subject, messages: [{ role: "user", content: "chat secret" }] });
  const other = await c.agents.execute(agent.id, { prompt: "someone else's", subject: "user-7" });
  await c.agents.execute(agent.id, { prompt: "nobody's" });
  assert.deepEqual(gw.requestsTo("/execute", "POST")[0].json, { prompt: "my secret", subject });
  assert.equal(gw.requestsTo("/execute/stream")[0].json.subject, subject);
  assert.ok(!("subject" in gw.requestsTo("/execute", "POST").at(-1).json));

  const listed = await c.subjects.list(subject);
  assert.equal(gw.requests.at(-1).path, "/api/v1/subjects/user%2F42%20%C3%A9");
  const ids = listed.executions.map((e) => e.execution_id);
  assert.deepEqual(ids.slice(1), [streamed.execution_id, first.execution_id]); // newest first
  assert.equal(ids[0].replaceAll("-", ""), chat.id.replace("chatcmpl-", "")); // OpenAI's `user`
  assert.equal(listed.subject_ref.length, 32);
  assert.ok(!ids.includes(other.execution_id));
  const oldest = listed.executions.at(-1);
  assert.deepEqual(oldest.input, { prompt: "my secret" });
  assert.equal(oldest.response.content, "the answer");
  assert.equal(oldest.payload, undefined);

  const lines = await c.subjects.export(subject);
  assert.equal(gw.requests.at(-1).path, "/api/v1/subjects/user%2F42%20%C3%A9/export");
  assert.equal(gw.requests.at(-1).headers.accept, "application/x-ndjson");
  assert.deepEqual(lines.filter((l) => l.kind === "execution").map((l) => l.data.execution_id), ids);
  const events = lines.filter((l) => l.kind === "event");
  assert.deepEqual(new Set(events.map((e) => e.aggregate_id)), new Set(ids));
  assert.deepEqual([events[0].topic, events[0].version], ["execution_start", 1]);

  const erased = await c.subjects.erase(subject);
  assert.equal(gw.requests.at(-1).method, "DELETE");
  const hours = new Set(listed.executions.map((e) => Math.floor(e.started_at / 3600))); // a key per hour
  assert.deepEqual(erased, { subject_ref: listed.subject_ref, executions: 3, keys_destroyed: hours.size });
  assert.equal((await c.subjects.erase(subject)).keys_destroyed, 0); // nothing left to destroy
  const after = (await c.subjects.list(subject)).executions;
  assert.ok(after.every((e) => e.payload === "erased" && e.input.erased === true && e.response.content === "[erased]"));
  const record = await c.executions.get(first.execution_id);
  assert.deepEqual([record.payload, record.usage.total_tokens], ["erased", first.usage.total_tokens]);
  assert.ok((await c.subjects.export(subject)).filter((l) => l.kind === "event").every((l) => l.data.erased === true));
  assert.equal((await c.executions.get(other.execution_id)).payload, undefined); // another subject's

  const later = await c.agents.execute(agent.id, { prompt: "new secret", subject });
  assert.equal((await c.subjects.list(subject)).executions[0].execution_id, later.execution_id);
  assert.equal((await c.executions.get(later.execution_id)).response.content, "the answer"); // a new key
  const overGraphQL = await gw.client({ mode: "graphql" }).agents.execute(agent.id, { prompt: "p", subject });
  assert.equal(gw.requests.at(-1).json.variables.input.user, subject); // the legacy input's `user`
  assert.equal((await c.subjects.list(subject)).executions[0].execution_id, overGraphQL.execution_id);
  await assert.rejects(c.agents.execute(agent.id, { prompt: "x", subject: "" }), InvalidRequestError);
}));

test("retention is kept and checked", () => withGateway(async (gw, c) => {
  assert.deepEqual(await c.retention.get(), { retention: null });
  assert.deepEqual(await c.retention.set({ payload_days: 30 }), { retention: { payload_days: 30, metrics_days: null } });
  assert.deepEqual(gw.requests.at(-1).json, { payload_days: 30, metrics_days: null });
  assert.equal(gw.requests.at(-1).method, "PUT");
  await c.retention.set({ payload_days: 7, metrics_days: 365 });
  assert.deepEqual(await c.retention.get(), { retention: { payload_days: 7, metrics_days: 365 } });
  await assert.rejects(c.retention.set({ payload_days: 30, metrics_days: 10 }), InvalidRequestError); // metrics outlive payloads
  await assert.rejects(c.retention.set({ payload_days: 0 }), InvalidRequestError);
  assert.deepEqual(await c.retention.clear(), { retention: null });
  assert.equal(gw.requests.at(-1).method, "DELETE");
  assert.deepEqual(await c.retention.get(), { retention: null });
}));

test("subjects and retention retry and map errors like the other resources", () => withGateway(async (gw, c) => {
  const agent = await c.agents.create({ name: "R", model: "cb:smart-chat" });
  await c.agents.execute(agent.id, { prompt: "p", subject: "s-1" });
  gw.fail(503, "overloaded", { path: "/api/v1/subjects/", retryAfter: 0 });
  assert.equal((await c.subjects.erase("s-1")).executions, 1); // a DELETE is retried after a 503
  assert.deepEqual(gw.requestsTo("/api/v1/subjects/s-1").map((r) => r.method), ["DELETE", "DELETE"]);
  gw.fail(403, "permission_denied", { path: "/api/v1/retention" });
  await assert.rejects(c.retention.get(), PermissionDeniedError);
  gw.fail(503, "service_unavailable", { path: "/export" });
  await assert.rejects(gw.client({ maxRetries: 0 }).subjects.export("s-1"), ServiceUnavailableError);
  assert.deepEqual((await c.subjects.export("s-1")).map((l) => l.kind).slice(0, 1), ["execution"]); // the failure was used up
}));

