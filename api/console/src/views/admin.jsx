// The platform admin's view: tenants (create; keys issued and revoked; limits; audit
// trail; reference agents), providers with health and breaker state, the virtual model
// table and the platform's own audit trail.
import { useState } from "preact/hooks";
import { useLoad } from "../hooks.js";
import { ms, short, when } from "../format.js";
import { ErrorNote, Field, Loading } from "../widgets.jsx";

export function Admin({ api, tenantId }) {
  return (
    <section aria-labelledby="admin-title">
      <h2 id="admin-title">Platform</h2>
      {tenantId ? <Tenant api={api} id={tenantId} /> : (
        <>
          <Tenants api={api} />
          <Providers api={api} />
          <VirtualModels api={api} />
          <Trail api={api} path="/api/v1/admin/audit" title="Platform audit trail" />
        </>
      )}
    </section>
  );
}

function Tenants({ api }) {
  const tenants = useLoad(() => api.get("/api/v1/admin/tenants"), [api]);
  const [name, setName] = useState("");
  const [created, setCreated] = useState(null);
  const [error, setError] = useState(null);
  async function create(e) {
    e.preventDefault();
    setError(null);
    try {
      setCreated(await api.call("POST", "/api/v1/admin/tenants", { body: { name } }));
      setName("");
      tenants.reload();
    } catch (err) {
      setError(err);
    }
  }
  return (
    <>
      <h3>Tenants</h3>
      <form class="bar" onSubmit={create} aria-label="New tenant">
        <Field label="New tenant's name"><input name="tenant_name" required value={name} onInput={(e) => setName(e.currentTarget.value)} /></Field>
        <button type="submit">Create tenant</button>
      </form>
      <ErrorNote error={error || tenants.error} />
      {created && <Secret title={`Tenant ${created.tenant.name} created`} lines={[["Tenant ID", created.tenant.id], ["API key", created.api_key]]} />}
      {tenants.loading && !tenants.data ? <Loading what="tenants" /> : (
        <table aria-label="Tenants">
          <thead><tr><th>Name</th><th>ID</th><th>Created</th><th>Live keys</th></tr></thead>
          <tbody>
            {(tenants.data?.tenants || []).map((t) => (
              <tr key={t.id}><td><a href={`#/admin/tenants/${t.id}`}>{t.name}</a></td><td><code>{t.id}</code></td><td>{when(t.created_at)}</td><td>{t.live_keys}</td></tr>
            ))}
          </tbody>
        </table>
      )}
    </>
  );
}

function Secret({ title, lines }) {
  return (
    <div class="card secret" role="status">
      <strong>{title}</strong> — the key is shown this once; copy it now.
      <dl class="facts">{lines.map(([k, v]) => <><dt>{k}</dt><dd><code>{v}</code></dd></>)}</dl>
    </div>
  );
}

function Tenant({ api, id }) {
  const base = `/api/v1/admin/tenants/${id}`;
  const tenant = useLoad(() => api.get(base), [api, id]);
  const keys = useLoad(() => api.get(`${base}/api-keys`), [api, id]);
  const [issued, setIssued] = useState(null);
  const [error, setError] = useState(null);
  const [note, setNote] = useState(null);
  const [changes, setChanges] = useState(0); // the trail reloads after each change
  async function act(work) {
    setError(null);
    setNote(null);
    try {
      await work();
      keys.reload();
      setChanges((n) => n + 1);
    } catch (err) {
      setError(err);
    }
  }
  return (
    <>
      <a href="#/admin">← Platform</a>
      <h3>Tenant {tenant.data?.name} <code class="small">{id}</code></h3>
      <ErrorNote error={error || tenant.error} />
      {note && <p role="status" class="note">{note}</p>}
      {issued && <Secret title="Key issued" lines={[["Key ID", issued.id], ["API key", issued.api_key]]} />}
      <div class="bar">
        <button onClick={() => act(async () => setIssued(await api.call("POST", `${base}/api-keys`, { body: {} })))}>Issue a key</button>
        <button class="secondary" onClick={() => act(async () => {
          const done = await api.call("POST", `${base}/reference-agents`);
          setNote(`Reference agents: ${done.created} created.`);
        })}>Install reference agents</button>
      </div>
      <h4>API keys</h4>
      <table aria-label="API keys">
        <thead><tr><th>Key</th><th>Scopes</th><th>Issued</th><th>Last used</th><th>State</th><th><span class="sr-only">Actions</span></th></tr></thead>
        <tbody>
          {(keys.data?.api_keys || []).map((k) => (
            <tr key={k.id}>
              <td><code>{k.hint}</code> <small class="muted">{short(k.id)}</small></td>
              <td class="small">{k.scopes.join(" ")}</td>
              <td>{when(k.issued_at)}</td>
              <td>{when(k.last_used_at)}</td>
              <td>{k.revoked_at ? `revoked ${when(k.revoked_at)}` : "live"}</td>
              <td>{!k.revoked_at && <button class="link danger" aria-label={`Revoke key ${k.hint}`} onClick={() => confirm("Revoke this key?") && act(() => api.call("DELETE", `${base}/api-keys/${k.id}`))}>Revoke</button>}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <Limits api={api} base={base} />
      <Trail api={api} path={`${base}/audit`} title="Audit trail" key={changes} />
    </>
  );
}

const LIMITS = ["requests_per_minute", "tokens_per_minute", "max_concurrent_executions", "burst"];

function Limits({ api, base }) {
  const limits = useLoad(() => api.get(`${base}/limits`), [api, base]);
  const [form, setForm] = useState({});
  const [error, setError] = useState(null);
  const [saved, setSaved] = useState(false);
  async function save(e) {
    e.preventDefault();
    setError(null);
    const body = Object.fromEntries(LIMITS.filter((k) => form[k] !== undefined && form[k] !== "").map((k) => [k, Number(form[k])]));
    try {
      await api.call("PUT", `${base}/limits`, { body: { ...currentOf(limits.data), ...body } });
      setSaved(true);
      limits.reload();
    } catch (err) {
      setError(err);
    }
  }
  return (
    <form class="card" onSubmit={save} aria-label="Limits">
      <h4>Limits</h4>
      <div class="grid">
        {LIMITS.map((k) => (
          <Field key={k} label={k.replaceAll("_", " ")}>
            <input name={k} type="number" min="0" placeholder={limits.data ? String(limits.data[k] ?? "unlimited") : ""} value={form[k] ?? ""} onInput={(e) => setForm({ ...form, [k]: e.currentTarget.value })} />
          </Field>
        ))}
      </div>
      {limits.data && <p class="muted small">Now: {limits.data.running ?? 0} running, {limits.data.remaining_requests ?? "—"} requests and {limits.data.remaining_tokens ?? "—"} tokens left this minute.</p>}
      <ErrorNote error={error || limits.error} />
      {saved && <p role="status" class="note">Limits saved.</p>}
      <button type="submit">Save limits</button>
    </form>
  );
}

const currentOf = (data) => Object.fromEntries(LIMITS.filter((k) => data?.[k] != null).map((k) => [k, data[k]]));

function Providers({ api }) {
  const providers = useLoad(() => api.get("/api/v1/admin/providers"), [api]);
  return (
    <>
      <h3>Providers</h3>
      <ErrorNote error={providers.error} />
      <table aria-label="Providers">
        <thead><tr><th>Provider</th><th>Type</th><th>Health</th><th>Breaker</th><th>Error rate</th><th>Latency</th><th>Requests</th><th>Last error</th></tr></thead>
        <tbody>
          {(providers.data?.providers || []).flatMap((p) => [
            <HealthRow key={p.id} label={<><strong>{p.id}</strong> <small class="muted">{(p.models || []).length} models{p.balance ? `, ${p.balance}` : ""}</small></>} type={p.type} health={p.health} />,
            // a provider with several endpoints: one row each, under it
            ...(p.endpoints || []).map((e) => (
              <HealthRow key={e.id} label={<small>↳ endpoint <code>{e.name}</code>, weight {e.weight}</small>} type="" health={e.health} />
            )),
          ])}
        </tbody>
      </table>
    </>
  );
}

function HealthRow({ label, type, health }) {
  const h = health || {};
  return (
    <tr>
      <td>{label}</td>
      <td>{type}</td>
      <td><span class={`status status-${h.healthy ? "completed" : "failed"}`}>{h.healthy ? "healthy" : "unhealthy"}</span></td>
      <td>{h.breaker}</td>
      <td>{h.error_rate == null ? "—" : `${Math.round(h.error_rate * 100)} %`}</td>
      <td>{ms(h.average_latency_ms)}</td>
      <td>{h.requests ?? 0}</td>
      <td>{h.last_error || "—"}</td>
    </tr>
  );
}

function VirtualModels({ api }) {
  const config = useLoad(() => api.get("/api/v1/admin/config"), [api]);
  const table = Object.entries(config.data?.virtual_models || {});
  return (
    <>
      <h3>Virtual models</h3>
      <ErrorNote error={config.error} />
      <table aria-label="Virtual models">
        <thead><tr><th>Name</th><th>Strategy</th><th>Candidates</th><th>Description</th></tr></thead>
        <tbody>
          {table.map(([name, v]) => (
            <tr key={name}>
              <td><code>{name}</code></td>
              <td>{v.strategy || "balanced"}</td>
              <td class="small">{(v.candidates || v.models || []).join(" → ")}</td>
              <td class="small">{v.description || ""}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {config.data && <p class="muted small">Configuration version {config.data.version}, file {config.data.file || "built in"}.</p>}
    </>
  );
}

function Trail({ api, path, title }) {
  const trail = useLoad(() => api.get(path, { limit: 50 }), [api, path]);
  return (
    <>
      <h3>{title}</h3>
      <ErrorNote error={trail.error} />
      <table aria-label={title}>
        <thead><tr><th>At</th><th>Kind</th><th>Actor</th><th>Target</th><th>Detail</th></tr></thead>
        <tbody>
          {(trail.data?.entries || []).map((e, i) => (
            <tr key={i}>
              <td>{when(e.at)}</td><td>{e.kind}{e.count > 1 ? ` ×${e.count}` : ""}</td><td>{e.actor || "—"}</td>
              <td><code class="small">{e.target || "—"}</code></td><td><code class="small">{JSON.stringify(e.detail)}</code></td>
            </tr>
          ))}
        </tbody>
      </table>
    </>
  );
}
