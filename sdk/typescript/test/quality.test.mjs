// Feedback, judges and replay experiments against the real server.
import { test } from "node:test";
import assert from "node:assert/strict";
import { ConflictError, InvalidRequestError } from "../dist/index.js";
import { client, unique } from "./helpers.mjs";

test("feedback and judges: a score recorded, a judge's failure told, the default judge", async () => {
  const c = client();
  const agent = await c.agents.create({ name: unique("quality"), model: "gpt-4o-mini" });
  const done = await c.agents.execute(agent.id, { prompt: unique("rate me") });
  const given = await c.executions.feedback(done.execution_id, { score: true, label: "good", comment: "nice" });
  assert.equal(given.score, 1);
  assert.equal(given.source, "user");
  await assert.rejects(c.executions.feedback(done.execution_id, { score: 2 }), InvalidRequestError);
  // the emulator echoes: no JSON verdict, so the judge asks twice and records a failure
  const verdict = await c.executions.judge(done.execution_id, { model: "gpt-4o-mini", rubric: "format" });
  assert.equal(verdict.error.type, "judge_reply_invalid");
  assert.equal(verdict.judge.execution_ids.length, 2);
  const record = await c.executions.get(done.execution_id);
  assert.deepEqual(record.feedback.map((f) => f.source), ["user", "judge"]);
  assert.deepEqual(record.quality, { mean_score: 1, scored: 1 });
  const set = await c.judge.set({ model: "gpt-4o-mini", rubric: "relevance", sample_rate: 0 });
  assert.equal(set.judge.rubric, "relevance");
  assert.deepEqual(await c.judge.clear(), { judge: null });
});

test("experiments: replay an agent's executions on another model, then its report", async () => {
  const c = client();
  const agent = await c.agents.create({ name: unique("replayed"), model: "gpt-4o-mini" });
  await c.agents.execute(agent.id, { prompt: unique("replay me") });
  const started = await c.experiments.create({
    name: "ts", source: { agent_id: agent.id }, variants: [{ name: "b", model: "speedy-b" }],
  });
  const report = await c.experiments.wait(started.id, { pollMs: 200, timeoutMs: 60_000 });
  assert.equal(report.status, "completed");
  assert.equal(report.variants[0].runs, 1);
  assert.equal(report.sources[0].variants.b.status, "completed");
  assert.ok((await c.experiments.list()).some((e) => e.id === started.id));
  await assert.rejects(c.experiments.cancel(started.id), ConflictError);
});
