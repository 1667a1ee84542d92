"""A chaos run: for each fault, a phase of load on fresh tenants with the fault injected a
third of the way in, then the account of every request (`chaos.load`). `cb chaos` prints
the table; `tests/chaos/` holds `lost` to 0."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from chaos import faults
from chaos.load import RESTARTED, Tally, Target, account, drive, make_tenants

FAULTS = ("tenant-actor", "provider-actor", "ingress-replica")
STORE_FAULT = "store-restart"  # needs --store-stop and --store-start
UPGRADE_FAULT = "rolling-upgrade"  # needs --upgrade-config
ON_REQUEST = (STORE_FAULT, UPGRADE_FAULT)  # run only when named


@dataclass
class PhaseReport:
    """One fault's phase: what was done, what the clients saw, what the store holds."""

    fault: str
    injected: list[str] = field(default_factory=list)
    clients: dict[str, int] = field(default_factory=dict)
    store: dict[str, int] = field(default_factory=dict)
    latency: dict[str, float] = field(default_factory=dict)  # the clients' requests, seconds

    @property
    def lost(self) -> int:
        return self.store.get("lost", 0)


# a fault made for the phase's tenants (their ids) and `Tally.running` (which of them have a
# stream that started within so many seconds and runs now)
MakeFault = Callable[[list[str], Callable[[float], list[str]]], faults.Fault]


def run_phase(
    target: Target,
    make_fault: MakeFault,
    *,
    tenants: int = 4,
    workers: int = 8,
    seconds: float = 15.0,
    model: str = "gpt-4.1-mini",
) -> PhaseReport:
    """Load for `seconds` on `tenants` new tenants, with `make_fault(their ids, running)`
    injected a third of the way in."""
    chaos_tenants = make_tenants(target, tenants, model)
    tally, stop = Tally(), threading.Event()
    fault = make_fault([t.tenant_id for t in chaos_tenants], tally.running)
    report = PhaseReport(fault.name)
    threads = drive(target, chaos_tenants, stop, tally, workers)
    try:
        time.sleep(seconds / 3)
        report.injected.append(fault.inject())
        time.sleep(seconds * 2 / 3)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=180)
    report.clients = dict(sorted(tally.outcomes.items()))
    report.latency = tally.latency()
    report.store = account(target, chaos_tenants)
    return report


def table(reports: list[PhaseReport]) -> str:
    """The reports as a Markdown table."""
    lines = [
        "| fault | requests | completed | after a restart | after a retry | failed (typed) | "
        "other | recorded | lost | p50 / p99 / slowest s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in reports:
        done = r.clients.get("completed", 0)
        restarted = r.clients.get(RESTARTED, 0)
        retried = r.clients.get("completed_after_retry", 0)
        other = {
            k: v
            for k, v in r.clients.items()
            if k not in ("completed", RESTARTED, "completed_after_retry")
        }
        typed = {
            k: v
            for k, v in other.items()
            if not k.startswith(("untyped", "transport", "stream_cut"))
        }
        untyped = {k: v for k, v in other.items() if k not in typed}
        lines.append(
            f"| {r.fault} | {sum(r.clients.values())} | {done} | {restarted} | {retried} | "
            f"{_counts(typed)} | {_counts(untyped)} | {r.store.get('recorded', 0)} | {r.lost} | "
            + " / ".join(str(r.latency.get(k, 0)) for k in ("p50_s", "p99_s", "max_s"))
            + " |"
        )
    return "\n".join(lines)


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in counts.items()) or "0"


def add_parser(commands: Any, default_url: str) -> None:
    chaos = commands.add_parser(
        "chaos", help="load a running deployment while killing one thing at a time"
    )
    chaos.add_argument("faults", nargs="*", metavar="FAULT", help=f"default: {' '.join(FAULTS)}")
    chaos.add_argument("--url", default=default_url, help="the gateway")
    chaos.add_argument("--admin-token", help="default: CB_ADMIN_TOKEN")
    chaos.add_argument("--instance", default=os.environ.get("CB_INSTANCE", "cb"))
    chaos.add_argument("--application", default="circuitbreaker", help="the Serve application")
    chaos.add_argument("--model", default="gpt-4.1-mini")
    chaos.add_argument("--tenants", type=int, default=4)
    chaos.add_argument("--workers", type=int, default=8, help="client threads")
    chaos.add_argument("--seconds", type=float, default=15.0, help="per fault")
    chaos.add_argument("--json", action="store_true", help="the reports as JSON")
    chaos.add_argument(
        "--store-stop", help=f"{STORE_FAULT}: the shell command that stops the store's server"
    )
    chaos.add_argument("--store-start", help=f"{STORE_FAULT}: the one that starts it again")
    chaos.add_argument(
        "--store-down-s", type=float, default=5.0, help=f"{STORE_FAULT}: seconds between them"
    )
    chaos.add_argument(
        "--upgrade-config", help=f"{UPGRADE_FAULT}: the Serve config file to roll over to"
    )
    chaos.add_argument(
        "--dashboard-url",
        default=os.environ.get("RAY_DASHBOARD_ADDRESS", "http://127.0.0.1:8265"),
        help=f"{UPGRADE_FAULT}: where `serve deploy` reaches the cluster",
    )


def command(args: argparse.Namespace) -> int:
    """`cb chaos`: connects to the Ray cluster (`RAY_ADDRESS`, default auto), runs each fault's
    phase, prints the table; exits 1 if any execution was lost."""
    import ray

    token = args.admin_token or os.environ.get("CB_ADMIN_TOKEN")
    if not token:
        raise SystemExit("cb chaos: give --admin-token or set CB_ADMIN_TOKEN")
    unknown = set(args.faults) - {*FAULTS, *ON_REQUEST}
    if unknown:
        known = (*FAULTS, *ON_REQUEST)
        raise SystemExit(f"cb chaos: unknown fault(s) {sorted(unknown)}; known: {known}")
    if STORE_FAULT in args.faults and not (args.store_stop and args.store_start):
        raise SystemExit(f"cb chaos: {STORE_FAULT} needs --store-stop and --store-start")
    if UPGRADE_FAULT in args.faults and not args.upgrade_config:
        raise SystemExit(f"cb chaos: {UPGRADE_FAULT} needs --upgrade-config")
    if not ray.is_initialized():
        ray.init(
            address=os.environ.get("RAY_ADDRESS", "auto"),
            logging_level="ERROR",
            log_to_driver=False,
        )
    target = Target(args.url.rstrip("/"), token)
    makers: dict[str, MakeFault] = {
        "tenant-actor": lambda ids, running: faults.tenant_actor(args.instance, ids, running),
        "provider-actor": lambda *_: faults.provider_actor(args.instance),
        "ingress-replica": lambda *_: faults.ingress_replica(args.application),
        STORE_FAULT: lambda *_: faults.store_restart(
            shlex.split(args.store_stop or ""), shlex.split(args.store_start or ""),
            args.store_down_s,
        ),
        UPGRADE_FAULT: lambda *_: faults.rolling_upgrade(
            args.application, args.upgrade_config or "", args.dashboard_url
        ),
    }  # fmt: skip
    reports = [
        run_phase(
            target,
            makers[name],
            tenants=args.tenants,
            workers=args.workers,
            seconds=args.seconds,
            model=args.model,
        )
        for name in args.faults or FAULTS
    ]
    if args.json:
        print(json.dumps([r.__dict__ for r in reports], indent=2))
    else:
        print(table(reports))
        for r in reports:
            print(f"{r.fault}: {'; '.join(r.injected)}")
    return 1 if any(r.lost for r in reports) else 0
