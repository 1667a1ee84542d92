// Checks that the official `openai` npm SDK works against Circuit Breaker's
// `POST /v1/chat/completions`: a whole completion, a stream with usage, typed errors and a
// client-side tool round trip. Run by tests/integration/test_openai_node_sdk.py.
//
// Env: CB_BASE_URL (e.g. http://127.0.0.1:8000/v1), CB_API_KEY, CB_TAG (put into every user
// message so the provider emulator can match its scripted replies), CB_EXPECT_WHOLE and
// CB_EXPECT_STREAM (the scripted contents). Prints one JSON line on success; exits 1 with
// "FAIL: <check>: <why>" on stderr on the first failed check.

import OpenAI from "openai";
import { VERSION } from "openai/version";

const MODEL = "cb:smart-chat";

class CheckFailed extends Error {}

function env(name) {
  const value = process.env[name];
  if (!value) throw new CheckFailed(`env ${name} is not set`);
  return value;
}

function expect(condition, message, got) {
  if (!condition) {
    const shown = got === undefined ? "" : `; got ${JSON.stringify(got)}`;
    throw new CheckFailed(message + shown);
  }
}

/** Runs `call`, which must reject with an instance of `errorClass` and `status`. */
async function expectError(call, errorClass, status, what) {
  try {
    await call();
  } catch (err) {
    expect(
      err instanceof errorClass,
      `${what}: expected ${errorClass.name}, got ${err?.constructor?.name}: ${err?.message}`,
    );
    expect(err.status === status, `${what}: expected status ${status}`, err.status);
    return { status: err.status, type: err.type ?? null, code: err.code ?? null };
  }
  throw new CheckFailed(`${what}: expected ${errorClass.name}, but the call succeeded`);
}

async function checkWhole(client, tag, expected) {
  const { data, response } = await client.chat.completions
    .create({ model: MODEL, messages: [{ role: "user", content: `whole ${tag}` }] })
    .withResponse();
  const content = data.choices?.[0]?.message?.content;
  expect(content === expected, `content should be ${JSON.stringify(expected)}`, content);
  const usage = data.usage ?? {};
  for (const field of ["prompt_tokens", "completion_tokens"]) {
    expect(
      typeof usage[field] === "number" && usage[field] > 0,
      `usage.${field} should be a number > 0`,
      usage,
    );
  }
  const executionId = response.headers.get("x-cb-execution-id");
  expect(Boolean(executionId), "the x-cb-execution-id header is missing or empty");
  return { execution_id: executionId, usage };
}

async function checkStream(client, tag, expected) {
  const stream = await client.chat.completions.create({
    model: MODEL,
    stream: true,
    stream_options: { include_usage: true },
    messages: [{ role: "user", content: `stream ${tag}` }],
  });
  const pieces = [];
  let last = null;
  let chunks = 0;
  let stopped = false;
  for await (const chunk of stream) {
    chunks += 1;
    last = chunk;
    const choice = chunk.choices?.[0];
    if (choice?.delta?.content) pieces.push(choice.delta.content);
    if (choice?.finish_reason === "stop") stopped = true;
  }
  const content = pieces.join("");
  expect(content === expected, `content should be ${JSON.stringify(expected)}`, content);
  expect(stopped, 'no chunk had finish_reason "stop"');
  expect(last !== null, "no chunks at all");
  expect(
    Array.isArray(last.choices) && last.choices.length === 0,
    "the last chunk should have empty choices",
    last,
  );
  expect(
    typeof last.usage?.total_tokens === "number" && last.usage.total_tokens > 0,
    "the last chunk should carry usage.total_tokens > 0",
    last,
  );
  return { chunks, usage: last.usage };
}

async function checkErrors(client, baseURL, tag) {
  const badRequest = await expectError(
    () =>
      client.chat.completions.create({
        model: MODEL,
        n: 2,
        messages: [{ role: "user", content: `n2 ${tag}` }],
      }),
    OpenAI.BadRequestError,
    400,
    "n=2",
  );
  const wrongKey = new OpenAI({ baseURL, apiKey: "cbk_wrong", maxRetries: 0 });
  const unauthenticated = await expectError(
    () =>
      wrongKey.chat.completions.create({
        model: MODEL,
        messages: [{ role: "user", content: `auth ${tag}` }],
      }),
    OpenAI.AuthenticationError,
    401,
    "wrong key",
  );
  return { bad_request: badRequest, authentication: unauthenticated };
}

async function checkTools(client, tag) {
  const tools = [
    {
      type: "function",
      function: {
        name: "get_weather",
        parameters: { type: "object", properties: { city: { type: "string" } } },
      },
    },
  ];
  const messages = [{ role: "user", content: `tools ${tag}` }];
  const first = await client.chat.completions.create({ model: MODEL, messages, tools });
  const choice = first.choices?.[0];
  expect(choice?.finish_reason === "tool_calls", 'finish_reason should be "tool_calls"', choice);
  const call = choice.message?.tool_calls?.find((c) => c.function?.name === "get_weather");
  expect(call, "no get_weather tool call", choice.message);
  let args;
  try {
    args = JSON.parse(call.function.arguments);
  } catch {
    throw new CheckFailed(`arguments are not JSON: ${JSON.stringify(call.function.arguments)}`);
  }
  expect(
    JSON.stringify(args) === JSON.stringify({ city: "Paris" }),
    'arguments should be {"city":"Paris"}',
    args,
  );
  expect(Boolean(call.id), "the tool call has no id", call);

  const result = `sunny-${tag}`;
  const second = await client.chat.completions.create({
    model: MODEL,
    tools,
    messages: [
      ...messages,
      choice.message, // the assistant's tool call, as returned
      { role: "tool", tool_call_id: call.id, content: result },
    ],
  });
  const answer = second.choices?.[0]?.message?.content ?? "";
  expect(answer.includes(result), `the answer should contain ${JSON.stringify(result)}`, answer);
  return { tool_call_id: call.id, answer };
}

function fail(step, err) {
  const why =
    err instanceof CheckFailed ? err.message : `${err?.constructor?.name}: ${err?.message}`;
  const body =
    err instanceof OpenAI.APIError && err.status
      ? ` (status ${err.status}, body ${JSON.stringify(err.error)})`
      : "";
  console.error(`FAIL: ${step}: ${why}${body}`);
  process.exit(1);
}

async function main() {
  let baseURL, tag, apiKey, expectWhole, expectStream;
  try {
    [baseURL, tag, apiKey, expectWhole, expectStream] = [
      "CB_BASE_URL", "CB_TAG", "CB_API_KEY", "CB_EXPECT_WHOLE", "CB_EXPECT_STREAM",
    ].map(env);
  } catch (err) {
    fail("setup", err);
  }
  const client = new OpenAI({ baseURL, apiKey, maxRetries: 0, timeout: 60_000 });
  const results = { sdk: "openai", sdk_version: VERSION };
  const steps = [
    ["whole", () => checkWhole(client, tag, expectWhole)],
    ["stream", () => checkStream(client, tag, expectStream)],
    ["errors", () => checkErrors(client, baseURL, tag)],
    ["tools", () => checkTools(client, tag)],
  ];
  for (const [name, step] of steps) {
    try {
      results[name] = await step();
    } catch (err) {
      fail(name, err);
    }
  }
  results.execution_id = results.whole.execution_id;
  console.log(JSON.stringify(results));
}

await main();
