// Streams against the real server: typed events, the final result, resume after a cut or a
// silence (Last-Event-ID, no loss, no duplicate), rejoining, and cancel.
import { test } from "node:test";
import assert from "node:assert/strict";
import { ConflictError, ExecutionCancelledError, NotFoundError, StreamError } from "../dist/index.js";
import { client, cuttingFetch, env, eventually, unique } from "./helpers.mjs";

// the emulator streams the answer to a prompt containing this tag as 40 chunks `w0 `…`w39 `,
// 50 ms apart (scripted by the pytest side)
const SLOW = env("CB_SLOW_TAG", "slowstream");
const SLOW_TEXT = Array.from({ length: 40 }, (_, i) => `w${i} `).join("");
// …and the answer to this one as `quiet ` and `answer`, 2.5 s apart
const QUIET = env("CB_QUIET_TAG", "quietstream");
const QUIET_TEXT = "quiet answer";
// …and the answer to this one as 40 chunks 100 ms apart; the pytest side then checks that the
// upstream call of the one stream that uses it was cut (the stream is cancelled by id)
const CANCEL = env("CB_CANCEL_TAG", "cancelstream");

/** Ids strictly consecutive from 1, and the text of the content chunks. */
function check(events) {
  assert.deepEqual(events.map((e) => e.event_id), events.map((_, i) => i + 1), "each id once, in order");
  return events.filter((e) => e.type === "content_chunk").map((e) => e.delta).join("");
}

test("stream: typed events with `type`, then the final result", async () => {
  const c = client();
  const agent = await c.agents.create({ name: unique("stream"), model: "cb:smart-chat" });
  const prompt = unique("tell me");
  const events = [];
  for await (const ev of c.agents.stream(agent.id, { prompt })) events.push(ev);
  assert.equal(events[0].type, "execution_start");
  assert.equal(events[0].agent_id, agent.id);
  assert.equal(check(events), `Echo: ${prompt}`);
  assert.ok(events.some((e) => e.type === "usage_update" && e.total_tokens > 0));
  const done = events.at(-1);
  assert.equal(done.type, "execution_complete");
  assert.equal(done.result.response.content, `Echo: ${prompt}`);

  const result = await c.agents.stream(agent.id, { prompt: "whole" }).finalResult();
  assert.equal(result.response.content, "Echo: whole");
  assert.equal((await c.executions.get(result.execution_id)).status, "completed");
  assert.equal(await c.agents.stream(agent.id, { prompt: "text" }).text(), "Echo: text");
});

test("stream: a connection cut mid-way resumes with Last-Event-ID, nothing lost or repeated", async () => {
  const cutter = cuttingFetch(5, "cut");
  const c = client({ fetch: cutter });
  const agent = await c.agents.create({ name: unique("cut"), model: "cb:smart-chat" });
  // by default a resumable stream asks the server to run on across a disconnect
  const stream = c.agents.stream(agent.id, { prompt: `${SLOW} ${unique("cut")}` });
  const events = [];
  for await (const ev of stream) events.push(ev);
  assert.ok(cutter.cut, "the test cut the connection");
  assert.ok(stream.resumes >= 1, "the stream was resumed");
  assert.equal(check(events), SLOW_TEXT);
  assert.equal(events.at(-1).type, "execution_complete");
  assert.equal(events.at(-1).result.response.content, SLOW_TEXT);
  assert.equal(stream.lastEventId, events.length);
});

test("stream: a silent connection times out (no heartbeat) and is resumed", async () => {
  const staller = cuttingFetch(3, "stall");
  const c = client({ fetch: staller });
  const agent = await c.agents.create({ name: unique("stall"), model: "cb:smart-chat" });
  const stream = c.agents.stream(
    agent.id,
    { prompt: `${SLOW} ${unique("stall")}`, stream_options: { heartbeat_s: 0.5 } },
    { heartbeatTimeoutMs: 1500 },
  );
  const started = Date.now();
  const result = await stream.finalResult();
  assert.ok(staller.cut);
  assert.ok(stream.resumes >= 1);
  assert.ok(Date.now() - started >= 1400, "waited for the heartbeat time-out");
  assert.equal(result.response.content, SLOW_TEXT);
});

test("stream: heartbeats keep a quiet stream alive", async () => {
  const c = client();
  const agent = await c.agents.create({ name: unique("beat"), model: "cb:smart-chat" });
  // two chunks 2.5 s apart; heartbeats every 0.5 s keep a 2 s time-out from firing
  const stream = c.agents.stream(agent.id, { prompt: `${QUIET} ${unique("beat")}`, stream_options: { heartbeat_s: 0.5 } }, { heartbeatTimeoutMs: 2000 });
  assert.equal(await stream.text(), QUIET_TEXT);
  assert.equal(stream.resumes, 0);
});

test("executions.resume rejoins a stream from any id; unknown ids are not found", async () => {
  const c = client();
  const agent = await c.agents.create({ name: unique("rejoin"), model: "cb:smart-chat" });
  const first = [];
  const stream = c.agents.stream(agent.id, { prompt: `${SLOW} ${unique("rejoin")}` });
  for await (const ev of stream) {
    first.push(ev);
    if (first.length === 6) break; // leaving the loop closes the stream
  }
  assert.ok(stream.closed);
  const rest = [];
  for await (const ev of c.executions.resume(stream.executionId, { lastEventId: 6 })) rest.push(ev);
  assert.equal(check([...first, ...rest]), SLOW_TEXT);
  const replay = await c.executions.resume(stream.executionId).finalResult();
  assert.equal(replay.response.content, SLOW_TEXT);
  await assert.rejects(
    c.executions.resume("00000000-0000-4000-8000-000000000000").finalResult(),
    (e) => e instanceof NotFoundError || (e instanceof StreamError && e.cause instanceof NotFoundError),
  );
});

test("stream: abort closes the stream; with resume: false it cancels the execution upstream", async () => {
  const c = client();
  const agent = await c.agents.create({ name: unique("abort"), model: "cb:smart-chat" });
  const abort = new AbortController();
  const stream = c.agents.stream(agent.id, { prompt: `${SLOW} ${unique("abort")}` }, { signal: abort.signal, resume: false });
  const events = [];
  for await (const ev of stream) {
    events.push(ev);
    if (ev.type === "content_chunk") abort.abort();
  }
  assert.ok(events.length < 10, "the loop ended at the abort");
  assert.ok(stream.closed);
  const execution = await eventually(() => c.executions.get(stream.executionId), (e) => e.status !== "running");
  assert.equal(execution.status, "cancelled");
  // its replay ends with the typed error
  await assert.rejects(c.executions.resume(stream.executionId).finalResult(), ExecutionCancelledError);

  // a resumable stream (the default) closed the same way runs on to its end upstream
  const closing = c.agents.stream(agent.id, { prompt: `${SLOW} ${unique("runs-on")}` });
  for await (const ev of closing) if (ev.type === "content_chunk") closing.close();
  assert.ok(closing.closed);
  const finished = await eventually(() => c.executions.get(closing.executionId), (e) => e.status !== "running");
  assert.equal(finished.status, "completed");
  assert.equal(finished.response.content, SLOW_TEXT);

  // resume: false does not resume a dropped stream
  const cutter = cuttingFetch(3, "cut");
  const once = client({ fetch: cutter }).agents.stream(agent.id, { prompt: `${SLOW} ${unique("once")}` }, { resume: false });
  await assert.rejects(once.finalResult(), StreamError);
  assert.equal(once.resumes, 0);
});

test("stream.cancel() cancels a resumable stream upstream; executions.cancel of an ended one is a conflict", async () => {
  const c = client();
  const agent = await c.agents.create({ name: unique("cancel"), model: "cb:smart-chat" });
  // never iterated: nothing runs, nothing to cancel
  const idle = c.agents.stream(agent.id, { prompt: "never sent" });
  assert.equal(await idle.cancel(), null);
  assert.ok(idle.closed);

  // a resumable stream (on_disconnect: continue, so closing alone would not cancel it)
  const stream = c.agents.stream(agent.id, { prompt: `${CANCEL} ${unique("cancel")}` });
  const events = [];
  let record = null;
  for await (const ev of stream) {
    events.push(ev);
    if (ev.type === "content_chunk" && record === null) record = await stream.cancel();
  }
  assert.ok(stream.closed, "the iteration ended");
  assert.equal(record.execution_id, stream.executionId);
  assert.equal(record.status, "cancelled");
  assert.ok(events.filter((e) => e.type === "content_chunk").length < 10, "the loop ended at the cancel");
  const last = events.at(-1);
  assert.ok(last.type === "content_chunk" || (last.type === "error" && last.error_type === "execution_cancelled"), JSON.stringify(last));
  assert.equal((await c.executions.get(stream.executionId)).status, "cancelled");
  // idempotent, on the client as on the stream
  assert.equal((await c.executions.cancel(stream.executionId)).status, "cancelled");
  assert.equal((await stream.cancel()).status, "cancelled");
  await assert.rejects(c.executions.resume(stream.executionId).finalResult(), ExecutionCancelledError);

  // an execution that ended otherwise: 409 conflict, naming its status
  const done = await c.agents.execute(agent.id, { prompt: "done" });
  await assert.rejects(c.executions.cancel(done.execution_id), (e) => e instanceof ConflictError && e.status === 409 && /completed/.test(e.message));
  const finished = c.agents.stream(agent.id, { prompt: "finished" });
  await finished.finalResult();
  await assert.rejects(finished.cancel(), ConflictError);
  assert.ok(finished.closed);
  await assert.rejects(c.executions.cancel("00000000-0000-4000-8000-000000000000"), NotFoundError);
});

test("a stream whose execution ran again after a crash: `text()` is the answering attempt's", async () => {
  // the pytest side streamed it and killed the tenant's actor mid-stream (the gateway carried
  // the stream on into the second attempt); its recorded stream holds both attempts
  const id = env("CB_RESTARTED_EXECUTION");
  const c = client();
  const events = [];
  for await (const ev of c.executions.resume(id)) events.push(ev);
  const restarted = events.filter((e) => e.type === "attempt_restarted");
  assert.equal(restarted.length, 1);
  assert.equal(restarted[0].attempt, 2);
  assert.equal(restarted[0].reason.type, "execution_interrupted");
  // the new attempt's ids start at 1000001, above every id of the first attempt's that was
  // recorded (the crash may come before its first checkpoint: then it has none in the record)
  const at = events.indexOf(restarted[0]);
  assert.equal(restarted[0].event_id, 1000001);
  assert.ok(events.slice(0, at).every((e) => e.event_id < 1000001), "the new attempt's ids are above the first's");
  assert.equal(await c.executions.resume(id).text(), env("CB_RESTARTED_TEXT"));
  assert.equal(events.at(-1).result.response.content, env("CB_RESTARTED_TEXT"));
});
