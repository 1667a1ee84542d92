"""`cb migrate import | verify | rollback`: legacy records into a tenant through the gateway's
admin API (so every change is an event), checked field by field, and taken back.

Exit statuses: 0 all well; 1 records could not be imported, a mismatch, or an incomplete
migration; 2 the source or the gateway could not be used (nothing was imported)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from domain import legacy_import as legacy
from domain.errors import CBError
from domain.state_agents import checked_config
from migration.legacy_source import (
    LegacyGraphQL,
    SourceUnavailable,
    header_pairs,
    ids_in,
    read_file,
)

PART = 2_000  # executions per request to the gateway
FILE_TO_BODY = {"agents": "agents", "stateAgentConfigs": "state_agent_configs",
                "executions": "executions"}  # fmt: skip


class GatewayError(Exception):
    """The gateway refused or could not be reached; the message says which."""


@dataclass
class Gateway:
    """The gateway's admin API (`CB_ADMIN_TOKEN`)."""

    url: str
    token: str
    http: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.http = httpx.Client(
            base_url=self.url.rstrip("/"),
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=300,
        )

    def call(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        try:
            reply = self.http.request(method, path, json=body)
        except httpx.HTTPError as exc:
            raise GatewayError(f"the gateway at {self.url} did not answer: {exc}") from None
        if reply.status_code >= 400:
            try:
                error = reply.json()["error"]
                detail = f"{error['type']}: {error['message']}"
            except (ValueError, KeyError, TypeError):
                detail = reply.text[:200]
            raise GatewayError(f"the gateway answered {reply.status_code} ({detail})")
        return reply.json()


@dataclass
class ImportOptions:
    tenant: str
    from_graphql: str | None = None
    from_file: Path | None = None
    legacy_headers: list[str] = field(default_factory=list)
    executions: Path | None = None
    resources: Path | None = None
    states: Path | None = None
    model_map: list[str] = field(default_factory=list)
    dry_run: bool = False


def _model_map(pairs: list[str]) -> dict[str, str]:
    mapping = {}
    for pair in pairs:
        old, sep, new = pair.partition("=")
        if not sep or not old or not new:
            raise SourceUnavailable(f"--model-map {pair!r}: expected OLD=NEW")
        mapping[old] = new
    return mapping


def _read_source(options: ImportOptions) -> tuple[dict[str, Any], dict[str, list[Any]]]:
    """Where the records come from, and the records (in the legacy shape)."""
    if options.from_file is not None:
        records = read_file(options.from_file)
        digest = hashlib.sha256(options.from_file.read_bytes()).hexdigest()
        return {"kind": "file", "file": str(options.from_file), "sha256": digest}, records
    assert options.from_graphql is not None
    source = LegacyGraphQL(options.from_graphql, header_pairs(options.legacy_headers))
    try:
        records = source.read(
            ids_in(options.executions), ids_in(options.resources), ids_in(options.states)
        )
    finally:
        source.close()
    # the header names (never their values: they may be credentials) so verify can re-read
    names = sorted(header_pairs(options.legacy_headers))
    return {"kind": "graphql", "url": _without_credentials(options.from_graphql),
            "header_names": names}, records  # fmt: skip


def _without_credentials(url: str) -> str:
    """The URL without a `user:password@` part (never recorded)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit(parts._replace(netloc=netloc))


def _parts(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The import as requests: agents and configurations first, executions in parts."""
    executions = body.pop("executions")
    chunks = [executions[i : i + PART] for i in range(0, len(executions), PART)] or [[]]
    parts = [{**body, "executions": chunks[0]}]
    parts += [{**body, "agents": [], "state_agent_configs": [], "executions": c}
              for c in chunks[1:]]  # fmt: skip
    for part in parts:
        part["final"] = part is parts[-1]
    return parts


def run_import(gateway: Gateway, options: ImportOptions) -> int:
    """Plan or run the import; prints each record's action, the counts, and (a real run)
    `migration <ID>` last."""
    source, records = _read_source(options)
    body: dict[str, Any] = {
        "source": source,
        "model_map": _model_map(options.model_map),
        "dry_run": options.dry_run,
        **{FILE_TO_BODY[k]: records.get(k) or [] for k in FILE_TO_BODY},
    }
    path = f"/api/v1/admin/tenants/{options.tenant}/migrations"
    plan: list[dict[str, Any]] = []
    migration_id = None
    for part in _parts(body):
        if migration_id is not None:
            part["migration_id"] = migration_id
        answer = gateway.call("POST", path, part)
        plan += answer["plan"]
        migration_id = answer["migration_id"]
    _print_plan(plan, options.dry_run)
    errors = sum(step["action"] == "error" for step in plan)
    if options.dry_run:
        print("dry run: nothing was imported")
    else:
        print(f"migration {migration_id}")
    return 1 if errors else 0


def _print_plan(plan: list[dict[str, Any]], dry_run: bool) -> None:
    verb = {"create": "would create" if dry_run else "created", "skip": "skip", "error": "error"}
    for step in plan:
        line = f"{verb[step['action']]:12} {step['kind']:18} {step['legacy_id']}"
        if step.get("id") and step["action"] != "error":
            line += f" -> {step['id']}"
        if step.get("record", {}).get("model") and step["kind"] == "agent":
            line += f" (model {step['record']['model']})"
        if step.get("reason"):
            line += f": {step['reason']}"
        print(line)
    for kind in legacy.KINDS:
        steps = [s for s in plan if s["kind"] == kind]
        counts = {a: sum(s["action"] == a for s in steps) for a in ("create", "skip", "error")}
        print(f"{kind}s: {counts['create']} to create, {counts['skip']} already imported,"
              f" {counts['error']} not importable")  # fmt: skip


def _reread(migration: Mapping[str, Any], headers: list[str]) -> dict[str, Any] | None:
    """The source records again, by kind and legacy id, when the legacy server answers;
    None when it is a file or unreachable (the copies kept in the migration are used)."""
    source = migration["source"]
    if source.get("kind") != "graphql":
        return None
    server = LegacyGraphQL(source["url"], header_pairs(headers), timeout_s=10)
    found: dict[str, Any] = {}
    records = migration["records"]
    try:
        for record in (r for r in records if r["kind"] == "agent"):
            found[f"agent/{record['legacy_id']}"] = server.agent(record["legacy_id"])
        # executions and configurations in bulk (by resource, by state), then one by one
        executions = [r for r in records if r["kind"] == "execution"]
        for resource in dict.fromkeys(r["source"].get("resourceId") for r in executions):
            for execution in server.resource_executions(str(resource)) if resource else []:
                found[f"execution/{execution['id']}"] = execution
        for record in executions:
            key = f"execution/{record['legacy_id']}"
            if key not in found:
                found[key] = server.execution(record["legacy_id"])
        configs = [r for r in records if r["kind"] == "state_agent_config"]
        for state in dict.fromkeys(r["source"].get("stateId") for r in configs):
            for config in server.state_agent_configs(str(state)):
                found[f"state_agent_config/{config['id']}"] = config
    except SourceUnavailable as exc:
        print(f"the legacy server could not be re-read ({exc}); comparing with the copies kept")
        return None
    finally:
        server.close()
    return found


def expected_record(
    tenant_id: str, kind: str, source: Mapping[str, Any], current: Mapping[str, Any] | None,
    model_map: Mapping[str, str],
) -> dict[str, Any]:  # fmt: skip
    """What `source` maps to (as the import made it)."""
    agent_ids = {}
    legacy_agent = str(source.get("agentId") or "")
    if current is not None and current.get("agent_id") == legacy.imported_id(
        tenant_id, "agent", legacy_agent
    ):
        agent_ids[legacy_agent] = current["agent_id"]
    stated = (source.get("llmProvider") or {}).get("model")
    mapped = legacy.mapped(kind, source, model_map, {stated} if stated else set(), agent_ids)
    if mapped.problem is not None:
        return {"problem": mapped.problem}
    if kind == "state_agent_config":
        try:
            return checked_config(mapped.record)
        except CBError as exc:
            return {"problem": exc.message}
    return mapped.record


def run_verify(gateway: Gateway, migration_id: str, headers: list[str]) -> int:
    """Compare every record the migration created with its source; 0 when all match (or,
    after a rollback, when none is left)."""
    migration = gateway.call("GET", f"/api/v1/admin/migrations/{migration_id}")
    fresh = _reread(migration, headers)
    origin = "the legacy server (re-read)" if fresh is not None else "the copies kept at import"
    print(f"migration {migration_id} into tenant {migration['tenant_id']}; sources: {origin}")
    rolled_back = migration["rolled_back"] is not None
    problems = 0
    counts = {kind: {"checked": 0, "matching": 0, "mismatched": 0, "missing": 0, "left": 0}
              for kind in legacy.KINDS}  # fmt: skip
    for record in migration["records"]:
        kind, current = record["kind"], record["current"]
        tally = counts[kind]
        tally["checked"] += 1
        label = f"{kind} {record['legacy_id']} -> {record['id']}"
        if rolled_back:
            if current is not None:
                tally["left"] += 1
                problems += 1
                print(f"LEFT      {label}: still here after the rollback")
            continue
        if current is None:
            tally["missing"] += 1
            problems += 1
            print(f"MISSING   {label}: not here (deleted since?)")
            continue
        source = record["source"]
        if fresh is not None:
            source = fresh.get(f"{kind}/{record['legacy_id']}") or source
            if fresh.get(f"{kind}/{record['legacy_id']}") is None:
                print(f"note      {label}: no longer on the legacy server; its copy is used")
        expected = expected_record(
            migration["tenant_id"], kind, source, current, migration["model_map"]
        )
        diffs = (
            [expected["problem"]] if "problem" in expected
            else legacy.differences(kind, expected, current)
        )  # fmt: skip
        if diffs:
            tally["mismatched"] += 1
            problems += 1
            print(f"MISMATCH  {label}")
            for diff in diffs:
                print(f"          {diff}")
        else:
            tally["matching"] += 1
    for kind, tally in counts.items():
        print(f"{kind}s: " + ", ".join(f"{n} {name}" for name, n in tally.items()))
    if rolled_back:
        print(f"rolled back: {'nothing' if not problems else problems} left")
    elif not migration["finished"]:
        problems += 1
        print("INCOMPLETE: the import stopped before its end; rerun it to import the rest")
    print("OK" if not problems else f"{problems} problem{'s' * (problems > 1)}")
    return 1 if problems else 0


def run_rollback(gateway: Gateway, migration_id: str) -> int:
    """Remove what the migration created; say what stays."""
    done = gateway.call("POST", f"/api/v1/admin/migrations/{migration_id}/rollback")
    removed = done["removed"]
    print(f"migration {migration_id} rolled back: " + ", ".join(
        f"{n} {kind}s removed" for kind, n in removed.items()
    ))  # fmt: skip
    for agent_id in done["agents_changed_since_import"]:
        print(f"note: agent {agent_id} had been changed since the import; it was removed too")
    kept = done["kept"]["executions_of_removed_agents"]
    print(
        f"kept: everything created since by users, including {kept} executions run on the"
        " removed agents (they stay in history)"
    )
    return 0
