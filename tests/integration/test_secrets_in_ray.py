"""No credential is kept in Ray's own records: the GCS's actor records (what Ray's state API
and dashboard show: Serve replicas and our actors), its jobs (their runtime_env), its
key-value store (Serve's checkpoint holds every deployment's arguments), Serve's status, and
every log file of the session. The PostgreSQL app's database URL carries a canary password
(tests/support/cluster.py); its processes read it from their environment and still work."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import ray
from ray import serve
from ray.experimental import internal_kv

from actors.settings import Settings, master_key_file
from tests import jwt_keys
from tests.support.client import ApiClient
from tests.support.cluster import ADMIN_TOKEN, Cluster

# every namespace of Ray's internal key-value store that Ray and Serve write to
KV_NAMESPACES = [
    None, b"serve", b"fun", b"session", b"cluster", b"job", b"dashboard", b"tracing",
    b"healthcheck", b"ray_pdb",
]  # fmt: skip


@ray.remote(num_cpus=0)
def _password_digest(settings: Settings) -> str:
    """In a Ray worker: the digest of the database password the settings arrived with."""
    password = urlsplit(settings.database_url or "").password or ""
    return hashlib.sha256(password.encode()).hexdigest()


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _ray_records() -> dict[str, bytes]:
    """Ray's records of the session, by what they are: raw GCS protobufs and KV values."""
    accessor = ray._private.state.state._connect_and_get_accessor()
    records = {
        f"actor {i}": bytes(actor) for i, actor in enumerate(accessor.get_actor_table(None, None))
    }
    for i, job in enumerate(
        accessor.get_job_table(
            skip_submission_job_info_field=False, skip_is_running_tasks_field=True
        )
    ):
        records[f"job {i}"] = bytes(job)
    for namespace in KV_NAMESPACES:
        for key in internal_kv._internal_kv_list(b"", namespace=namespace):
            value = internal_kv._internal_kv_get(key, namespace=namespace) or b""
            records[f"kv {namespace!r} {key!r}"] = key + value
    records["serve status"] = repr(serve.status()).encode()
    return records


def test_no_credential_is_kept_in_ray_records_or_logs(cluster: Cluster) -> None:
    if "postgres" not in cluster.settings:
        pytest.skip("PostgreSQL is not reachable (set CI=true to require it)")
    settings = cluster.settings["postgres"]
    password = urlsplit(settings.database_url or "").password
    assert password, "the PostgreSQL app's URL has no password to look for"

    gateway = ApiClient(cluster, "postgres")
    try:  # the app works: its actors reached the store and the provider
        tenant = gateway.new_tenant()
        agent = gateway.new_agent(tenant, model="gpt-4o-mini")
        assert gateway.execute(tenant, agent["id"], "hello").status_code == 200
    finally:
        gateway.close()
    # a Ray worker gets the settings without the password and reads it back from its
    # environment (only digests cross Ray here)
    assert ray.get(_password_digest.remote(settings)) == _digest(password)

    secrets = {
        "database password": password,
        "admin token": ADMIN_TOKEN,
        "jwt secret": jwt_keys.SECRET,
        "provider key": "test-provider-key",
        "master key": master_key_file(settings).read_text().strip(),  # payloads are encrypted
    }
    records = _ray_records()
    assert any(name.startswith("actor") for name in records)
    assert any(b"Gateway" in value for value in records.values())  # Serve's checkpoint is read
    found = {
        (secret, where)
        for where, value in records.items()
        for secret, text in secrets.items()
        if text.encode() in value
    }
    assert not found, found

    time.sleep(1.5)  # log lines are flushed asynchronously
    logs = Path(ray._private.worker._global_node.get_logs_dir_path())
    files = [f for f in logs.rglob("*") if f.is_file()]
    assert len(files) > 5
    in_logs = {
        (secret, str(f.relative_to(logs)))
        for f in files
        for secret, text in secrets.items()
        if text.encode() in f.read_bytes()
    }
    assert not in_logs, in_logs
