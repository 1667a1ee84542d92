"""How fast `cb migrate` moves a legacy system's data: import, verify and rollback of a
generated legacy export (`--agents` agents, `--executions` executions) through a real gateway,
beside the floor of the same run — reading the export from a stand-in legacy GraphQL server
(`tests/support/legacy_server.py`), which every import does first.

    python bench/bench_migration.py [--agents 50] [--executions 5000] [--postgres URL]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx

from bench.bench_execute import machine, run_with_services, wait_http

FIXTURE = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "legacy_system.json"


def export(agents: int, executions: int) -> dict[str, list[dict[str, Any]]]:
    """A legacy export shaped like the fixture: agents, one configuration each, executions."""
    base = json.loads(FIXTURE.read_text())
    agent, config, run = base["agents"][0], base["stateAgentConfigs"][0], base["executions"][0]
    made: dict[str, list[dict[str, Any]]] = {"agents": [], "stateAgentConfigs": [],
                                             "executions": []}  # fmt: skip
    for i in range(agents):
        made["agents"].append({**agent, "id": f"agent-{i}", "name": f"Agent {i}"})
        made["stateAgentConfigs"].append(
            {**config, "id": f"cfg-{i}", "agentId": f"agent-{i}", "stateId": f"state-{i}"}
        )
    for i in range(executions):
        made["executions"].append({**run, "id": f"exec-{i}", "agentId": f"agent-{i % agents}",
                                   "resourceId": f"res-{i % 100}", "stateId": f"state-{i % agents}"})  # fmt: skip  # noqa: E501
    return made


def _timed(argv: list[str]) -> tuple[float, int, str]:
    import cli

    out = io.StringIO()
    start = time.perf_counter()
    with contextlib.redirect_stdout(out):
        status = cli.main(argv)
    return time.perf_counter() - start, status, out.getvalue()


async def bench(args: argparse.Namespace, svc: dict[str, Any]) -> dict[str, Any]:
    from tests.support.legacy_server import LegacyServer

    gateway, token = svc["gateway"], svc["admin_token"]
    os.environ["CB_ADMIN_TOKEN"] = token
    await wait_http(f"{gateway}/health", svc["procs"][-1], 240)
    admin = {"Authorization": f"Bearer {token}"}
    tenant = httpx.post(
        f"{gateway}/api/v1/admin/tenants", json={"name": "bench"}, headers=admin, timeout=60
    ).json()
    data = export(args.agents, args.executions)
    records = args.agents * 2 + args.executions
    figures: dict[str, Any] = {"records": records}
    with LegacyServer(data) as legacy:
        resources = Path(svc["tmp"]) / "resources.txt"
        resources.write_text("\n".join(f"res-{i}" for i in range(100)))
        from migration.legacy_source import LegacyGraphQL

        source = LegacyGraphQL(legacy.url, {})
        start = time.perf_counter()
        source.read([], resources.read_text().split(), [])
        figures["read_legacy_s"] = time.perf_counter() - start
        source.close()
        common = ["--gateway", gateway]
        seconds, status, out = _timed(
            ["migrate", "import", "--from-graphql", legacy.url, "--tenant",
             tenant["tenant"]["id"], "--resources", str(resources), *common]
        )  # fmt: skip
        assert status == 0, out[-2000:]
        migration = out.strip().splitlines()[-1].split()[1]
        figures["import_s"] = seconds
        for step, argv in (
            ("rerun_s", ["migrate", "import", "--from-graphql", legacy.url, "--tenant",
                         tenant["tenant"]["id"], "--resources", str(resources), *common]),
            ("verify_s", ["migrate", "verify", migration, *common]),
            ("rollback_s", ["migrate", "rollback", migration, *common]),
        ):  # fmt: skip
            seconds, status, out = _timed(argv)
            assert status == 0, out[-2000:]
            figures[step] = seconds
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=50)
    parser.add_argument("--executions", type=int, default=5000)
    parser.add_argument("--postgres", metavar="URL", help="CB_DATABASE_URL for the gateway")
    args = parser.parse_args(argv)
    args.skip_gateway, args.otlp, args.mode, args.emulator_script = False, None, "direct", None

    async def with_tmp(a: argparse.Namespace, svc: dict[str, Any]) -> dict[str, Any]:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            return await bench(a, {**svc, "tmp": tmp})

    result = run_with_services(args, with_tmp)
    if result is None:
        return 1
    meta = {**machine(), "store": "postgres" if args.postgres else "sqlite"}
    print(json.dumps(meta))
    n = result["records"]
    print(f"{'step':28} {'seconds':>8} {'records/s':>10}")
    for step in ("read_legacy_s", "import_s", "rerun_s", "verify_s", "rollback_s"):
        seconds = result[step]
        print(f"{step[:-2]:28} {seconds:8.2f} {n / seconds:10.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
