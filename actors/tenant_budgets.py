"""A tenant's budget commands, over the tenant aggregate and the runner's `BudgetLedger`.

The ledger is what admission checks (in `ExecutionRunner.begin`); the aggregate is what the
store keeps: the budgets and the thresholds crossed in their current period. What a scope
spent before this actor started is read from the execution history.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from actors.replies import unwrap
from actors.tenant_commands import TenantCommands
from domain.budgets import Budget, BudgetLedger, Crossing, agent_of, iso, period_bounds
from domain.errors import NotFound
from domain.tenant import Tenant


class TenantBudgets:
    """Set, read and remove a tenant's budgets; load them on start; record crossings."""

    def __init__(self, commands: TenantCommands) -> None:
        self.commands = commands

    @property
    def ledger(self) -> BudgetLedger:
        return self.commands.runner.budgets

    async def load(self) -> None:
        """Put the stored budgets in force, each with what its scope spent this period."""
        tenant = self.commands.tenant
        if tenant is None or not tenant.budgets:
            return
        now = time.time()
        budgets = {s: Budget.model_validate(b) for s, b in tenant.budgets.items()}
        starts = {s: period_bounds(b.period, now)[0] for s, b in budgets.items()}
        spent = await self._spent(starts)
        for scope, budget in budgets.items():
            crossed = _crossed(tenant, scope, starts[scope])
            self.ledger.set(scope, budget, now, spent[scope], crossed)

    async def put(self, scope: str, body: dict[str, Any], by: str) -> dict[str, Any]:
        """Set the scope's budget; a new one starts from what the scope spent this period."""
        tenant = self._scoped(scope)
        budget = Budget.model_validate(body)
        now = time.time()
        spent = 0.0
        if self.ledger.needs_spent(scope, budget):
            start = period_bounds(budget.period, now)[0]
            spent = (await self._spent({scope: start}))[scope]
        tenant.set_budget(scope, budget.model_dump(), by)
        await self.commands.store.save(tenant)
        start = period_bounds(budget.period, now)[0]
        self.ledger.set(scope, budget, now, spent, _crossed(tenant, scope, start))
        return self.status(scope)

    def status(self, scope: str) -> dict[str, Any]:
        self._scoped(scope)
        found = self.ledger.status(scope, time.time())
        if found is None:
            raise NotFound(f"no budget for {scope!r}")
        return found

    def listing(self) -> dict[str, Any]:
        self.commands.require_tenant()
        now = time.time()
        return {"budgets": [self.ledger.status(s, now) for s in self.ledger.scopes]}

    async def remove(self, scope: str, by: str) -> dict[str, Any]:
        tenant = self.commands.require_tenant()
        tenant.remove_budget(scope, by)
        await self.commands.store.save(tenant)
        self.ledger.remove(scope)
        return {"scope": scope, "removed": True}

    def record(self, crossings: list[Crossing]) -> asyncio.Future[None]:
        """Record thresholds crossed (queued for the store at once, in order)."""
        tenant = self.commands.require_tenant()
        for c in crossings:
            tenant.cross_budget_threshold(
                c.scope, c.threshold, c.period_start, c.spent_usd, c.limit_usd
            )
        return self.commands.store.save(tenant)

    def _scoped(self, scope: str) -> Tenant:
        """The tenant; NotFound for an agent scope naming no agent of it."""
        tenant = self.commands.require_tenant()
        agent_id = agent_of(scope)
        if agent_id is not None:
            self.commands.agent(agent_id)
        return tenant

    async def _spent(self, since: dict[str, float]) -> dict[str, float]:
        projection = self.commands.runner.peers.projection()
        tenant_id = self.commands.tenant_id
        return unwrap(await projection.budget_spent.remote(tenant_id, since))


def _crossed(tenant: Tenant, scope: str, period_start: float) -> tuple[float, ...]:
    """The thresholds the tenant recorded as crossed for `scope` in the period starting at
    `period_start`."""
    known = tenant.budget_crossings.get(scope)
    if not known or known["period_start"] != iso(period_start):
        return ()
    return tuple(known["thresholds"])
