"""The web console at `/console`, in a real browser (Playwright on Debian's chromium, every
other host unreachable): the platform admin creates a tenant and manages its keys and sees
providers and virtual models; the tenant signs in, creates an agent, runs it and watches the
answer stream in with its tool call, survives a dropped stream by resuming, finds the run in
history with its routing and events, and sees it charted. Screenshots go to
build/test-artifacts/console/."""

from __future__ import annotations

import re
import uuid
from typing import Any

from tests.support.browser import ARTIFACTS, driven, served_locally
from tests.support.client import SQLITE_ONLY, ApiClient, Tenant
from tests.support.cluster import ADMIN_TOKEN

SHOTS = ARTIFACTS / "console"
CHUNKS = ["The monthly ", "payment is ", "$1,798.65 ", "for 30 years ", "at 6 %."]
MORTGAGE = {"name": "mortgage_calculator", "arguments": {"price": 300000, "annual_rate_percent": 6}}


@SQLITE_ONLY
def test_the_console_is_served_with_nothing_remote(gateway: ApiClient) -> None:
    page = served_locally(gateway.http, "/console", files=2)  # one style sheet, one script
    assert '<div id="console">' in page.text
    for name in ("nothing.js", "..%2Fconsole.py", "index.html", ".built"):
        assert gateway.http.get(f"/console/{name}").status_code == 404, name


def _shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def _sign_in_as_admin(page: Any, base: str) -> None:
    page.goto(f"{base}/console")
    page.get_by_label("Platform admin").check()
    token = page.get_by_label("Admin token")
    token.fill(ADMIN_TOKEN)
    token.press("Enter")  # the form submits from the keyboard
    page.get_by_role("heading", name="Tenants").wait_for()


@SQLITE_ONLY
def test_the_admin_creates_a_tenant_manages_its_keys_and_sees_the_platform(
    gateway: ApiClient,
) -> None:
    name = f"Console admin {uuid.uuid4().hex[:6]}"
    with driven() as browser:
        page = browser.new_page(viewport={"width": 1366, "height": 800})
        page.on("dialog", lambda dialog: dialog.accept())
        _sign_in_as_admin(page, str(gateway.http.base_url).rstrip("/"))

        page.get_by_label("New tenant's name").fill(name)
        page.get_by_role("button", name="Create tenant").click()
        secret = page.locator(".secret")
        secret.get_by_text("API key").wait_for()
        tenant_id, api_key = (secret.locator("dd code").nth(i).inner_text() for i in (0, 1))
        assert api_key.startswith("cbk_")
        tenants = page.get_by_role("table", name="Tenants")
        tenants.get_by_role("link", name=name).wait_for()

        providers = page.get_by_role("table", name="Providers")
        providers.get_by_role("cell", name="openai", exact=True).first.wait_for()
        breakers = providers.locator("tbody tr td:nth-child(4)").all_inner_texts()
        assert breakers and set(breakers) <= {"closed", "open", "half_open"}, breakers
        # a provider with several endpoints (tests/config.yaml: `pool`) lists each under it
        providers.get_by_text("endpoint east, weight 3").wait_for()
        page.get_by_role("table", name="Virtual models").get_by_text("cb:smart-chat").wait_for()
        _shot(page, "admin-platform")

        tenants.get_by_role("link", name=name).click()
        keys = page.get_by_role("table", name="API keys")
        keys.get_by_text("live").wait_for()
        assert keys.locator("tbody tr").count() == 1
        page.get_by_role("button", name="Issue a key").click()
        page.get_by_text("Key issued").wait_for()
        issued = page.locator(".secret dd code").nth(1).inner_text()
        keys.locator("tbody tr").nth(1).wait_for()
        hint = keys.locator("tbody tr").first.locator("td code").first.inner_text()
        keys.get_by_role("button", name=f"Revoke key {hint}").click()
        keys.get_by_text(re.compile("^revoked")).wait_for()
        page.get_by_role("table", name="Audit trail").get_by_text("api_key.revoked").wait_for()
        limits = page.get_by_role("form", name="Limits")
        limits.get_by_label("requests per minute").fill("77")
        limits.get_by_role("button", name="Save limits").click()
        limits.get_by_text("Limits saved.").wait_for()
        _shot(page, "admin-tenant")

    # what the console showed is what the API holds: the new tenant's first key works, the
    # revoked one does not
    for key, status in ((api_key, 200), (issued, 401)):
        reply = gateway.http.get("/api/v1/agents", headers=Tenant(tenant_id, key).headers())
        assert reply.status_code == status, reply.text
    limits = gateway.http.get(f"/api/v1/admin/tenants/{tenant_id}/limits", headers=gateway.admin)
    assert limits.json()["requests_per_minute"] == 77, limits.text


def _watch_answer(page: Any) -> None:
    """Record every text the answer box shows, to see it grow chunk by chunk."""
    page.evaluate(
        """() => { window.seenAnswers = [];
        new MutationObserver(() => { const a = document.querySelector('[data-testid=answer]');
          if (a) window.seenAnswers.push(a.textContent); })
        .observe(document.body, {subtree: true, childList: true, characterData: true}); }"""
    )


@SQLITE_ONLY
def test_a_tenant_creates_an_agent_runs_it_and_finds_it_in_history(gateway: ApiClient) -> None:
    tenant = gateway.new_tenant("Console tenant")
    emulator = gateway.cluster.emulator
    tag, cut_tag = f"console-{uuid.uuid4().hex[:8]}", f"console-cut-{uuid.uuid4().hex[:8]}"
    emulator.script(tag, chunks=CHUNKS, chunk_delay=0.25, prompt_tokens=40, completion_tokens=15)
    emulator.script(tag, tool_calls=[MORTGAGE], times=1)  # the first turn calls the tool
    emulator.script(cut_tag, chunks=CHUNKS, chunk_delay=0.05)
    base = str(gateway.http.base_url).rstrip("/")
    with driven() as browser:
        page = browser.new_page(viewport={"width": 1366, "height": 800})
        page.goto(f"{base}/console")
        page.get_by_label("Tenant ID").fill(tenant.id)
        page.get_by_label("API key").fill(tenant.api_key)
        page.get_by_role("button", name="Sign in").click()
        page.get_by_role("heading", name="Agents").wait_for()

        # create an agent: a model from /api/v1/models, a tool from /api/v1/tools
        page.get_by_role("button", name="New agent").click()
        form = page.get_by_role("form", name="New agent")
        form.get_by_label("Name").fill("Mortgage helper")
        form.get_by_label("Model").select_option("cb:smart-chat")
        form.get_by_label("System prompt").fill("You answer mortgage questions with the tool.")
        form.get_by_label("Temperature").fill("0.2")
        form.get_by_role("checkbox", name=re.compile("mortgage_calculator")).check()
        form.get_by_role("button", name="Create agent").click()
        row = page.get_by_role("row", name=re.compile("Mortgage helper"))
        row.get_by_text("mortgage_calculator").wait_for()
        row.get_by_role("button", name="Edit").click()
        edit = page.get_by_role("form", name="Edit Mortgage helper")
        edit.get_by_label("Temperature").fill("0.4")
        edit.get_by_role("button", name="Save").click()
        page.get_by_text("Saved Mortgage helper.").wait_for()
        [agent] = gateway.http.get("/api/v1/agents", headers=tenant.headers()).json()["agents"]
        assert agent["tools"] == ["mortgage_calculator"] and agent["version"] == 2
        assert agent["parameters"]["temperature"] == 0.4
        assert agent["system_prompt"] == "You answer mortgage questions with the tool."

        # the reference agents, and one of them deleted again
        page.on("dialog", lambda dialog: dialog.accept())
        page.get_by_role("button", name="Install reference agents").click()
        page.get_by_text("Reference agents: 4 created, 0 already there.").wait_for()
        page.get_by_role("button", name="Delete Strategic Decision Advisor").click()
        page.get_by_text("Deleted Strategic Decision Advisor.").wait_for()
        listed = gateway.http.get("/api/v1/agents", headers=tenant.headers()).json()["agents"]
        names = {a["name"] for a in listed}
        assert len(names) == 4 and "Strategic Decision Advisor" not in names
        _shot(page, "agents")

        # run it: the answer streams in, the tool call and its result show, then the cost
        row.get_by_role("link", name="Run").click()
        page.get_by_label("Prompt").fill(f"{tag} What is the monthly payment?")
        _watch_answer(page)
        page.get_by_role("button", name="Run", exact=True).click()
        answer = page.get_by_test_id("answer")
        page.locator(".status-completed").wait_for(timeout=30_000)
        assert answer.inner_text() == "".join(CHUNKS)
        growth = page.evaluate("window.seenAnswers.filter(t => t.length > 0)")
        assert len(set(growth)) >= 3, growth  # it grew chunk by chunk, not all at once
        steps = page.get_by_role("list", name="Tool calls").inner_text()
        assert "mortgage_calculator" in steps and "monthly_payment" in steps, steps
        assert page.get_by_test_id("cost").inner_text().startswith("$")
        _shot(page, "run")

        # a stream cut after three events resumes by itself, from the last id it saw
        def cut(route: Any) -> None:
            whole = route.fetch()
            frames = whole.text().split("\n\n")
            route.fulfill(response=whole, body="\n\n".join(frames[:3]) + "\n\n")

        page.route("**/execute/stream", cut)
        page.get_by_label("Prompt").fill(f"{cut_tag} Again, please.")
        page.get_by_role("button", name="Run", exact=True).click()
        page.locator(".status-completed").wait_for(timeout=30_000)
        assert answer.inner_text() == "".join(CHUNKS)
        page.get_by_text("Resumed after event 3.").wait_for()
        page.unroute("**/execute/stream")
        _shot(page, "run-resumed")

        # history: both runs, filters, and one run's full record
        page.get_by_role("navigation").get_by_role("link", name="History").click()
        listing = page.get_by_role("table", name="Executions")
        listing.locator("tbody tr").nth(1).wait_for()
        assert listing.locator("tbody tr").count() == 2
        page.get_by_label("Status").select_option("failed")
        listing.get_by_text("No executions match.").wait_for()
        page.get_by_label("Status").select_option("completed")
        listing.locator("tbody tr").nth(1).wait_for()
        listing.locator("tbody tr").last.get_by_role("link").click()  # the first run
        page.get_by_role("heading", name=re.compile("^Execution")).wait_for()
        page.get_by_role("table", name="Routing candidates").locator("tbody tr").first.wait_for()
        assert page.get_by_role("table", name="Attempts").locator("tbody tr").count() == 2
        used = page.get_by_role("list", name="Tool calls").inner_text()  # from the record
        assert "mortgage_calculator" in used and "monthly_payment" in used, used
        page.get_by_role("button", name="Show the stream's events").click()
        events = page.get_by_role("list", name="Events")
        events.get_by_text("execution_complete").wait_for()
        assert "tool_call" in events.inner_text() and "content_chunk" in events.inner_text()
        _shot(page, "history-record")

        # analytics: the runs charted by the hour, and by agent
        page.get_by_role("navigation").get_by_role("link", name="Analytics").click()
        page.locator(".uplot canvas").first.wait_for()
        assert page.locator(".uplot").count() == 4
        by_agent = page.get_by_role("table", name="By agent")
        by_agent.get_by_role("cell", name="Mortgage helper").wait_for()
        _shot(page, "analytics")
