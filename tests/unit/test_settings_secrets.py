"""Settings handed to Ray (actor and Serve arguments) carry no password: it is dropped when
they are pickled and read back from the unpickling process's environment."""

from __future__ import annotations

import copy
import logging
import pickle

import pytest
import ray.cloudpickle

from actors.settings import Settings, with_password, without_password

DB = "postgresql://cb:s3cr%40t-pw@db.internal:5433/gateway"
CACHE = "redis://:cache-pw@redis.internal:6379/0"


def _settings() -> Settings:
    return Settings(database_url=DB, cache_url=CACHE, otlp_endpoint="https://u:otlp-pw@otel:4318")


@pytest.mark.parametrize("dumps", [pickle.dumps, ray.cloudpickle.dumps])
def test_the_pickle_holds_no_password(dumps: object, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("CB_DATABASE_URL", "CB_CACHE_URL", "OTEL_EXPORTER_OTLP_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    data = dumps(_settings())  # type: ignore[operator]
    for secret in (b"s3cr", b"cache-pw", b"otlp-pw"):
        assert secret not in data
    assert b"db.internal" in data and b"cb@" in data  # the rest of the URL travels


def test_unpickling_reads_the_passwords_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CB_DATABASE_URL", DB)
    monkeypatch.setenv("CB_CACHE_URL", CACHE)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    settings = _settings()
    data = pickle.dumps(settings)
    restored = pickle.loads(data)
    assert restored.database_url == DB and restored.cache_url == CACHE
    assert restored.otlp_endpoint == "https://u@otel:4318"  # not in this environment
    assert restored.store_env()["POSTGRES_PASSWORD"] == "s3cr@t-pw"


def test_a_missing_password_is_logged_without_the_password(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("CB_DATABASE_URL", "postgresql://cb:other@elsewhere:5433/gateway")
    data = pickle.dumps(Settings(database_url=DB))
    with caplog.at_level(logging.WARNING):
        restored = pickle.loads(data)
    assert restored.database_url == "postgresql://cb@db.internal:5433/gateway"
    assert "CB_DATABASE_URL" in caplog.text and "s3cr" not in caplog.text


def test_settings_without_passwords_pickle_as_they_are() -> None:
    plain = Settings(database_url="postgresql://postgres@127.0.0.1/cb", cache_url=None)
    assert pickle.loads(pickle.dumps(plain)) == plain


def test_repr_and_copies_keep_the_password_out_of_sight_and_in_place() -> None:
    settings = _settings()
    assert "s3cr" not in repr(settings) and "cache-pw" not in repr(settings)
    assert copy.copy(settings).database_url == DB
    assert copy.deepcopy({"s": settings})["s"].database_url == DB


def test_without_password() -> None:
    assert without_password(DB) == "postgresql://cb@db.internal:5433/gateway"
    assert without_password(CACHE) == "redis://redis.internal:6379/0"
    assert without_password("postgresql://cb@h/db") == "postgresql://cb@h/db"
    assert without_password("sqlite:///data/x.sqlite") == "sqlite:///data/x.sqlite"


def test_with_password_only_from_the_same_login() -> None:
    bare = without_password(DB)
    assert with_password(bare, DB) == DB
    assert with_password(without_password(CACHE), CACHE) == CACHE
    assert with_password(bare, "postgresql://cb:pw@db.internal:5432/gateway") is None  # port
    assert with_password(bare, "postgresql://other:pw@db.internal:5433/gateway") is None
    assert with_password(bare, "postgresql://cb@db.internal:5433/gateway") is None
    assert with_password(bare, None) is None
    # the same login on another database of that server: its password
    other_db = "postgresql://cb:pw@db.internal:5433/x"
    assert with_password(bare, other_db) == "postgresql://cb:pw@db.internal:5433/gateway"
