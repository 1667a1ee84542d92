// Analytics: executions, errors, latency (p50/p95), time to first content and cost per
// hour, and the same figures by agent and by model (GET /api/v1/analytics/usage).
import { useState } from "preact/hooks";
import { TimeChart } from "../chart.jsx";
import { useLoad } from "../hooks.js";
import { ms, usd } from "../format.js";
import { ErrorNote, Field, Loading } from "../widgets.jsx";

const RANGES = { "24h": 24, "7 days": 24 * 7, "30 days": 24 * 30 };

export function Analytics({ api }) {
  const [range, setRange] = useState("24h");
  const from = Math.floor(Date.now() / 1000 - RANGES[range] * 3600);
  const ask = (group_by) => api.get("/api/v1/analytics/usage", { from, group_by });
  const hourly = useLoad(() => ask("hour"), [api, range]);
  const byAgent = useLoad(() => ask("agent"), [api, range]);
  const byModel = useLoad(() => ask("model"), [api, range]);
  const agents = useLoad(() => api.get("/api/v1/agents"), [api]);
  const names = Object.fromEntries((agents.data?.agents || []).map((a) => [a.id, a.name]));

  const rows = hourly.data?.rows || [];
  // every hour of the range, so quiet hours show as 0 executions rather than as no hour
  const byHour = Object.fromEntries(rows.map((r) => [Date.parse(r.hour) / 1000, r]));
  const x = [];
  for (let hour = Math.floor(from / 3600) * 3600; hour <= Date.now() / 1000; hour += 3600) x.push(hour);
  const pick = (f, quiet = null) => x.map((hour) => (byHour[hour] ? f(byHour[hour]) ?? null : quiet));
  return (
    <section aria-labelledby="analytics-title">
      <header class="bar">
        <h2 id="analytics-title">Analytics</h2>
        <Field label="Range">
          <select name="range" value={range} onChange={(e) => setRange(e.currentTarget.value)}>
            {Object.keys(RANGES).map((r) => <option key={r}>{r}</option>)}
          </select>
        </Field>
      </header>
      <ErrorNote error={hourly.error} />
      {hourly.loading && !hourly.data && <Loading what="figures" />}
      {hourly.data && rows.length === 0 && <p class="muted">No executions ended in this range.</p>}
      {rows.length > 0 && (
        <div class="charts">
          <TimeChart title="Executions" x={x} series={[{ label: "executions", values: pick((r) => r.executions, 0) }, { label: "failed", values: pick((r) => r.failed, 0) }]} />
          <TimeChart title="Latency" x={x} format={ms} series={[{ label: "p50", values: pick((r) => r.duration_ms?.p50) }, { label: "p95", values: pick((r) => r.duration_ms?.p95) }]} />
          <TimeChart title="Time to first content" x={x} format={ms} series={[{ label: "p50", values: pick((r) => r.ttft_ms?.p50) }, { label: "p95", values: pick((r) => r.ttft_ms?.p95) }]} />
          <TimeChart title="Cost" x={x} format={usd} series={[{ label: "USD", values: pick((r) => r.cost_usd, 0) }]} />
        </div>
      )}
      <Breakdown title="By agent" state={byAgent} label={(r) => names[r.agent_id] || r.agent_id || "(none)"} />
      <Breakdown title="By model" state={byModel} label={(r) => r.model || "(none)"} />
    </section>
  );
}

function Breakdown({ title, state, label }) {
  const rows = state.data?.rows || [];
  return (
    <>
      <h3>{title}</h3>
      <ErrorNote error={state.error} />
      <table aria-label={title}>
        <thead><tr><th>{title.replace("By ", "")}</th><th>Executions</th><th>Success</th><th>p50</th><th>p95</th><th>TTFT p50</th><th>Errors</th><th>Cost</th></tr></thead>
        <tbody>
          {rows.map((r, i) => (
            <tr key={i}>
              <td>{label(r)}</td>
              <td>{r.executions}</td>
              <td>{r.success_rate == null ? "—" : `${Math.round(r.success_rate * 100)} %`}</td>
              <td>{ms(r.duration_ms?.p50)}</td>
              <td>{ms(r.duration_ms?.p95)}</td>
              <td>{ms(r.ttft_ms?.p50)}</td>
              <td>{Object.entries(r.error_types || {}).map(([t, n]) => `${t}: ${n}`).join(", ") || "—"}</td>
              <td>{usd(r.cost_usd)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </>
  );
}
