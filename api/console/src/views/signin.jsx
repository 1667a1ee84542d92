// Sign in as a tenant (id and API key) or as the platform admin (admin token); the
// credential is checked with one call before the console opens.
import { useState } from "preact/hooks";
import { Api } from "../api.js";
import { ErrorNote, Field } from "../widgets.jsx";

export function SignIn({ onSignedIn }) {
  const [kind, setKind] = useState("tenant");
  const [form, setForm] = useState({ tenantId: "", apiKey: "", token: "" });
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const set = (name) => (e) => setForm({ ...form, [name]: e.currentTarget.value.trim() });

  async function submit(e) {
    e.preventDefault();
    const session =
      kind === "admin"
        ? { kind, token: form.token }
        : { kind, tenantId: form.tenantId, apiKey: form.apiKey };
    setBusy(true);
    setError(null);
    try {
      const api = new Api(session);
      if (kind === "admin") await api.get("/api/v1/admin/tenants", { limit: 1 });
      else await api.get("/api/v1/agents");
      onSignedIn(session);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  }

  return (
    <main class="signin">
      <h1>Circuit Breaker console</h1>
      <form onSubmit={submit} aria-label="Sign in">
        <fieldset class="tabs">
          <legend>Sign in as</legend>
          <label>
            <input type="radio" name="kind" checked={kind === "tenant"} onChange={() => setKind("tenant")} />
            Tenant
          </label>
          <label>
            <input type="radio" name="kind" checked={kind === "admin"} onChange={() => setKind("admin")} />
            Platform admin
          </label>
        </fieldset>
        {kind === "tenant" ? (
          <>
            <Field label="Tenant ID">
              <input name="tenant_id" required value={form.tenantId} onInput={set("tenantId")} autoComplete="username" />
            </Field>
            <Field label="API key" hint="Kept in this browser tab's session only.">
              <input name="api_key" type="password" required value={form.apiKey} onInput={set("apiKey")} autoComplete="current-password" />
            </Field>
          </>
        ) : (
          <Field label="Admin token" hint="CB_ADMIN_TOKEN; kept in this browser tab's session only.">
            <input name="admin_token" type="password" required value={form.token} onInput={set("token")} autoComplete="current-password" />
          </Field>
        )}
        <ErrorNote error={error} />
        <button type="submit" disabled={busy}>{busy ? "Checking…" : "Sign in"}</button>
      </form>
    </main>
  );
}
