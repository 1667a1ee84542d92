// The console's shell: sign-in, then a navigation bar and one view per hash route
// (#/agents, #/run/<agent>, #/history[/<execution>], #/analytics, #/admin[/tenants/<id>]).
import { render } from "preact";
import { useEffect, useMemo, useState } from "preact/hooks";
import { Api } from "./api.js";
import { clearSession, loadSession, saveSession } from "./session.js";
import { Admin } from "./views/admin.jsx";
import { Agents } from "./views/agents.jsx";
import { Analytics } from "./views/analytics.jsx";
import { History } from "./views/history.jsx";
import { Run } from "./views/run.jsx";
import { SignIn } from "./views/signin.jsx";

const TENANT_VIEWS = [["agents", "Agents"], ["run", "Run"], ["history", "History"], ["analytics", "Analytics"]];

function useRoute() {
  const read = () => location.hash.replace(/^#\/?/, "").split("/").filter(Boolean);
  const [route, setRoute] = useState(read);
  useEffect(() => {
    const changed = () => setRoute(read());
    addEventListener("hashchange", changed);
    return () => removeEventListener("hashchange", changed);
  }, []);
  return route;
}

function Console() {
  const [session, setSession] = useState(loadSession);
  const route = useRoute();
  const api = useMemo(() => session && new Api(session), [session]);
  if (!session) {
    return <SignIn onSignedIn={(s) => { saveSession(s); setSession(s); location.hash = s.kind === "admin" ? "#/admin" : "#/agents"; }} />;
  }
  const admin = session.kind === "admin";
  const [view = admin ? "admin" : "agents", arg, sub] = route;
  const views = admin ? [["admin", "Platform"]] : TENANT_VIEWS;
  return (
    <>
      <header class="top">
        <strong class="brand">Circuit Breaker</strong>
        <nav aria-label="Console">
          {views.map(([id, label]) => (
            <a key={id} href={`#/${id}`} aria-current={view === id ? "page" : undefined}>{label}</a>
          ))}
        </nav>
        <span class="who muted">{admin ? "platform admin" : `tenant ${session.tenantId.slice(0, 8)}…`}</span>
        <button class="link" onClick={() => { clearSession(); setSession(null); location.hash = ""; }}>Sign out</button>
      </header>
      <main>
        {view === "agents" && !admin && <Agents api={api} />}
        {view === "run" && !admin && <Run api={api} agentId={arg} key={arg} />}
        {view === "history" && !admin && <History api={api} executionId={arg} />}
        {view === "analytics" && !admin && <Analytics api={api} />}
        {view === "admin" && admin && <Admin api={api} tenantId={arg === "tenants" ? sub : undefined} />}
        {!views.some(([id]) => id === view) && <p>Nothing here: pick a view above.</p>}
      </main>
    </>
  );
}

render(<Console />, document.getElementById("console"));
