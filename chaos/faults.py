"""The faults `cb chaos` injects into a running deployment through Ray (run it where the
cluster is reachable: on the head, or with `RAY_ADDRESS` and the cluster's token).

Each kills one named actor as a crash would (`ray.kill`, no restart by Ray), or stops the
event store's server for a while, or rolls the Serve application over to a new config: the
deployment has to bring back what it needs by itself.
"""

from __future__ import annotations

import random
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import ray
from ray.util.state import list_actors

from actors.names import NAMESPACE

SERVE_NAMESPACE = "serve"
ROLL_TIMEOUT_S = 300.0


@dataclass(frozen=True)
class Fault:
    """A named fault: `inject()` breaks one thing and says which."""

    name: str
    inject: Callable[[], str]


def _alive(class_part: str, namespace: str, prefix: str = "") -> list[str]:
    """Names of the live actors whose class name holds `class_part`."""
    rows = list_actors(
        filters=[("state", "=", "ALIVE"), ("ray_namespace", "=", namespace)], limit=10_000
    )
    return sorted(
        row.name
        for row in rows
        if row.name and row.name.startswith(prefix) and class_part in (row.class_name or "")
    )


def _kill_one(names: list[str], namespace: str, what: str) -> str:
    if not names:
        raise RuntimeError(f"no live {what} to kill")
    name = random.choice(names)
    ray.kill(ray.get_actor(name, namespace=namespace), no_restart=True)
    return f"killed {what} {name}"


def tenant_actor(instance: str, tenant_ids: list[str]) -> Fault:
    """One of the chaos tenants' actors, mid-execution under the load."""
    names = [f"{instance}:tenant:{t}" for t in tenant_ids]
    return Fault(
        "tenant-actor",
        lambda: _kill_one(
            [n for n in _alive("TenantActor", NAMESPACE) if n in names], NAMESPACE, "tenant actor"
        ),
    )


def provider_actor(instance: str) -> Fault:
    """One provider endpoint's actor (its permits and breaker)."""
    return Fault(
        "provider-actor",
        lambda: _kill_one(
            _alive("ProviderActor", NAMESPACE, f"{instance}:provider:"), NAMESPACE, "provider actor"
        ),
    )


def ingress_replica(application: str) -> Fault:
    """One of the application's Gateway replicas (Serve starts another)."""
    return Fault(
        "ingress-replica",
        lambda: _kill_one(
            [n for n in _alive("Gateway", SERVE_NAMESPACE) if f"{application}#Gateway" in n],
            SERVE_NAMESPACE,
            "ingress replica",
        ),
    )


def store_restart(stop: list[str], start: list[str], down_s: float) -> Fault:
    """The event store's server stopped by the operator's `stop` command, started again by
    `start` after `down_s` seconds (say, `pg_ctl stop -m immediate` and `pg_ctl start`)."""

    def inject() -> str:
        subprocess.run(stop, check=True, capture_output=True, timeout=120)
        time.sleep(down_s)
        subprocess.run(start, check=True, capture_output=True, timeout=120)
        return f"stopped the store ({' '.join(stop[:2])}…) for {down_s:g} s, then started it"

    return Fault("store-restart", inject)


def rolling_upgrade(application: str, config_path: str, dashboard_url: str) -> Fault:
    """`serve deploy` of `config_path` (new code or settings for the application), waited on
    until every Gateway replica that ran before has been replaced and the application runs."""

    def gateways() -> set[str]:
        return {n for n in _alive("Gateway", SERVE_NAMESPACE) if f"{application}#Gateway" in n}

    def inject() -> str:
        from ray import serve

        before, started = gateways(), time.monotonic()
        subprocess.run(
            [str(Path(sys.executable).parent / "serve"), "deploy", config_path,
             "--address", dashboard_url],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip
        while time.monotonic() - started < ROLL_TIMEOUT_S:
            status = serve.status().applications.get(application)
            if status is not None and status.status == "RUNNING" and not before & gateways():
                took = time.monotonic() - started
                return f"rolled {len(before)} Gateway replicas to {config_path} in {took:.1f} s"
            time.sleep(0.5)
        raise RuntimeError(f"the application did not roll over within {ROLL_TIMEOUT_S:.0f} s")

    return Fault("rolling-upgrade", inject)
