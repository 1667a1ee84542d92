"""`cb migrate …`: the command line of the migration tools (docs/migration.md)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from migration.legacy_source import LegacyGraphQL, SourceUnavailable, header_pairs, read_file


def add_parser(commands: Any, default_url: str) -> None:
    """The `migrate` command and its subcommands."""
    migrate = commands.add_parser("migrate", help="move from the legacy system")
    sub = migrate.add_subparsers(dest="action", required=True)

    def gateway_option(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--gateway", default=default_url, help="this gateway's URL")

    imp = sub.add_parser("import", help="import legacy agents, configurations, executions")
    source = imp.add_mutually_exclusive_group(required=True)
    source.add_argument("--from-graphql", metavar="URL", help="a running legacy server's /graphql")
    source.add_argument("--from-file", type=Path, metavar="FILE", help="the queries' results")
    imp.add_argument("--tenant", required=True)
    imp.add_argument("--legacy-header", action="append", default=[], metavar="'Name: value'")
    imp.add_argument("--executions", type=Path, metavar="FILE", help="execution ids, one a line")
    imp.add_argument("--resources", type=Path, metavar="FILE", help="resource ids, one a line")
    imp.add_argument("--states", type=Path, metavar="FILE", help="state ids, one a line")
    imp.add_argument("--model-map", action="append", default=[], metavar="OLD=NEW")
    imp.add_argument("--dry-run", action="store_true", help="print the plan, import nothing")
    gateway_option(imp)

    verify = sub.add_parser("verify", help="compare what a migration imported with its source")
    verify.add_argument("migration_id")
    verify.add_argument("--legacy-header", action="append", default=[], metavar="'Name: value'")
    gateway_option(verify)

    rollback = sub.add_parser("rollback", help="remove what a migration created")
    rollback.add_argument("migration_id")
    gateway_option(rollback)

    config = sub.add_parser("config", help="legacy llmProviders as this project's configuration")
    origin = config.add_mutually_exclusive_group(required=True)
    origin.add_argument("--from-graphql", metavar="URL")
    origin.add_argument("--from-file", type=Path, metavar="FILE")
    config.add_argument("--legacy-header", action="append", default=[], metavar="'Name: value'")
    config.add_argument("--out", type=Path, help="write here (default: print)")

    compare = sub.add_parser("compare", help="an agent operation over GraphQL and REST, timed")
    compare.add_argument("agent_id")
    compare.add_argument("--operation", choices=("get", "execute"), default="get")
    compare.add_argument("-n", "--times", type=int, default=20)
    compare.add_argument("--graphql", metavar="URL", help="default: the gateway's /graphql")
    compare.add_argument("--prompt", default="Say hello.")
    compare.add_argument("--api-key", default=os.environ.get("CB_API_KEY"))
    compare.add_argument("--tenant", default=os.environ.get("CB_TENANT_ID"))
    gateway_option(compare)

    ops = sub.add_parser("check-ops", help="validate GraphQL operations in client code")
    ops.add_argument("paths", nargs="+")
    ops.add_argument("--schema", help="a gateway URL or an SDL file (default: the packaged SDL)")
    ops.add_argument("--json", action="store_true")

    code = sub.add_parser("code", help="rewrite legacy SDK calls for the new SDKs")
    code.add_argument("paths", nargs="+")
    code.add_argument("--write", action="store_true", help="apply (default: print a diff)")


def run(args: argparse.Namespace) -> int:
    """Run a `migrate` subcommand; its exit status."""
    from migration import code_rewrite, graphql_ops  # the client tools

    if args.action == "check-ops":
        return graphql_ops.check_ops_main(args.paths, args.schema, args.json)
    if args.action == "code":
        return code_rewrite.code_main(args.paths, args.write)
    try:
        return _data_command(args)
    except SourceUnavailable as exc:
        print(f"error: {exc}")
        return 2


def _data_command(args: argparse.Namespace) -> int:
    from migration import data_migration as data
    from migration.compare import run_compare
    from migration.provider_config import config_from_providers, render

    if args.action == "config":
        if args.from_file is not None:
            providers = read_file(args.from_file).get("llmProviders") or []
        else:
            server = LegacyGraphQL(args.from_graphql, header_pairs(args.legacy_header))
            try:
                providers = server.providers()
            finally:
                server.close()
        text, problems = render(*config_from_providers(providers))
        if args.out:
            args.out.write_text(text)
            print(f"wrote {args.out}")
        else:
            print(text, end="")
        for problem in problems:
            print(f"problem: {problem}")
        return 1 if problems else 0
    if args.action == "compare":
        headers = {"Authorization": f"Bearer {args.api_key}"} if args.api_key else {}
        if args.tenant:
            headers["X-Tenant-ID"] = args.tenant
        return run_compare(args.gateway, headers, args.agent_id, args.operation, args.times,
                           args.graphql, args.prompt)  # fmt: skip
    token = os.environ.get("CB_ADMIN_TOKEN")
    if not token:
        print("error: set CB_ADMIN_TOKEN to the gateway's admin token")
        return 2
    gateway = data.Gateway(args.gateway, token)
    try:
        if args.action == "import":
            options = data.ImportOptions(
                tenant=args.tenant, from_graphql=args.from_graphql, from_file=args.from_file,
                legacy_headers=args.legacy_header, executions=args.executions,
                resources=args.resources, states=args.states, model_map=args.model_map,
                dry_run=args.dry_run,
            )  # fmt: skip
            return data.run_import(gateway, options)
        if args.action == "verify":
            return data.run_verify(gateway, args.migration_id, args.legacy_header)
        return data.run_rollback(gateway, args.migration_id)
    except data.GatewayError as exc:
        print(f"error: {exc}")
        return 2
