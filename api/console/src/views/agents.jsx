// Agents: list, create, edit (models from /api/v1/models, tools from /api/v1/tools),
// delete, and install the reference agents.
import { useState } from "preact/hooks";
import { useLoad } from "../hooks.js";
import { ErrorNote, Field, Loading } from "../widgets.jsx";

export function Agents({ api }) {
  const agents = useLoad(() => api.get("/api/v1/agents"), [api]);
  const [editing, setEditing] = useState(null); // null, "new", or an agent
  const [error, setError] = useState(null);
  const [note, setNote] = useState(null);

  async function act(work) {
    setError(null);
    setNote(null);
    try {
      setNote(await work());
      agents.reload();
    } catch (err) {
      setError(err);
    }
  }
  const remove = (agent) =>
    confirm(`Delete agent ${agent.name}?`) &&
    act(async () => {
      await api.call("DELETE", `/api/v1/agents/${agent.id}`);
      return `Deleted ${agent.name}.`;
    });
  const installReference = () =>
    act(async () => {
      const done = await api.call("POST", "/api/v1/agents/reference");
      return `Reference agents: ${done.created} created, ${done.agents.length - done.created} already there.`;
    });

  return (
    <section aria-labelledby="agents-title">
      <header class="bar">
        <h2 id="agents-title">Agents</h2>
        <button onClick={() => setEditing("new")}>New agent</button>
        <button class="secondary" onClick={installReference}>Install reference agents</button>
      </header>
      <ErrorNote error={error || agents.error} />
      {note && <p role="status" class="note">{note}</p>}
      {editing && (
        <AgentForm
          api={api}
          agent={editing === "new" ? null : editing}
          onDone={(message) => {
            setEditing(null);
            if (message) setNote(message);
            agents.reload();
          }}
        />
      )}
      {agents.loading && !agents.data ? (
        <Loading what="agents" />
      ) : (
        <table>
          <thead>
            <tr><th>Name</th><th>Model</th><th>Tools</th><th>Version</th><th><span class="sr-only">Actions</span></th></tr>
          </thead>
          <tbody>
            {(agents.data?.agents || []).map((agent) => (
              <tr key={agent.id}>
                <td><strong>{agent.name}</strong><div class="muted small">{agent.description}</div></td>
                <td><code>{agent.model}</code></td>
                <td>{(agent.tools || []).join(", ") || "—"}</td>
                <td>{agent.version}</td>
                <td class="actions">
                  <a href={`#/run/${agent.id}`}>Run</a>
                  <button class="link" onClick={() => setEditing(agent)}>Edit</button>
                  <button class="link danger" onClick={() => remove(agent)} aria-label={`Delete ${agent.name}`}>Delete</button>
                </td>
              </tr>
            ))}
            {agents.data?.agents?.length === 0 && (
              <tr><td colSpan={5} class="muted">No agents yet: create one, or install the reference agents.</td></tr>
            )}
          </tbody>
        </table>
      )}
    </section>
  );
}

function AgentForm({ api, agent, onDone }) {
  const models = useLoad(() => api.get("/api/v1/models"), [api]);
  const tools = useLoad(() => api.get("/api/v1/tools"), [api]);
  const [form, setForm] = useState({
    name: agent?.name || "",
    description: agent?.description || "",
    model: agent?.model || "cb:smart-chat",
    system_prompt: agent?.system_prompt || "",
    temperature: agent?.parameters?.temperature ?? "",
    max_tokens: agent?.parameters?.max_tokens ?? "",
    tools: agent?.tools || [],
  });
  const [error, setError] = useState(null);
  const set = (name) => (e) => setForm({ ...form, [name]: e.currentTarget.value });
  const toggleTool = (name) =>
    setForm({
      ...form,
      tools: form.tools.includes(name) ? form.tools.filter((t) => t !== name) : [...form.tools, name],
    });

  async function submit(e) {
    e.preventDefault();
    const parameters = {};
    if (form.temperature !== "") parameters.temperature = Number(form.temperature);
    if (form.max_tokens !== "") parameters.max_tokens = Number(form.max_tokens);
    const body = {
      name: form.name,
      description: form.description,
      model: form.model,
      system_prompt: form.system_prompt,
      parameters,
      tools: form.tools,
    };
    try {
      if (agent) await api.call("PATCH", `/api/v1/agents/${agent.id}`, { body });
      else await api.call("POST", "/api/v1/agents", { body });
      onDone(agent ? `Saved ${form.name}.` : `Created ${form.name}.`);
    } catch (err) {
      setError(err);
    }
  }

  const modelList = models.data?.models || [];
  return (
    <form class="card" onSubmit={submit} aria-label={agent ? `Edit ${agent.name}` : "New agent"}>
      <h3>{agent ? `Edit ${agent.name}` : "New agent"}</h3>
      <div class="grid">
        <Field label="Name">
          <input name="name" required maxLength={200} value={form.name} onInput={set("name")} />
        </Field>
        <Field label="Model">
          <select name="model" value={form.model} onChange={set("model")}>
            {!modelList.some((m) => m.id === form.model) && <option value={form.model}>{form.model}</option>}
            <optgroup label="Virtual">
              {modelList.filter((m) => m.kind === "virtual").map((m) => (
                <option key={m.id} value={m.id}>{m.id}{m.resolves_to ? ` → ${m.resolves_to}` : " (unavailable)"}</option>
              ))}
            </optgroup>
            <optgroup label="Concrete">
              {modelList.filter((m) => m.kind === "concrete").map((m) => (
                <option key={m.id} value={m.id}>{m.id} ({m.provider})</option>
              ))}
            </optgroup>
          </select>
        </Field>
        <Field label="Temperature">
          <input name="temperature" type="number" min="0" max="2" step="0.1" value={form.temperature} onInput={set("temperature")} />
        </Field>
        <Field label="Max tokens">
          <input name="max_tokens" type="number" min="1" value={form.max_tokens} onInput={set("max_tokens")} />
        </Field>
      </div>
      <Field label="Description">
        <input name="description" value={form.description} onInput={set("description")} />
      </Field>
      <Field label="System prompt">
        <textarea name="system_prompt" rows={4} value={form.system_prompt} onInput={set("system_prompt")} />
      </Field>
      <fieldset>
        <legend>Tools</legend>
        {tools.loading && <Loading what="tools" />}
        {(tools.data?.tools || []).map((tool) => (
          <label key={tool.name} class="check" title={tool.description}>
            <input type="checkbox" checked={form.tools.includes(tool.name)} onChange={() => toggleTool(tool.name)} />
            {tool.name} <small class="muted">({tool.source})</small>
          </label>
        ))}
      </fieldset>
      <ErrorNote error={error || models.error} />
      <div class="bar">
        <button type="submit">{agent ? "Save" : "Create agent"}</button>
        <button type="button" class="secondary" onClick={() => onDone(null)}>Cancel</button>
      </div>
    </form>
  );
}
