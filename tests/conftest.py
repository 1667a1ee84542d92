"""Fixtures for every test: a clean environment per test, the session's provider emulator,
and a PostgreSQL server of a module's own (one a test may stop).

The Ray + Serve cluster fixtures are in `tests/integration/conftest.py`, so unit tests never
start them; helpers live in `tests/support/`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.emulator import ProviderEmulator
from tests.support.private_postgres import PrivatePostgres, postgres_installed, private_postgres


@pytest.fixture(autouse=True)
def clean_environ() -> Iterator[None]:
    """Give each test's changes to `os.environ` back (as httpx's suite does). Only this
    process's: the cluster's Ray workers took their environment when it started."""
    saved = os.environ.copy()
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture(scope="session")
def emulator() -> Iterator[ProviderEmulator]:
    emu = ProviderEmulator().start()
    yield emu
    emu.stop()


@pytest.fixture(scope="module")
def own_postgres() -> Iterator[PrivatePostgres]:
    """A PostgreSQL server of this module's own (its `cb` database), which a test may stop."""
    if not postgres_installed():
        pytest.skip("PostgreSQL's server programs are not installed (CI=true requires them)")
    with private_postgres() as server:
        yield server
