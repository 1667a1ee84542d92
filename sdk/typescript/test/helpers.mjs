// Shared by the tests: the server under test comes from the environment, as set by
// tests/integration/test_sdk_typescript.py (or by hand: CB_BASE_URL, CB_TENANT_ID, CB_API_KEY).
import { Client } from "../dist/index.js";

export const env = (name, fallback) => {
  const value = process.env[name] ?? fallback;
  if (value === undefined) throw new Error(`set ${name} (tests/integration/test_sdk_typescript.py does)`);
  return value;
};

/** A client of the test tenant; `options` override. */
export const client = (options = {}) => new Client({ retry: { baseMs: 50 }, ...options });

/** A unique text for this run, so prompts and names never collide. */
export const unique = (what) => `${what}-${Math.random().toString(36).slice(2, 10)}`;

/** A fetch that answers `status` (with `headers`) instead of calling the server when
 * `when(url, init)` holds; `calls` counts every request, `faked` the faked ones. */
export function faultyFetch(when, status = 503, headers = {}) {
  const wrapper = async (input, init) => {
    wrapper.calls.push(`${init?.method ?? "GET"} ${new URL(String(input)).pathname}`);
    if (when(String(input), init)) {
      wrapper.faked += 1;
      return new Response(JSON.stringify({ error: { type: "service_unavailable", message: "faked by the test" } }), {
        status, headers: { "content-type": "application/json", ...headers },
      });
    }
    return fetch(input, init);
  };
  wrapper.calls = [];
  wrapper.faked = 0;
  return wrapper;
}

/** A fetch whose first execute/stream answer passes `events` SSE events on, then either breaks
 * (`mode: "cut"`: the connection is closed, as a network drop does) or goes silent
 * (`mode: "stall"`: nothing more comes, no heartbeat either). Later requests pass unchanged. */
export function cuttingFetch(events, mode = "cut") {
  let armed = true;
  const wrapper = async (input, init) => {
    const response = await fetch(input, init);
    if (!armed || !String(input).includes("/execute/stream") || !response.body) return response;
    armed = false;
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    const encoder = new TextEncoder();
    let buffer = "";
    let passed = 0;
    const body = new ReadableStream({
      async pull(controller) {
        for (;;) {
          const split = buffer.indexOf("\n\n");
          if (split !== -1) {
            const block = buffer.slice(0, split + 2);
            buffer = buffer.slice(split + 2);
            controller.enqueue(encoder.encode(block));
            if (/^id: /m.test(block) && ++passed >= events) {
              wrapper.cut = true;
              if (mode === "cut") {
                await reader.cancel();
                controller.error(new TypeError("terminated (cut by the test)"));
              } else {
                await new Promise(() => {}); // silence: never another byte
              }
            }
            return;
          }
          const { value, done } = await reader.read();
          if (done) return controller.close();
          buffer += decoder.decode(value, { stream: true });
        }
      },
      async cancel() {
        await reader.cancel().catch(() => {});
      },
    });
    return new Response(body, { status: response.status, headers: response.headers });
  };
  wrapper.cut = false;
  return wrapper;
}

/** Poll `get` until `done(value)` or the time is up; the last value. */
export async function eventually(get, done, timeoutMs = 10000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await get();
    if (done(value) || Date.now() > deadline) return value;
    await new Promise((r) => setTimeout(r, 100));
  }
}
