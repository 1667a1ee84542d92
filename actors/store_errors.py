"""A database driver's error as the event store's error of the same kind: the store's callers
(optimistic concurrency, retries, 503 answers) know only `eventsourcing.persistence`'s."""

from __future__ import annotations

from eventsourcing import persistence

# DB-API 2.0's error kinds, most specific first; `eventsourcing.persistence` names its own alike
KINDS = (
    "IntegrityError", "OperationalError", "InterfaceError", "DataError", "ProgrammingError",
    "InternalError", "NotSupportedError", "DatabaseError",
)  # fmt: skip


def as_store_error(exc: Exception) -> persistence.PersistenceError:
    """The store's error of `exc`'s DB-API kind (psycopg's, sqlite3's), with its message."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    for kind in KINDS:
        if kind in names:
            error: type[persistence.PersistenceError] = getattr(persistence, kind)
            return error(str(exc))
    return persistence.PersistenceError(str(exc))
