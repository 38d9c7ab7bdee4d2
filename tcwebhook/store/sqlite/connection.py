"""Opening one SQLite file: private permissions, WAL, migrations, read-only access, and the
short-lived connections that reads and small write transactions use."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tcwebhook.errors import StoreUnavailable
from tcwebhook.store.sqlite.migrations import migrate, pending


class SqliteDatabase:
    """Opens (creating and migrating, or read-only) one SQLite file and hands out connections."""

    def __init__(
        self,
        path: Path,
        busy_timeout: float = 2.0,
        *,
        read_only: bool = False,
        create: bool = True,
    ) -> None:
        """``read_only``: never write, create or migrate (works on a read-only copy);
        ``create=False``: a database that is not there is an error, not a new empty one."""
        self.path = path
        self.busy_timeout = busy_timeout
        self._uri: str | None = None  # set for read-only connections
        if (read_only or not create) and not path.is_file():
            raise StoreUnavailable(
                f"there is no event store at {path}: nothing was received there yet "
                "(start 'tcwebhook serve') or data_dir / store.url points elsewhere"
            )
        try:
            if read_only:
                self._open_read_only()
            else:
                self._create_private(path)
                connection = self._connect()
                try:
                    self._use_wal(connection)
                    migrate(connection)
                finally:
                    connection.close()
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"cannot open the event store {path}: {exc}") from None
        except OSError as exc:
            raise StoreUnavailable(
                f"cannot create the event store {path}: {exc.strerror}; "
                "check the data_dir / store.url setting and its permissions"
            ) from None

    @staticmethod
    def _create_private(path: Path) -> None:
        """Order data is for this user only: the directory 0700, the database 0600 (SQLite
        gives the -wal and -shm files the database file's permissions)."""
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with contextlib.suppress(FileExistsError):
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))

    def _use_wal(self, connection: sqlite3.Connection) -> None:
        """Switch to WAL. Two processes opening a fresh database at once both try; SQLite does
        not wait on its busy handler for that, so wait here (up to the busy timeout)."""
        deadline = time.monotonic() + self.busy_timeout
        while True:
            try:
                connection.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)

    def _open_read_only(self) -> None:
        """``mode=ro``; where even that needs to write (a WAL database in a read-only
        directory cannot create its -shm file), ``immutable=1``."""
        location = urllib.parse.quote(str(self.path))
        last: sqlite3.Error | None = None
        for mode in ("mode=ro", "immutable=1"):
            self._uri = f"file:{location}?{mode}"
            try:
                connection = self._connect()
                try:
                    missing = pending(connection)
                finally:
                    connection.close()
            except sqlite3.OperationalError as exc:
                last = exc
                continue
            if missing:
                raise StoreUnavailable(
                    f"{self.path} is not an event store of this version of tcwebhook "
                    f"(it lacks {', '.join(missing)}); run 'tcwebhook deliver --once' on it "
                    "to upgrade it, or check data_dir / store.url"
                )
            return
        assert last is not None
        raise last

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(
            self._uri or self.path,
            timeout=self.busy_timeout,
            isolation_level=None,
            check_same_thread=False,
            uri=self._uri is not None,
        )
        connection.execute("PRAGMA synchronous=FULL")
        connection.execute("PRAGMA foreign_keys=ON")
        return connection

    # Any thread; short-lived connections so readers never block the writer.

    @contextmanager
    def reading(self) -> Iterator[sqlite3.Connection]:
        try:
            connection = self._connect()
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"cannot open the event store {self.path}: {exc}") from None
        try:
            yield connection
        except sqlite3.DatabaseError as exc:  # locked, disk full, corrupt ("malformed"), ...
            raise StoreUnavailable(f"the event store {self.path} failed: {exc}") from None
        finally:
            connection.close()

    @contextmanager
    def writing(self) -> Iterator[sqlite3.Connection]:
        """A short write transaction on its own connection."""
        with self.reading() as connection:
            connection.execute("BEGIN IMMEDIATE")
            try:
                yield connection
                connection.execute("COMMIT")
            except BaseException:
                rollback(connection)
                raise


def rollback(connection: sqlite3.Connection) -> None:
    """Roll back if SQLite has not already done so itself (it has, after "disk is full"):
    a failing ROLLBACK must not hide the real cause."""
    if connection.in_transaction:
        with contextlib.suppress(sqlite3.Error):
            connection.execute("ROLLBACK")
