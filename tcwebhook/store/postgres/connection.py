"""Opening a PostgreSQL store: checking (or migrating) its schema, read-only access, and the
pool of connections that reads and short write transactions use."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from tcwebhook.errors import StoreUnavailable
from tcwebhook.store.base import display_url
from tcwebhook.store.postgres.connect import CONNECT_TIMEOUT, connect, conninfo, unavailable
from tcwebhook.store.postgres.migrations import migrate, pending

POOL_SIZE = 4


class PostgresDatabase:
    """Opens (migrating, or read-only) one PostgreSQL store and hands out pooled connections.

    Failures are ``StoreUnavailable`` (503 at the HTTP edge); connections are re-made on the
    next use, so the store recovers by itself when the server is back.
    """

    def __init__(self, url: str, *, read_only: bool = False, create: bool = True) -> None:
        """``read_only``: never migrate, every transaction read-only; ``create=False``: a
        database without our schema is an error, not a new empty store."""
        self.url = url
        self.location = display_url(url)
        self.read_only = read_only
        self._conninfo = conninfo(url, read_only=read_only)
        self._prepare(create)
        self._pool: ConnectionPool | None = None
        self._pool_lock = threading.Lock()

    def _prepare(self, create: bool) -> None:
        """Check the schema; bring it up to date unless read-only."""
        with connect(self._conninfo, self.url) as connection:
            try:
                missing = pending(connection)
                if missing is None and (self.read_only or not create):
                    raise StoreUnavailable(
                        f"there is no event store in {self.location}: nothing was received "
                        "there yet (start 'tcwebhook serve') or store.url points elsewhere"
                    )
                if self.read_only and missing:
                    raise StoreUnavailable(
                        f"{self.location} is not an event store of this version of tcwebhook "
                        f"(it lacks {', '.join(missing)}); start 'tcwebhook serve' or run "
                        "'tcwebhook deliver --once' on it to upgrade it"
                    )
                if not self.read_only and missing != []:
                    connection.rollback()
                    migrate(connection)
            except psycopg.Error as exc:
                raise unavailable(exc, self.url, "be prepared (migrations)") from None

    def _get_pool(self) -> ConnectionPool:
        with self._pool_lock:
            if self._pool is None:
                self._pool = ConnectionPool(
                    self._conninfo,
                    min_size=0,
                    max_size=POOL_SIZE,
                    timeout=CONNECT_TIMEOUT + 2,
                    check=ConnectionPool.check_connection,  # a restarted server: reconnect
                    name="tcwebhook-store",
                    open=True,
                )
            return self._pool

    def close_pool(self) -> None:
        with self._pool_lock:
            if self._pool is not None:
                self._pool.close()
                self._pool = None

    @contextmanager
    def writing(self, doing: str) -> Iterator[psycopg.Connection]:
        """A pooled connection in a transaction, committed at the end; driver errors become
        ``StoreUnavailable`` saying what the store could not ``doing``."""
        try:
            with self._get_pool().connection() as connection:
                yield connection
        except PoolTimeout as exc:
            raise unavailable(exc, self.url, doing) from None
        except psycopg.Error as exc:
            raise unavailable(exc, self.url, doing) from None

    @contextmanager
    def reading(self, doing: str) -> Iterator[psycopg.Connection]:
        """A pooled connection in a read-only transaction."""
        with self.writing(doing) as connection:
            connection.execute("SET TRANSACTION READ ONLY")
            yield connection
