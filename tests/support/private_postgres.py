"""A PostgreSQL server of a test's own (initdb in a temp dir, its own port, trust auth), so a
test may stop and restart it under load without touching the machine's shared server."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.support.cluster import free_port, with_canary_password


def _bin(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    versions = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    if not versions:
        raise FileNotFoundError(f"PostgreSQL's {name} is not installed")
    return str(versions[-1])


def _as_owner(command: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: as root, run it as the `postgres` user."""
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


@dataclass
class PrivatePostgres:
    """One running server: `url` names its `cb` database; `stop` and `start` keep its data."""

    data_dir: Path
    port: int
    log_path: Path

    @property
    def url(self) -> str:
        return with_canary_password(f"postgresql://postgres@127.0.0.1:{self.port}/cb")

    def _pg_ctl(self, *args: str) -> list[str]:
        return _as_owner(
            [_bin("pg_ctl"), "-D", str(self.data_dir), "-l", str(self.log_path), *args]
        )

    def start_command(self) -> list[str]:
        options = f"-p {self.port} -k {self.data_dir} -c listen_addresses=127.0.0.1"
        return self._pg_ctl("-w", "-o", options, "start")

    def stop_command(self, mode: str = "immediate") -> list[str]:
        """`immediate`: as a crash (no checkpoint, every connection cut)."""
        return self._pg_ctl("-w", "-m", mode, "stop")

    def start(self) -> None:
        subprocess.run(self.start_command(), check=True, capture_output=True, timeout=120)

    def stop(self, mode: str = "immediate") -> None:
        subprocess.run(self.stop_command(mode), check=True, capture_output=True, timeout=120)


@contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    """A fresh server with a `cb` database, removed afterwards."""
    root = Path(tempfile.mkdtemp(prefix="cbpg-"))
    data_dir = root / "data"
    data_dir.mkdir()
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        shutil.chown(data_dir, "postgres")
    server = PrivatePostgres(data_dir, free_port(), root / "postgres.log")
    if os.geteuid() == 0:
        server.log_path.touch()
        shutil.chown(server.log_path, "postgres")
    subprocess.run(
        _as_owner([_bin("initdb"), "-D", str(data_dir), "-U", "postgres", "-A", "trust"]),
        check=True,
        capture_output=True,
        timeout=120,
    )
    server.start()
    try:
        subprocess.run(
            [_bin("createdb"), "-h", "127.0.0.1", "-p", str(server.port), "-U", "postgres", "cb"],
            check=True,
            capture_output=True,
            timeout=60,
        )
        yield server
    finally:
        try:
            server.stop("fast")
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(root, ignore_errors=True)


def postgres_installed() -> bool:
    """Whether this machine can run a server of a test's own (CI=true: it must)."""
    try:
        _bin("initdb")
    except FileNotFoundError:
        if os.environ.get("CI") == "true":
            raise
        return False
    return True
