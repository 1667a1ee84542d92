// The gateway's HTTP API as the console uses it: the session's credentials on every call,
// errors as ApiError with the gateway's stable `type`, and streams that resume by
// themselves after a dropped connection.
import { readEvents } from "./sse.js";

export class ApiError extends Error {
  constructor(status, type, message, details) {
    super(message);
    this.status = status;
    this.type = type;
    this.details = details;
  }
}

const TERMINAL = new Set(["execution_complete", "error"]);

export class Api {
  /** `session`: {kind: "tenant", tenantId, apiKey} or {kind: "admin", token}. */
  constructor(session) {
    this.session = session;
  }

  headers(extra = {}) {
    const s = this.session;
    const auth = s.kind === "admin" ? s.token : s.apiKey;
    const headers = { Authorization: `Bearer ${auth}`, ...extra };
    if (s.kind === "tenant") headers["X-Tenant-ID"] = s.tenantId;
    return headers;
  }

  async call(method, path, { body, query } = {}) {
    const url = new URL(path, location.origin);
    for (const [k, v] of Object.entries(query || {})) {
      if (v !== undefined && v !== null && v !== "") url.searchParams.set(k, v);
    }
    const init = { method, headers: this.headers() };
    if (body !== undefined) {
      init.body = JSON.stringify(body);
      init.headers["Content-Type"] = "application/json";
    }
    const response = await fetch(url, init);
    if (!response.ok) throw await errorOf(response);
    return response.status === 204 ? null : response.json();
  }

  get(path, query) {
    return this.call("GET", path, { query });
  }

  /** Runs `agentId` streamed; `on(event, data, id)` for each event, across reconnects.
   * Resolves with the terminal event's data; `signal` aborts the local read only. */
  async stream(agentId, body, on, { signal, retries = 5 } = {}) {
    let executionId = null;
    let lastId = 0;
    let terminal = null;
    const seen = (frame) => {
      const data = JSON.parse(frame.data);
      if (frame.id) lastId = Number(frame.id);
      if (frame.event === "execution_start") executionId = data.execution_id;
      if (TERMINAL.has(frame.event)) terminal = { event: frame.event, data };
      on(frame.event, data, lastId);
    };
    const start = await fetch(`/api/v1/agents/${agentId}/execute/stream`, {
      method: "POST",
      headers: this.headers({ "Content-Type": "application/json", Accept: "text/event-stream" }),
      // the execution goes on if this page's connection drops, so it can be resumed
      body: JSON.stringify({ ...body, stream_options: { on_disconnect: "continue" } }),
      signal,
    });
    if (!start.ok) throw await errorOf(start);
    try {
      await readEvents(start, seen);
    } catch (error) {
      if (signal?.aborted) throw error;
    }
    for (let attempt = 1; terminal === null && executionId !== null; attempt++) {
      if (attempt > retries) throw new ApiError(0, "connection_lost", "the stream could not be resumed");
      on("reconnecting", { attempt, last_event_id: lastId }, lastId);
      await new Promise((r) => setTimeout(r, Math.min(4000, 250 * 2 ** (attempt - 1))));
      try {
        const again = await fetch(`/api/v1/executions/${executionId}/stream`, {
          headers: this.headers({ "Last-Event-ID": String(lastId), Accept: "text/event-stream" }),
          signal,
        });
        if (!again.ok) throw await errorOf(again);
        on("resumed", { last_event_id: lastId }, lastId);
        await readEvents(again, seen);
      } catch (error) {
        if (signal?.aborted || error instanceof ApiError) throw error;
      }
    }
    if (terminal === null) throw new ApiError(0, "connection_lost", "the stream ended before it started");
    return terminal;
  }
}

async function errorOf(response) {
  let error = {};
  try {
    error = (await response.json()).error || {};
  } catch {
    // not JSON: keep the status
  }
  return new ApiError(
    response.status,
    error.type || `http_${response.status}`,
    error.message || response.statusText,
    error.details,
  );
}
