"""The project's command line (`python cli.py …`, or `cb …` once installed).

`validate-config FILE` checks a configuration file; `install-reference-agents TENANT` installs
the four reference agents for a tenant through a running server's admin API;
`rotate-master-key` re-encrypts what is sealed at rest under a new master key, offline;
`projections rebuild [NAME]` refolds read models from the events; `analyst create-role` /
`drop-role` manage PostgreSQL logins that read one tenant's analytics; `migrate …` moves a
legacy system's data and client code over (docs/migration.md); `scenarios list` / `run
[NAME …]` runs the PED's §13 scenarios (`scenarios/*.json`) against a tenant and prints the
answers, tool calls, usage and cost.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import ssl
import sys
from pathlib import Path
from typing import Any

import httpx
import yaml

from actors.log_setup import configure_logging
from chaos.run import add_parser as add_chaos_parser
from chaos.run import command as chaos_command
from domain.config import parse_config
from domain.config_check import config_problems
from domain.scenarios import Scenario, report
from migration.commands import add_parser as add_migrate_parser
from migration.commands import run as run_migrate

DEFAULT_CONFIG = Path(__file__).resolve().parent / "config" / "default.yaml"
SCENARIOS = Path(__file__).resolve().parent / "scenarios"


def validate_config(path: str) -> int:
    """Print whether the file is a valid configuration, and every problem with its path."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        print(f"{path}: cannot read: {exc.strerror or exc}")
        return 1
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        print(f"{path}: 1 problem\n  (yaml): {where}{problem}")
        return 1
    problems = config_problems(data if data is not None else {})
    if problems:
        print(f"{path}: {len(problems)} problem{'s' if len(problems) > 1 else ''}")
        for problem in problems:
            print(f"  {problem}")
        return 1
    config = parse_config(data)
    print(
        f"{path}: OK ({len(config.providers)} providers, {len(config.models)} models, "
        f"{len(config.virtual_models)} virtual models)"
    )
    return 0


def install_reference_agents(
    url: str, admin_token: str, tenant_id: str, *, verify: ssl.SSLContext | bool = True
) -> list[dict[str, Any]]:
    """Install the reference agents for `tenant_id` (idempotent); the agents as stored.
    `verify` is httpx's: True, or an `ssl.SSLContext` for an https `url`."""
    reply = httpx.post(
        f"{url.rstrip('/')}/api/v1/admin/tenants/{tenant_id}/reference-agents",
        headers={"Authorization": f"Bearer {admin_token}"},
        timeout=60,
        verify=verify,
    )
    if reply.status_code != 200:
        raise RuntimeError(f"{reply.status_code}: {reply.text[:500]}")
    return list(reply.json()["agents"])


def ensure_demo_tenant(
    url: str, admin_token: str, data_dir: Path, *, verify: ssl.SSLContext | bool = True
) -> dict[str, Any]:
    """The demo tenant of the embedded default, with the reference agents installed.

    Made on first start; its id and API key are kept in `data_dir/demo-tenant.json` (mode
    0600, beside the master key), never printed.
    """
    path = data_dir / "demo-tenant.json"
    if path.exists():
        demo = json.loads(path.read_text(encoding="utf-8"))
    else:
        reply = httpx.post(
            f"{url.rstrip('/')}/api/v1/admin/tenants",
            headers={"Authorization": f"Bearer {admin_token}"},
            json={"name": "Demo"},
            timeout=60,
            verify=verify,
        )
        if reply.status_code != 201:
            raise RuntimeError(f"{reply.status_code}: {reply.text[:500]}")
        created = reply.json()
        demo = {"tenant_id": created["tenant"]["id"], "api_key": created["api_key"]}
        path.touch(mode=0o600)
        path.write_text(json.dumps(demo, indent=2) + "\n", encoding="utf-8")
    agents = install_reference_agents(url, admin_token, demo["tenant_id"], verify=verify)
    return {**demo, "agents": {agent["name"]: agent["id"] for agent in agents}}


def load_scenarios(directory: Path = SCENARIOS) -> list[Scenario]:
    """Every scenario file, by name."""
    found = [json.loads(p.read_text(encoding="utf-8")) for p in sorted(directory.glob("*.json"))]
    return [Scenario.of(doc) for doc in found]


def tenant_credentials(tenant_id: str | None, api_key: str | None) -> tuple[str, str] | None:
    """The tenant to run as: given, from CB_TENANT_ID / CB_API_KEY, or the embedded
    default's demo tenant (`$CB_DATA_DIR/demo-tenant.json`)."""
    tenant_id = tenant_id or os.environ.get("CB_TENANT_ID")
    api_key = api_key or os.environ.get("CB_API_KEY")
    if tenant_id and api_key:
        return tenant_id, api_key
    demo = Path(os.environ.get("CB_DATA_DIR", "./data")) / "demo-tenant.json"
    if demo.exists():
        found = json.loads(demo.read_text(encoding="utf-8"))
        return found["tenant_id"], found["api_key"]
    return None


def run_scenarios(url: str, tenant_id: str, api_key: str, names: list[str]) -> int:
    """Run the named scenarios (all when none) as the tenant; print each one's report.
    0 when every one completed."""
    scenarios = load_scenarios()
    unknown = sorted(set(names) - {s.name for s in scenarios})
    if unknown:
        print(f"unknown scenarios {unknown}; known: {[s.name for s in scenarios]}")
        return 2
    chosen = [s for s in scenarios if not names or s.name in names]
    headers = {"X-Tenant-ID": tenant_id, "Authorization": f"Bearer {api_key}"}
    with httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=600) as http:
        listed = http.get("/api/v1/agents")
        if listed.status_code != 200:
            print(f"cannot list the tenant's agents: {listed.status_code} {listed.text[:300]}")
            return 1
        agent_ids = {a["name"]: a["id"] for a in listed.json()["agents"]}
        missing = sorted({n for s in chosen for n in s.agents()} - set(agent_ids))
        if missing:
            print(f"the tenant lacks {missing}: cb install-reference-agents {tenant_id}")
            return 1
        failed = 0
        for scenario in chosen:
            if scenario.agent is not None:
                path = f"/api/v1/agents/{agent_ids[scenario.agent]}/execute"
                reply = http.post(path, json=scenario.execute_body())
            else:
                reply = http.post("/api/v1/collaborations/run", json=scenario.run_body(agent_ids))
            result = reply.json()
            print("\n".join(report(scenario, result)), flush=True)
            failed += result.get("status") != "completed"
    return 1 if failed else 0


def rotate_key(new_key_file: Path | None, force: bool, host: str, port: int) -> int:
    """Run the offline rotation; refuses while something serves on the server's port."""
    from actors.key_rotation import rotate_master_key
    from actors.settings import Settings

    if not force and _port_answers(host, port):
        print(f"something serves on {host}:{port}: stop the server first (or --force)")
        return 1
    try:
        done = rotate_master_key(Settings.from_env(), new_key_file)
    except (ValueError, RuntimeError) as exc:
        print(f"could not rotate the master key: {exc}")
        return 1
    print(
        f"re-encrypted {done.sealed_secrets} sealed secrets and {done.events} events, "
        f"{done.history_values} history values (inputs, results, errors); "
        f"the new key is in {done.key_file}"
    )
    return 0


def rebuild_projections(names: list[str]) -> int:
    """Refold the named projections (all when none is named) from the event store."""
    from actors.event_store import EventStore
    from actors.payload_keys import PayloadKeys
    from actors.secrets import SecretBox
    from actors.settings import Settings
    from projections import history, runner
    from projections.db import ReadModelDB

    unknown = [n for n in names if n not in runner.PROJECTIONS]
    if unknown:
        print(f"unknown projection {unknown[0]!r}; known: {', '.join(runner.PROJECTIONS)}")
        return 2
    settings = Settings.from_env()
    app = EventStore(env=settings.store_env())
    keys = PayloadKeys(settings)
    app.use_payload_keys(keys)  # payloads open (or read as erased) as the server reads them
    history.seal_results_with(SecretBox(settings) if settings.encrypt_payloads else None)
    history.seal_payloads_with(keys)
    try:
        for name in names or list(runner.PROJECTIONS):
            projection = runner.PROJECTIONS[name]
            db = ReadModelDB(settings.read_model_url(), schema=projection.schema)
            try:
                runner.create_tables(db, projection)
                read = runner.rebuild(app, db, projection)
            finally:
                db.close()
            print(f"{name}: rebuilt from {read} events")
    finally:
        app.close()
        keys.close()
    return 0


def analyst_role(action: str, tenant_id: str | None, name: str) -> int:
    """Create (printing its URL last) or drop an analyst's PostgreSQL role."""
    from projections import analyst_roles

    url = os.environ.get("CB_DATABASE_URL")
    if not url or not url.startswith("postgres"):
        print("set CB_DATABASE_URL to the PostgreSQL database (analyst roles need PostgreSQL)")
        return 2
    try:
        if action == "create-role":
            if not tenant_id:
                print("--tenant is required")
                return 2
            login = analyst_roles.create_role(url, tenant_id, name)
            print(f"role {name} reads tenant {tenant_id}'s analytics; its connection URL:")
            print(login)
        else:
            analyst_roles.drop_role(url, name)
            print(f"role {name} dropped")
    except ValueError as exc:
        print(f"refused: {exc}")
        return 2
    except Exception as exc:  # psycopg's errors: say which, never the URL (it has secrets)
        print(f"could not {action.replace('-', ' ')}: {type(exc).__name__}: {exc}")
        return 1
    return 0


def _port_answers(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def scenarios_command(args: argparse.Namespace) -> int:
    if args.action == "list":
        for scenario in load_scenarios():
            runs = scenario.agent or " -> ".join(scenario.agents())
            print(f"{scenario.name}  [{runs}]  {scenario.description}")
        return 0
    credentials = tenant_credentials(args.tenant, args.api_key)
    if credentials is None:
        print("say which tenant: --tenant and --api-key (or CB_TENANT_ID and CB_API_KEY)")
        return 2
    try:
        return run_scenarios(args.url, *credentials, args.names)
    except httpx.HTTPError as exc:
        print(f"could not reach {args.url}: {exc}")
        return 1


def main(argv: list[str] | None = None) -> int:
    configure_logging(None, "cli")  # log lines on stderr; a command's answer on stdout
    parser = argparse.ArgumentParser(prog="cb", description="Circuit Breaker tools.")
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("validate-config", help="validate a configuration file")
    check.add_argument("path", nargs="?", default=os.environ.get("CB_CONFIG", str(DEFAULT_CONFIG)))
    install = commands.add_parser(
        "install-reference-agents",
        help="install the four reference agents for a tenant (needs CB_ADMIN_TOKEN)",
    )
    install.add_argument("tenant_id")
    host, port = os.environ.get("CB_HOST", "127.0.0.1"), os.environ.get("CB_PORT", "8000")
    install.add_argument("--url", default=f"http://{host}:{port}", help="the running server")
    rotate = commands.add_parser(
        "rotate-master-key",
        help="re-encrypt every secret (and encrypted payload) under a new master key; "
        "stop the server first",
    )
    rotate.add_argument("--new-key-file", type=Path, help="write the new key here instead")
    rotate.add_argument("--force", action="store_true", help="even if the port answers")
    projections = commands.add_parser("projections", help="read models")
    projection_commands = projections.add_subparsers(dest="action", required=True)
    rebuild = projection_commands.add_parser(
        "rebuild", help="refold read models from the events (all, or the one named)"
    )
    rebuild.add_argument("names", nargs="*", metavar="NAME", help="read_models, metrics")
    analyst = commands.add_parser("analyst", help="PostgreSQL roles for analysts")
    analyst_commands = analyst.add_subparsers(dest="action", required=True)
    create_role = analyst_commands.add_parser(
        "create-role", help="a login that reads one tenant's analytics schema rows only"
    )
    create_role.add_argument("--tenant", required=True)
    create_role.add_argument("--name", required=True)
    drop_role = analyst_commands.add_parser("drop-role", help="drop an analyst's role")
    drop_role.add_argument("--name", required=True)
    scenarios = commands.add_parser("scenarios", help="the PED's test scenarios")
    scenario_commands = scenarios.add_subparsers(dest="action", required=True)
    scenario_commands.add_parser("list", help="the scenarios and what each runs")
    run_scenario = scenario_commands.add_parser(
        "run", help="run scenarios (all, or those named) as a tenant and print the answers"
    )
    run_scenario.add_argument("names", nargs="*", metavar="NAME")
    run_scenario.add_argument("--url", default=f"http://{host}:{port}", help="the running server")
    run_scenario.add_argument("--tenant", help="default: CB_TENANT_ID, else the demo tenant")
    run_scenario.add_argument("--api-key", help="default: CB_API_KEY, else the demo tenant's")
    add_migrate_parser(commands, f"http://{host}:{port}")
    add_chaos_parser(commands, f"http://{host}:{port}")
    args = parser.parse_args(argv)
    if args.command == "chaos":
        return chaos_command(args)
    if args.command == "scenarios":
        return scenarios_command(args)
    if args.command == "migrate":
        return run_migrate(args)
    if args.command == "projections":
        return rebuild_projections(args.names)
    if args.command == "analyst":
        return analyst_role(args.action, getattr(args, "tenant", None), args.name)
    if args.command == "rotate-master-key":
        return rotate_key(args.new_key_file, args.force, host, int(port))
    if args.command == "validate-config":
        return validate_config(args.path)
    if args.command == "install-reference-agents":
        token = os.environ.get("CB_ADMIN_TOKEN")
        if not token:
            print("set CB_ADMIN_TOKEN to the server's admin token")
            return 2
        try:
            agents = install_reference_agents(args.url, token, args.tenant_id)
        except (httpx.HTTPError, RuntimeError) as exc:
            print(f"could not install the reference agents: {exc}")
            return 1
        for agent in agents:
            print(f"{agent['id']}  {agent['name']}  ({agent['model']})")
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
