// Retries (Retry-After honoured, never on other 4xx) and failover REST → GraphQL → REST.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Client, RateLimitError, ServiceUnavailableError, APIConnectionError, InvalidRequestError } from "../dist/index.js";
import { client, env, faultyFetch, unique } from "./helpers.mjs";

test("retries: a real 429 of the tenant's rate limit is retried after its Retry-After", async () => {
  // the pytest side set this tenant to 60 requests a minute with a burst of 1
  const limited = { baseUrl: env("CB_BASE_URL"), tenantId: env("CB_LIMITED_TENANT_ID"), apiKey: env("CB_LIMITED_API_KEY") };
  const admin = new Client({ ...limited });
  const agent = await admin.agents.create({ name: unique("limited"), model: "cb:smart-chat" });
  const once = new Client({ ...limited, maxRetries: 0 });
  let refusal;
  for (let i = 0; i < 5 && !refusal; i++) {
    await once.agents.execute(agent.id, { prompt: "burst" }).catch((e) => (refusal = e));
  }
  assert.ok(refusal instanceof RateLimitError, `a RateLimitError, got ${refusal}`);
  assert.equal(refusal.status, 429);
  assert.ok(refusal.retryAfter > 0, "with retryAfter");
  assert.equal(refusal.details.limit, "requests_per_minute");

  const attempts = [];
  const patient = new Client({
    ...limited,
    maxRetries: 4,
    fetch: async (input, init) => {
      const reply = await fetch(input, init);
      attempts.push({ at: Date.now(), status: reply.status, retryAfter: Number(reply.headers.get("retry-after") ?? 0) });
      return reply;
    },
  });
  await once.agents.execute(agent.id, { prompt: "spend" }).catch(() => {});
  const result = await patient.agents.execute(agent.id, { prompt: "patient" });
  assert.equal(result.status, "completed");
  assert.equal(attempts.at(-1).status, 200);
  assert.equal(attempts[0].status, 429, "the first try was refused");
  for (let i = 1; i < attempts.length; i++) {
    if (attempts[i - 1].status !== 429) continue;
    const waited = attempts[i].at - attempts[i - 1].at;
    assert.ok(waited >= attempts[i - 1].retryAfter * 1000 - 50, `waited ${waited} ms of a Retry-After of ${attempts[i - 1].retryAfter} s`);
  }
});

test("retries: 503 honours Retry-After; 400 is never retried; network errors are", async () => {
  let first = true;
  const wrapper = faultyFetch((url) => url.endsWith("/api/v1/agents") && first && !(first = false), 503, { "Retry-After": "1" });
  const c = client({ fetch: wrapper, mode: "rest" });
  const started = Date.now();
  assert.ok(Array.isArray(await c.agents.list()));
  assert.ok(Date.now() - started >= 1000, "waited the Retry-After second");
  assert.equal(wrapper.calls.length, 2);

  const always = faultyFetch((url) => url.endsWith("/api/v1/agents"), 503);
  const gives = client({ fetch: always, mode: "rest", maxRetries: 2 });
  await assert.rejects(gives.agents.list(), ServiceUnavailableError);
  assert.equal(always.calls.length, 3, "the first try and 2 retries");

  const counted = faultyFetch(() => false);
  const bad = client({ fetch: counted });
  const agent = await bad.agents.create({ name: unique("bad"), model: "cb:smart-chat" });
  await assert.rejects(bad.agents.execute(agent.id, { prompt: "" }), InvalidRequestError);
  assert.equal(counted.calls.filter((c) => c.includes("/execute")).length, 1, "a 400 is not retried");

  let broken = 1;
  const flaky = client({
    fetch: async (input, init) => {
      if (broken-- > 0) throw new TypeError("fetch failed", { cause: { code: "ECONNRESET" } });
      return fetch(input, init);
    },
  });
  assert.ok(Array.isArray(await flaky.agents.list()), "a GET is retried after a connection error");
  const down = client({ baseUrl: "http://127.0.0.1:9", maxRetries: 1 });
  await assert.rejects(down.agents.list(), APIConnectionError);
});

test("failover: REST answering 503 fails over to GraphQL, and back when REST recovers", async () => {
  let restDown = true;
  const wrapper = faultyFetch((url) => restDown && new URL(url).pathname.includes("/api/"));
  const changes = [];
  const c = client({ fetch: wrapper, maxRetries: 0, failoverCooldownMs: 0, onFailover: (mode) => changes.push(mode) });
  const seed = client();
  const agent = await seed.agents.create({ name: unique("failover"), model: "cb:smart-chat", system_prompt: "sys", parameters: { temperature: 0.3 } });
  const run = await seed.agents.execute(agent.id, { prompt: "for history" });

  const got = await c.agents.get(agent.id);
  assert.equal(c.mode, "graphql");
  assert.equal(c.pinnedMode, "auto");
  assert.deepEqual(changes, ["graphql"]);
  assert.equal(c.failovers[0][0], "graphql");
  assert.match(c.failovers[0][1], /faked by the test/);
  assert.equal(got.id, agent.id);
  assert.equal(got.name, agent.name);
  assert.equal(got.model, "cb:smart-chat");
  assert.equal(got.system_prompt, "sys");
  assert.equal(got.parameters.temperature, 0.3);
  assert.ok((await c.agents.list()).some((a) => a.id === agent.id));
  const updated = await c.agents.update(agent.id, { description: "over graphql", parameters: { temperature: 0.6 } });
  assert.equal(updated.description, "over graphql");
  assert.equal(updated.parameters.temperature, 0.6);
  const execution = await c.executions.get(run.execution_id);
  assert.equal(execution.status, "completed");
  assert.equal(execution.response.content, "Echo: for history");
  // create and execute: the faked 503 recorded nothing, so they may go over GraphQL
  const made = await c.agents.create({ name: unique("made-over-gql"), model: "gpt-4o-mini", system_prompt: "made" });
  assert.equal((await seed.agents.get(made.id)).system_prompt, "made");
  const result = await c.agents.execute(agent.id, { prompt: "over graphql", parameters: { max_tokens: 50 } });
  assert.equal(result.surface, "graphql");
  assert.equal(result.response.content, "Echo: over graphql");
  assert.equal((await seed.executions.get(result.execution_id)).kind, "chat_completion");
  // tags have no GraphQL form: such a create stays on REST, and REST's 503 is the answer
  await assert.rejects(c.agents.create({ name: "tagged", model: "cb:smart-chat", tags: ["x"] }), ServiceUnavailableError);
  assert.ok(wrapper.calls.some((call) => call.endsWith("/graphql")));
  await c.agents.delete(made.id);

  restDown = false;
  assert.equal((await c.agents.get(agent.id)).description, "over graphql");
  assert.equal(c.mode, "rest");
  assert.deepEqual(changes, ["graphql", "rest"]);
  assert.equal((await c.agents.execute(agent.id, { prompt: "rest again" })).surface, undefined);

  // GraphQL down while pinned to it: its failure is the answer; in auto, REST answers
  const gqlDown = faultyFetch((url) => url.endsWith("/graphql"));
  const g = client({ fetch: gqlDown, maxRetries: 0, mode: "graphql" });
  assert.equal(g.mode, "graphql");
  await assert.rejects(g.agents.get(agent.id), ServiceUnavailableError, "pinned to graphql: no failover");
  g.pin("auto");
  assert.equal(g.pinnedMode, "auto");
  assert.equal((await g.agents.get(agent.id)).id, agent.id);
  assert.equal(g.mode, "rest");

  // pinned to REST: the 503 is the answer
  restDown = true;
  const pinned = client({ fetch: wrapper, maxRetries: 0, mode: "rest" });
  await assert.rejects(pinned.agents.get(agent.id), ServiceUnavailableError);
  assert.equal(pinned.mode, "rest");
  // a 404 is an answer, not an outage: no failover
  restDown = false;
  const auto = client({ fetch: wrapper, maxRetries: 0 });
  await assert.rejects(auto.agents.get("00000000-0000-4000-8000-000000000000"), (e) => e.status === 404);
  assert.equal(auto.mode, "rest");
  assert.deepEqual(auto.failovers, []);
  await c.agents.delete(agent.id);
});
