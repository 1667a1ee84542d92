// How figures read on screen.
export const usd = (v) => (v == null ? "—" : `$${Number(v).toFixed(Number(v) < 0.01 ? 6 : 4)}`);
export const ms = (v) => (v == null ? "—" : v >= 1000 ? `${(v / 1000).toFixed(2)} s` : `${Math.round(v)} ms`);
export const when = (unix) => (unix == null ? "—" : new Date(unix * 1000).toLocaleString());
export const tokens = (u) => (u ? `${u.prompt_tokens ?? 0} in · ${u.completion_tokens ?? 0} out` : "—");
export const short = (id) => (id ? String(id).slice(0, 8) : "—");
