// Small pieces every view uses.
export function ErrorNote({ error }) {
  if (!error) return null;
  return (
    <p class="error" role="alert">
      <strong>{error.type || "error"}</strong>
      {error.status ? ` (${error.status})` : ""}: {error.message}
    </p>
  );
}

export function Loading({ what }) {
  return <p class="muted" aria-busy="true">Loading {what}…</p>;
}

export function Field({ label, children, hint }) {
  return (
    <label class="field">
      <span>{label}</span>
      {children}
      {hint && <small class="muted">{hint}</small>}
    </label>
  );
}

export function Status({ value }) {
  return <span class={`status status-${value}`}>{value}</span>;
}
