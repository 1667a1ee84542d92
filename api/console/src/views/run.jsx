// Run an agent: the answer streams in as it is written, tool calls and results as they
// happen, usage and cost at the end; a dropped connection resumes by itself.
import { useRef, useState } from "preact/hooks";
import { useLoad } from "../hooks.js";
import { ms, tokens, usd } from "../format.js";
import { ErrorNote, Field, Loading, Status } from "../widgets.jsx";

export function Run({ api, agentId }) {
  const agents = useLoad(() => api.get("/api/v1/agents"), [api]);
  const [chosen, setChosen] = useState(agentId || "");
  const [prompt, setPrompt] = useState("");
  const [run, setRun] = useState(null);
  const abort = useRef(null);
  const list = agents.data?.agents || [];
  const selected = chosen || list[0]?.id || "";

  async function start(e) {
    e.preventDefault();
    const controller = new AbortController();
    abort.current = controller;
    let state = { status: "starting", text: "", steps: [], notes: [], result: null, error: null, executionId: null };
    const update = (change) => {
      state = { ...state, ...change };
      setRun(state);
    };
    update({});
    const on = (event, data) => {
      if (event === "execution_start") update({ status: "running", executionId: data.execution_id, model: data.model_resolved, provider: data.provider });
      else if (event === "content_chunk") update({ text: state.text + data.delta });
      else if (event === "tool_call") update({ steps: [...state.steps, { kind: "call", id: data.id, name: data.function.name, arguments: data.function.arguments }] });
      else if (event === "tool_result") update({ steps: [...state.steps, { kind: "result", id: data.call_id, name: data.name, result: data.error || data.result }] });
      else if (event === "usage_update") update({ usage: data });
      else if (event === "reconnecting") update({ status: "reconnecting", notes: [...state.notes, `Connection lost after event ${data.last_event_id}; reconnecting (attempt ${data.attempt})…`] });
      else if (event === "resumed") update({ status: "running", notes: [...state.notes, `Resumed after event ${data.last_event_id}.`] });
      else if (event === "execution_complete") update({ status: data.status || "completed", result: data });
      else if (event === "error") update({ status: "failed", error: data.error || data });
    };
    try {
      await api.stream(selected, { prompt }, on, { signal: controller.signal });
    } catch (err) {
      if (!controller.signal.aborted) update({ status: "failed", error: err });
    }
  }

  async function cancel() {
    if (run?.executionId) {
      try {
        await api.call("POST", `/api/v1/executions/${run.executionId}/cancel`);
      } catch {
        // it ended meanwhile: the stream says how
      }
    }
  }

  const running = run && ["starting", "running", "reconnecting"].includes(run.status);
  const usage = run?.result?.usage || run?.usage;
  return (
    <section aria-labelledby="run-title">
      <h2 id="run-title">Run an agent</h2>
      {agents.loading && !agents.data ? <Loading what="agents" /> : null}
      <ErrorNote error={agents.error} />
      <form class="card" onSubmit={start} aria-label="Run">
        <Field label="Agent">
          <select name="agent" value={selected} onChange={(e) => setChosen(e.currentTarget.value)}>
            {list.map((a) => <option key={a.id} value={a.id}>{a.name} ({a.model})</option>)}
          </select>
        </Field>
        <Field label="Prompt">
          <textarea name="prompt" rows={4} required value={prompt} onInput={(e) => setPrompt(e.currentTarget.value)} />
        </Field>
        <div class="bar">
          <button type="submit" disabled={running || !selected}>Run</button>
          <button type="button" class="secondary" disabled={!running || !run?.executionId} onClick={cancel}>Cancel</button>
        </div>
      </form>
      {run && (
        <article class="card" aria-label="Answer">
          <header class="bar">
            <Status value={run.status} />
            {run.model && <span class="muted">{run.model} via {run.provider}</span>}
            {run.executionId && <a href={`#/history/${run.executionId}`}>Open in history</a>}
          </header>
          <div class="answer" aria-live="polite" data-testid="answer">{run.text}</div>
          {run.steps.length > 0 && (
            <ol class="steps" aria-label="Tool calls">
              {run.steps.map((step, i) => (
                <li key={i} class={step.kind}>
                  {step.kind === "call" ? (
                    <>→ <code>{step.name}</code>(<code>{step.arguments}</code>)</>
                  ) : (
                    <>← <code>{step.name}</code>: <code>{JSON.stringify(step.result)}</code></>
                  )}
                </li>
              ))}
            </ol>
          )}
          {run.notes.map((note, i) => <p key={i} class="muted small" role="status">{note}</p>)}
          <ErrorNote error={run.error} />
          {usage && (
            <dl class="facts" aria-label="Usage">
              <dt>Tokens</dt><dd>{tokens(usage)}{usage.estimated ? " (estimated)" : ""}</dd>
              <dt>Cost</dt><dd data-testid="cost">{usd(usage.cost_usd)}</dd>
              {run.result?.metadata && <><dt>Duration</dt><dd>{ms(run.result.metadata.duration_ms)}</dd></>}
            </dl>
          )}
        </article>
      )}
    </section>
  );
}
