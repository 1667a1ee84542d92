"""Spending budgets and the ledger that enforces them (time is passed in).

A budget caps what a scope — the whole tenant (`tenant`) or one agent (`agent:<id>`) —
spends in USD per UTC calendar day or month. A `hard` budget refuses an execution whose
worst-case cost would take it over; a `soft` one only alerts. Each threshold (a fraction of
the limit) alerts once per period. The tenant's actor owns the one ledger of its tenant, so
a hard budget holds however many ingress replicas there are.

Amounts are kept in whole nano-dollars (costs are rounded to a billionth of a dollar), so
sums are exact and a limit is reached exactly.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from domain.config import ModelSpec
from domain.errors import BudgetExceeded, InvalidRequest
from domain.pricing import cost_usd
from domain.times import iso

Period = Literal["day", "month"]
Enforcement = Literal["hard", "soft"]
DEFAULT_THRESHOLDS = (0.5, 0.8, 1.0)
MAX_THRESHOLD = 10.0
TENANT_SCOPE = "tenant"
AGENT_PREFIX = "agent:"
_AGENT_ID = re.compile(r"^[A-Za-z0-9-]{1,64}$")
NANO = 1_000_000_000


class Budget(BaseModel):
    """What `PUT /api/v1/budgets/{scope}` takes: a limit per period, how it is enforced, and
    the fractions of the limit that alert."""

    model_config = ConfigDict(extra="forbid")

    limit_usd: float = Field(gt=0, le=1_000_000_000)
    period: Period
    enforcement: Enforcement = "hard"
    thresholds: list[float] = Field(default_factory=lambda: list(DEFAULT_THRESHOLDS), max_length=20)

    @field_validator("thresholds")
    @classmethod
    def _fractions(cls, value: list[float]) -> list[float]:
        """Each in (0, 10], sorted, each once."""
        for threshold in value:
            if not 0 < threshold <= MAX_THRESHOLD:
                raise ValueError(f"each threshold is a fraction in (0, {MAX_THRESHOLD:g}]")
        return sorted(set(value))


def parse_scope(text: str) -> str:
    """`tenant` or `agent:<agent id>`, else InvalidRequest naming `scope`."""
    if text == TENANT_SCOPE:
        return text
    if text.startswith(AGENT_PREFIX) and _AGENT_ID.match(text[len(AGENT_PREFIX) :]):
        return text
    raise InvalidRequest(
        f"scope must be 'tenant' or 'agent:<agent_id>', not {text[:80]!r}",
        details={"param": "scope"},
    )


def agent_of(scope: str) -> str | None:
    """The agent id of an `agent:<id>` scope; None for `tenant`."""
    return scope[len(AGENT_PREFIX) :] if scope.startswith(AGENT_PREFIX) else None


def scopes_of(agent_id: str) -> tuple[str, ...]:
    """The scopes an execution's cost counts against: the tenant's, and its agent's if any."""
    return (TENANT_SCOPE, AGENT_PREFIX + agent_id) if agent_id else (TENANT_SCOPE,)


def period_bounds(period: Period, now: float) -> tuple[float, float]:
    """Start and end (unix seconds) of the UTC day or month that holds `now`."""
    at = datetime.fromtimestamp(now, UTC)
    if period == "day":
        start = at.replace(hour=0, minute=0, second=0, microsecond=0)
        end = start + timedelta(days=1)
    else:
        start = at.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        end = start.replace(year=start.year + start.month // 12, month=start.month % 12 + 1)
    return start.timestamp(), end.timestamp()


def worst_cost(model: ModelSpec, prompt_tokens: int, max_tokens: int | None) -> float:
    """The most one call to `model` can cost: the prompt, and an answer of `max_tokens` (the
    model's own ceiling when unset)."""
    return cost_usd(model, prompt_tokens, max_tokens or model.max_output_tokens)


def _nano(usd: float) -> int:
    return round(usd * NANO)


def _usd(nano: int) -> float:
    return round(nano / NANO, 9)


@dataclass(frozen=True)
class Crossing:
    """A threshold a scope's spending reached in a period (what `BudgetThresholdCrossed`
    records)."""

    scope: str
    threshold: float
    period_start: str  # ISO 8601 UTC
    spent_usd: float
    limit_usd: float


@dataclass
class Reservation:
    """What one execution holds: per scope, the account it was held in (by epoch), that
    account's period start, and the nano-dollars held."""

    held: dict[str, tuple[int, float, int]] = field(default_factory=dict)


@dataclass
class _Account:
    """One budget's state in its current period."""

    budget: Budget
    epoch: int
    period_start: float
    period_end: float
    spent: int = 0
    reserved: int = 0
    crossed: set[float] = field(default_factory=set)

    def roll(self, now: float) -> None:
        """A new period: nothing spent, nothing held, nothing crossed yet."""
        if now >= self.period_end or now < self.period_start:
            self.period_start, self.period_end = period_bounds(self.budget.period, now)
            self.spent, self.reserved, self.crossed = 0, 0, set()


class BudgetLedger:
    """A tenant's budgets, what each scope spent in its current period and what executions in
    flight hold; admits against hard budgets and reports thresholds crossed."""

    def __init__(self) -> None:
        self._accounts: dict[str, _Account] = {}
        self._epochs = itertools.count(1)

    @property
    def scopes(self) -> list[str]:
        return sorted(self._accounts)

    def budget(self, scope: str) -> Budget | None:
        account = self._accounts.get(scope)
        return account.budget if account is not None else None

    def needs_spent(self, scope: str, budget: Budget) -> bool:
        """Whether setting `budget` starts a new account, which must be told what the scope
        already spent in the period (the same period keeps its account)."""
        account = self._accounts.get(scope)
        return account is None or account.budget.period != budget.period

    def set(
        self,
        scope: str,
        budget: Budget,
        now: float,
        spent_usd: float = 0.0,
        crossed: tuple[float, ...] = (),
    ) -> None:
        """Set a scope's budget. In the same period, spending and holds stand and a changed
        budget alerts afresh; otherwise a new account starts at `spent_usd` with `crossed`."""
        account = self._accounts.get(scope)
        if account is not None and account.budget.period == budget.period:
            if account.budget != budget:
                account.crossed = set()
            account.budget = budget
            account.roll(now)
            return
        start, end = period_bounds(budget.period, now)
        self._accounts[scope] = _Account(
            budget, next(self._epochs), start, end, _nano(spent_usd), crossed=set(crossed)
        )

    def remove(self, scope: str) -> None:
        self._accounts.pop(scope, None)

    def covers(self, scopes: tuple[str, ...]) -> bool:
        """Whether any of `scopes` has a budget."""
        return any(scope in self._accounts for scope in scopes)

    def refuses(self, scopes: tuple[str, ...]) -> bool:
        """Whether any of `scopes` has a hard budget (one that may refuse)."""
        return any(
            self._accounts[s].budget.enforcement == "hard" for s in scopes if s in self._accounts
        )

    def admit(self, scopes: tuple[str, ...], worst_cost_usd: float, now: float) -> Reservation:
        """Hold `worst_cost_usd` in every budget of `scopes`, or raise BudgetExceeded for the
        first hard budget it would take past its limit (then nothing is held)."""
        worst = _nano(worst_cost_usd)
        accounts = [(s, self._accounts[s]) for s in scopes if s in self._accounts]
        for scope, account in accounts:
            account.roll(now)
            budget = account.budget
            limit = _nano(budget.limit_usd)
            if budget.enforcement == "hard" and account.spent + account.reserved + worst > limit:
                raise BudgetExceeded(
                    f"the {scope} budget of {budget.limit_usd:g} USD per {budget.period} "
                    "would be exceeded",
                    details={
                        "scope": scope,
                        "limit_usd": budget.limit_usd,
                        "period": budget.period,
                        "spent_usd": _usd(account.spent),
                        "reserved_usd": _usd(account.reserved),
                        "period_end": iso(account.period_end),
                    },
                )
        reservation = Reservation()
        for scope, account in accounts:
            account.reserved += worst
            reservation.held[scope] = (account.epoch, account.period_start, worst)
        return reservation

    def settle(self, reservation: Reservation, real_cost_usd: float, now: float) -> list[Crossing]:
        """An execution ended: release what it held and charge what it cost, in the period it
        started in (a budget replaced or a period over since then is not charged); the
        thresholds this newly crossed."""
        cost = _nano(real_cost_usd)
        crossings: list[Crossing] = []
        for scope, (epoch, period_start, held) in reservation.held.items():
            account = self._accounts.get(scope)
            if account is None or account.epoch != epoch:
                continue
            account.roll(now)
            if account.period_start != period_start:
                continue
            account.reserved -= held
            account.spent += cost
            crossings += self._crossed(scope, account)
        return crossings

    @staticmethod
    def _crossed(scope: str, account: _Account) -> list[Crossing]:
        budget = account.budget
        limit = _nano(budget.limit_usd)
        new = [
            t for t in budget.thresholds if t not in account.crossed and account.spent >= t * limit
        ]
        account.crossed.update(new)
        return [
            Crossing(scope, t, iso(account.period_start), _usd(account.spent), budget.limit_usd)
            for t in new
        ]

    def status(self, scope: str, now: float) -> dict[str, Any] | None:
        """The scope's budget as the API shows it, with its period's figures; None if none."""
        account = self._accounts.get(scope)
        if account is None:
            return None
        account.roll(now)
        limit = _nano(account.budget.limit_usd)
        return {
            "scope": scope,
            **account.budget.model_dump(),
            "spent_usd": _usd(account.spent),
            "reserved_usd": _usd(account.reserved),
            "remaining_usd": _usd(max(0, limit - account.spent - account.reserved)),
            "period_start": iso(account.period_start),
            "period_end": iso(account.period_end),
        }
