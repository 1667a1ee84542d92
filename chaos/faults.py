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
RUNNING_WAIT_S = 10.0  # for a chaos tenant with an execution running
FRESH_S = 0.1  # a stream started this recently has most of its run ahead


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


def tenant_actor(
    instance: str,
    tenant_ids: list[str],
    running: Callable[[float], list[str]],
    wait_s: float = RUNNING_WAIT_S,
) -> Fault:
    """One of the chaos tenants' actors, mid-execution: one whose tenant has a stream that
    started under `FRESH_S` ago (`running(FRESH_S)`: recorded as started, not ended), if one
    does within `wait_s`."""

    def inject() -> str:
        by_name = {f"{instance}:tenant:{t}": t for t in tenant_ids}
        alive = {n: ray.get_actor(n, namespace=NAMESPACE) for n in _alive("TenantActor", NAMESPACE)
                 if n in by_name}  # fmt: skip
        if not alive:
            raise RuntimeError("no live tenant actor to kill")
        deadline = time.monotonic() + wait_s
        chosen = random.choice(list(alive))
        while time.monotonic() < deadline:
            busy = set(running(FRESH_S))
            if busy_names := [n for n in alive if by_name[n] in busy]:
                chosen = random.choice(busy_names)
                break
            time.sleep(0.002)
        ray.kill(alive[chosen], no_restart=True)
        return f"killed tenant actor {chosen}"

    return Fault("tenant-actor", inject)


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
