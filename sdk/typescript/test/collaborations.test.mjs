// Collaborations against the real server: save, run (saved and inline), runs, cancel.
import { test } from "node:test";
import assert from "node:assert/strict";
import { ConflictError, InvalidRequestError, NotFoundError } from "../dist/index.js";
import { client, unique } from "./helpers.mjs";

test("collaborations: a saved two-step run passes the first output on; runs listed", async () => {
  const c = client();
  const agent = await c.agents.create({ name: unique("collab"), model: "gpt-4o-mini" });
  const first = unique("first");
  const steps = [
    { id: "first", agent_id: agent.id, input: first },
    { id: "second", model: "gpt-4o-mini", depends_on: ["first"], input: "second {{steps.first.output}}" },
  ];
  const saved = await c.collaborations.create({ name: "ts", steps });
  assert.equal(saved.version, 1);
  assert.equal(saved.output, "second");
  const run = await c.collaborations.run({ id: saved.id });
  assert.equal(run.status, "completed");
  assert.equal(run.steps.length, 2);
  assert.ok(run.steps.every((s) => s.status === "completed" && s.execution_id));
  assert.equal((await c.collaborations.getRun(run.run_id)).output, run.output);
  assert.ok((await c.collaborations.listRuns({ status: "completed" })).some((r) => r.run_id === run.run_id));
  await assert.rejects(c.collaborations.cancelRun(run.run_id), ConflictError);
  assert.equal((await c.collaborations.update(saved.id, { description: "v2" })).version, 2);
  const inline = await c.collaborations.run({ definition: { name: "inline", steps } });
  assert.equal(inline.collaboration_id, null);
  assert.equal(inline.status, "completed");
  await assert.rejects(
    c.collaborations.create({ name: "bad", steps: [{ ...steps[1], depends_on: ["nope"] }] }),
    InvalidRequestError,
  );
  await c.collaborations.delete(saved.id);
  await assert.rejects(c.collaborations.get(saved.id), NotFoundError);
});
