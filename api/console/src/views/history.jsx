// History: executions with filters (agent, status, kind, time), and each one's full
// record: routing decision, attempts, parameters dropped, tool calls, its stream's events.
import { useState } from "preact/hooks";
import { readEvents } from "../sse.js";
import { useLoad } from "../hooks.js";
import { ms, short, tokens, usd, when } from "../format.js";
import { ErrorNote, Field, Loading, Status } from "../widgets.jsx";

const STATUSES = ["", "running", "completed", "failed", "cancelled"];
const KINDS = ["", "agent_execution", "chat_completion", "judge", "experiment_run", "collaboration_step", "imported"];
const unix = (local) => (local ? new Date(local).getTime() / 1000 : undefined);

export function History({ api, executionId }) {
  return executionId ? <Record api={api} id={executionId} /> : <Listing api={api} />;
}

function Listing({ api }) {
  const agents = useLoad(() => api.get("/api/v1/agents"), [api]);
  const [filters, setFilters] = useState({ agent_id: "", status: "", kind: "", since: "", before: "" });
  const [pages, setPages] = useState([undefined]); // cursors: `before` of each page shown
  const query = { agent_id: filters.agent_id, status: filters.status, kind: filters.kind, since: unix(filters.since), limit: 25 };
  const page = pages[pages.length - 1] ?? unix(filters.before);
  const list = useLoad(() => api.get("/api/v1/executions", { ...query, before: page }), [api, JSON.stringify(query), page]);
  const set = (name) => (e) => {
    setFilters({ ...filters, [name]: e.currentTarget.value });
    setPages([undefined]);
  };
  const names = Object.fromEntries((agents.data?.agents || []).map((a) => [a.id, a.name]));

  return (
    <section aria-labelledby="history-title">
      <h2 id="history-title">History</h2>
      <form class="filters" aria-label="Filters" onSubmit={(e) => e.preventDefault()}>
        <Field label="Agent">
          <select name="agent_id" value={filters.agent_id} onChange={set("agent_id")}>
            <option value="">any</option>
            {(agents.data?.agents || []).map((a) => <option key={a.id} value={a.id}>{a.name}</option>)}
          </select>
        </Field>
        <Field label="Status">
          <select name="status" value={filters.status} onChange={set("status")}>
            {STATUSES.map((s) => <option key={s} value={s}>{s || "any"}</option>)}
          </select>
        </Field>
        <Field label="Kind">
          <select name="kind" value={filters.kind} onChange={set("kind")}>
            {KINDS.map((k) => <option key={k} value={k}>{k || "any"}</option>)}
          </select>
        </Field>
        <Field label="Started after">
          <input name="since" type="datetime-local" value={filters.since} onInput={set("since")} />
        </Field>
        <Field label="Started before">
          <input name="before" type="datetime-local" value={filters.before} onInput={set("before")} />
        </Field>
        <button type="button" class="secondary" onClick={list.reload}>Refresh</button>
      </form>
      <ErrorNote error={list.error} />
      {list.loading && !list.data ? <Loading what="executions" /> : (
        <table aria-label="Executions">
          <thead>
            <tr><th>Started</th><th>Agent</th><th>Kind</th><th>Status</th><th>Model</th><th>Duration</th><th>Tokens</th><th>Cost</th></tr>
          </thead>
          <tbody>
            {(list.data?.executions || []).map((x) => (
              <tr key={x.execution_id}>
                <td><a href={`#/history/${x.execution_id}`}>{when(x.started_at)}</a></td>
                <td>{names[x.agent_id] || short(x.agent_id)}</td>
                <td>{x.kind}</td>
                <td><Status value={x.status} /></td>
                <td><code>{x.model_resolved || x.model_requested}</code></td>
                <td>{ms(x.duration_ms)}</td>
                <td>{tokens(x.usage)}</td>
                <td>{usd(x.usage?.cost_usd)}</td>
              </tr>
            ))}
            {list.data?.executions?.length === 0 && <tr><td colSpan={8} class="muted">No executions match.</td></tr>}
          </tbody>
        </table>
      )}
      <div class="bar">
        <button class="secondary" disabled={pages.length < 2} onClick={() => setPages(pages.slice(0, -1))}>Newer</button>
        <button class="secondary" disabled={!list.data?.next_before} onClick={() => setPages([...pages, list.data.next_before])}>Older</button>
      </div>
    </section>
  );
}

function Record({ api, id }) {
  const record = useLoad(() => api.get(`/api/v1/executions/${id}`), [api, id]);
  const x = record.data;
  if (record.error) return <section><a href="#/history">← History</a><ErrorNote error={record.error} /></section>;
  if (!x) return <Loading what="the execution" />;
  const meta = x.metadata || {};
  const routing = meta.routing || {};
  return (
    <section aria-labelledby="record-title">
      <a href="#/history">← History</a>
      <h2 id="record-title">Execution <code>{x.execution_id}</code></h2>
      <dl class="facts">
        <dt>Status</dt><dd><Status value={x.status} /></dd>
        <dt>Kind</dt><dd>{x.kind}</dd>
        <dt>Started</dt><dd>{when(x.started_at)}</dd>
        <dt>Duration</dt><dd>{ms(x.duration_ms)}</dd>
        <dt>Model</dt><dd><code>{x.model_requested}</code> → <code>{x.model_resolved || "—"}</code> ({x.provider || "—"})</dd>
        <dt>Tokens</dt><dd>{tokens(x.usage)}</dd>
        <dt>Cost</dt><dd>{usd(x.usage?.cost_usd)}</dd>
        <dt>Attempts</dt><dd>{meta.attempts ?? "—"}{meta.fallback_used ? " (fell back)" : ""}</dd>
        <dt>Parameters dropped</dt><dd>{(meta.dropped_parameters || []).join(", ") || "none"}</dd>
      </dl>
      <ErrorNote error={x.error} />
      {x.response?.content != null && (<><h3>Answer</h3><div class="answer">{x.response.content}</div></>)}
      <h3>Routing</h3>
      <p>
        <code>{routing.requested || x.model_requested}</code> by <em>{routing.strategy || "—"}</em> to{" "}
        <code>{routing.resolved || x.model_resolved || "—"}</code>
      </p>
      <table aria-label="Routing candidates">
        <thead><tr><th>Candidate</th><th>Left out because</th></tr></thead>
        <tbody>
          {(routing.candidates || []).map((c) => (
            <tr key={c.model}><td><code>{c.model}</code></td><td>{c.skipped || "—"}</td></tr>
          ))}
        </tbody>
      </table>
      <h3>Attempts</h3>
      <table aria-label="Attempts">
        <thead><tr><th>#</th><th>Model</th><th>Provider</th><th>Outcome</th><th>Permit wait</th><th>Latency</th><th>TTFT</th></tr></thead>
        <tbody>
          {(meta.attempt_log || []).map((a, i) => (
            <tr key={i}>
              <td>{i + 1}</td><td><code>{a.model}</code></td><td>{a.provider || "—"}</td><td>{a.error || "ok"}</td>
              <td>{ms(a.permit_ms)}</td><td>{ms(a.latency_ms)}</td><td>{ms(a.ttft_ms)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <ToolCalls record={x} />
      <Events api={api} record={x} />
      <details>
        <summary>The whole record (JSON)</summary>
        <pre>{JSON.stringify(x, null, 2)}</pre>
      </details>
    </section>
  );
}

function ToolCalls({ record }) {
  const calls = record.response?.tool_results || [];
  if (!calls.length) return null;
  return (
    <>
      <h3>Tool calls</h3>
      <ol class="steps" aria-label="Tool calls">
        {calls.map((c, i) => (
          <li key={i}>
            <code>{c.name}</code>(<code>{JSON.stringify(c.arguments)}</code>) →{" "}
            <code>{JSON.stringify(c.error || c.result)}</code>{c.duration_ms != null && <small class="muted"> {ms(c.duration_ms)}</small>}
          </li>
        ))}
      </ol>
    </>
  );
}

function Events({ api, record }) {
  const [events, setEvents] = useState(null);
  const [error, setError] = useState(null);
  async function load() {
    const seen = [];
    try {
      const response = await fetch(`/api/v1/executions/${record.execution_id}/stream`, {
        headers: api.headers({ "Last-Event-ID": "0", Accept: "text/event-stream" }),
      });
      if (!response.ok) {
        const body = await response.json();
        throw { status: response.status, ...(body.error || {}) };
      }
      await readEvents(response, (frame) => seen.push(frame));
      setEvents(seen);
    } catch (err) {
      setError(err);
    }
  }
  return (
    <>
      <h3>Events</h3>
      {events === null && !error && <button class="secondary" onClick={load}>Show the stream's events</button>}
      <ErrorNote error={error} />
      {events && (
        <ul class="events" aria-label="Events">
          {events.map((e, i) => <li key={i}><code>{e.id ?? "·"}</code> <strong>{e.event}</strong> <code class="small">{e.data.slice(0, 200)}</code></li>)}
        </ul>
      )}
    </>
  );
}
