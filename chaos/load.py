"""Load on a gateway, as API clients make it, and the account of what it became.

Each request is an execution, whole or streamed, retried by the client as the SDKs do (a
transport error, 408, 429 or any 5xx, after its `Retry-After`), so every request ends as
`completed`, `completed_after_restart` (its execution ran again as a new attempt after its
tenant actor died, `domain.attempts`), `completed_after_retry`, or its last typed error. The
store's side is read afterwards: every execution the chaos tenants started, by status;
`lost` is one that never reached a terminal state.
"""

from __future__ import annotations

import collections
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

RETRIED_STATUSES = {408, 429, *range(500, 600)}  # what OpenAI's SDKs retry
RETRIES = 3
MAX_RETRY_AFTER_S = 2.0
RESTARTED = "completed_after_restart"
STREAM_DEADLINE_S = 60.0  # a stream still open this long (heartbeats only) counts as hung
PROMPT = "chaos-load"  # in every prompt, so a provider emulator can be scripted on it


@dataclass(frozen=True)
class Target:
    """The gateway under load and its platform admin credential."""

    url: str
    admin_token: str

    @property
    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_token}"}


@dataclass(frozen=True)
class ChaosTenant:
    tenant_id: str
    headers: dict[str, str]
    agent_id: str


@dataclass
class Tally:
    """What the clients saw: each request's final outcome, counted."""

    outcomes: collections.Counter[str] = field(default_factory=collections.Counter)
    seconds: list[float] = field(default_factory=list)  # each request's, retries included
    lock: threading.Lock = field(default_factory=threading.Lock)
    # per tenant, when each of its streams running now started (its start is in the store)
    streams: collections.defaultdict[str, list[float]] = field(
        default_factory=lambda: collections.defaultdict(list)
    )

    def add(self, outcome: str, seconds: float) -> None:
        with self.lock:
            self.outcomes[outcome] += 1
            self.seconds.append(seconds)

    def stream_started(self, tenant_id: str) -> float:
        at = time.monotonic()
        with self.lock:
            self.streams[tenant_id].append(at)
        return at

    def stream_ended(self, tenant_id: str, started: float) -> None:
        with self.lock:
            self.streams[tenant_id].remove(started)

    def running(self, within_s: float) -> list[str]:
        """The tenants with a streamed execution that started (in the store) less than
        `within_s` ago and has not ended."""
        since = time.monotonic() - within_s
        with self.lock:
            return [t for t, starts in self.streams.items() if starts and starts[-1] > since]

    def latency(self) -> dict[str, float]:
        """p50, p99 and the slowest request's seconds."""
        if not self.seconds:
            return {}
        ordered = sorted(self.seconds)
        at = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
        return {
            "p50_s": round(at(0.5), 3),
            "p99_s": round(at(0.99), 3),
            "max_s": round(ordered[-1], 3),
        }


def make_tenants(
    target: Target, count: int, model: str, timeout_s: float = 120
) -> list[ChaosTenant]:
    """`count` new tenants, each with an API key and one agent on `model`."""
    tenants = []
    with httpx.Client(base_url=target.url, timeout=timeout_s) as client:
        for number in range(count):
            made = client.post(
                "/api/v1/admin/tenants", json={"name": f"chaos {number}"}, headers=target.admin
            )
            made.raise_for_status()
            body = made.json()
            headers = {
                "X-Tenant-ID": body["tenant"]["id"],
                "Authorization": f"Bearer {body['api_key']}",
            }
            agent = client.post(
                "/api/v1/agents", json={"name": "chaos", "model": model}, headers=headers
            )
            agent.raise_for_status()
            tenants.append(ChaosTenant(body["tenant"]["id"], headers, agent.json()["id"]))
    return tenants


def drive(
    target: Target, tenants: list[ChaosTenant], stop: threading.Event, tally: Tally, workers: int
) -> list[threading.Thread]:
    """Start `workers` client threads over the tenants (every other request streamed)."""

    def work(number: int) -> None:
        tenant = tenants[number % len(tenants)]
        streamed = number % 2 == 1
        with httpx.Client(base_url=target.url, headers=tenant.headers, timeout=120) as client:
            while not stop.is_set():
                began = time.monotonic()
                outcome = _request(client, tenant, streamed, tally)
                tally.add(outcome, time.monotonic() - began)

    threads = [threading.Thread(target=work, args=(n,), daemon=True) for n in range(workers)]
    for thread in threads:
        thread.start()
    return threads


def _request(client: httpx.Client, tenant: ChaosTenant, streamed: bool, tally: Tally) -> str:
    """One client request with its retries: its final outcome."""
    for attempt in range(RETRIES + 1):
        outcome, retry_after = _attempt(client, tenant, streamed, tally)
        if outcome.startswith("completed"):
            return "completed_after_retry" if attempt else outcome
        if retry_after is None or attempt == RETRIES:
            return outcome
        time.sleep(min(retry_after, MAX_RETRY_AFTER_S))
    raise AssertionError("unreachable")


def _attempt(
    client: httpx.Client, tenant: ChaosTenant, streamed: bool, tally: Tally
) -> tuple[str, float | None]:
    """One attempt: its outcome, and how long to wait before a retry (None: no retry)."""
    path = f"/api/v1/agents/{tenant.agent_id}/execute" + ("/stream" if streamed else "")
    try:
        if not streamed:
            reply = client.post(path, json={"prompt": PROMPT})
            return _whole(reply)
        with client.stream("POST", path, json={"prompt": PROMPT}) as reply:
            if reply.status_code != 200:
                reply.read()
                return _whole(reply)
            return _streamed(reply, tally, tenant.tenant_id), None
    except httpx.TransportError as cut:
        return f"transport:{type(cut).__name__}", 0.2


def _whole(reply: httpx.Response) -> tuple[str, float | None]:
    try:
        body = reply.json()
    except ValueError:
        body = None
    if reply.status_code == 200 and isinstance(body, dict):
        status = str(body.get("status"))
        if status == "completed" and reply.headers.get("x-cb-attempt"):
            return RESTARTED, None
        return status, None
    error = body.get("error", body) if isinstance(body, dict) else None
    kind = str(error.get("type")) if isinstance(error, dict) and error.get("type") else None
    outcome = kind or f"untyped:{reply.status_code}"
    if reply.status_code not in RETRIED_STATUSES:
        return outcome, None
    return outcome, float(reply.headers.get("retry-after") or 0.2)


def _streamed(reply: httpx.Response, tally: Tally, tenant_id: str) -> str:
    """The stream's terminal event: completed (after a restarted attempt, if one came), its
    error's type, `stream_cut` if none came, `stream_cut:hung` if none came in
    `STREAM_DEADLINE_S` (the gateway's heartbeats keep a stuck stream open). It is in
    `tally.streams` from its first `execution_start` (the store holds its start) to its end."""
    event, restarted, started = None, False, None
    deadline = time.monotonic() + STREAM_DEADLINE_S
    try:
        for line in reply.iter_lines():
            if time.monotonic() > deadline:
                return "stream_cut:hung"
            if line.startswith("event: "):
                event = line[7:]
                restarted = restarted or event == "attempt_restarted"
                if event == "execution_start" and started is None:
                    started = tally.stream_started(tenant_id)
            elif line.startswith("data: ") and event in ("execution_complete", "error"):
                if event == "execution_complete":
                    return RESTARTED if restarted else "completed"
                data = json.loads(line[6:])
                error = data.get("error", data) if isinstance(data, dict) else {}
                return str(error.get("type") or "untyped:error_event")
        return "stream_cut"
    finally:
        if started is not None:
            tally.stream_ended(tenant_id, started)


def account(target: Target, tenants: list[ChaosTenant], settle_s: float = 60) -> dict[str, int]:
    """The chaos tenants' executions in the store by status, once none runs (or `settle_s`
    passed): `lost` counts those still running then."""
    deadline = time.monotonic() + settle_s
    while True:
        statuses = _statuses(target, tenants)
        if not statuses.get("running") or time.monotonic() > deadline:
            break
        time.sleep(1)
    recorded = sum(statuses.values())
    return {"recorded": recorded, **statuses, "lost": statuses.get("running", 0)}


def _statuses(target: Target, tenants: list[ChaosTenant]) -> dict[str, int]:
    counted: collections.Counter[str] = collections.Counter()
    with httpx.Client(base_url=target.url, timeout=60) as client:
        for tenant in tenants:
            before: Any = None
            while True:
                params: dict[str, Any] = {"limit": 500}
                if before is not None:
                    params["before"] = before
                page = client.get("/api/v1/executions", params=params, headers=tenant.headers)
                page.raise_for_status()
                body = page.json()
                counted.update(row["status"] for row in body["executions"])
                if not body["executions"] or body.get("next_before") in (None, before):
                    break
                before = body["next_before"]
    return dict(counted)
