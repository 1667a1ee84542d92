"""The session's cluster (one real Ray, two Serve apps: SQLite and PostgreSQL) and a client
per backend. Built by `tests/support/cluster.py` the first time a test asks for them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.emulator import ProviderEmulator
from tests.support.client import ApiClient
from tests.support.cluster import Cluster, start_cluster
from tests.support.otlp import OtlpReceiver


@pytest.fixture(scope="session")
def otlp() -> Iterator[OtlpReceiver]:
    """The session's OTLP/HTTP receiver: the SQLite app's traces arrive here."""
    with OtlpReceiver() as receiver:
        yield receiver


@pytest.fixture(scope="session")
def cluster(
    emulator: ProviderEmulator, otlp: OtlpReceiver, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    with start_cluster(emulator, tmp_path_factory.mktemp("cluster"), otlp.endpoint) as running:
        yield running


@pytest.fixture(params=["sqlite", "postgres"])
def gateway(request: pytest.FixtureRequest, cluster: Cluster) -> Iterator[ApiClient]:
    """A client of the SQLite or the PostgreSQL app (`SQLITE_ONLY` picks the first alone)."""
    if request.param not in cluster.settings:
        pytest.skip("PostgreSQL is not reachable (set CI=true to require it)")
    client = ApiClient(cluster, request.param)
    yield client
    client.close()


@pytest.fixture
def sqlite_gateway(cluster: Cluster) -> Iterator[ApiClient]:
    """A client of the cluster's SQLite app alone (what every app of it shares: one run)."""
    client = ApiClient(cluster, "sqlite")
    yield client
    client.close()
