"""Connecting to PostgreSQL: the connection string with our timeouts, and errors in one line."""

from __future__ import annotations

from urllib.parse import urlsplit

import psycopg
from psycopg import conninfo as pg_conninfo

from tcwebhook.errors import ConfigError, StoreUnavailable
from tcwebhook.store.base import POSTGRES_SCHEMES, display_url

CONNECT_TIMEOUT = 3  # seconds; an unreachable server must not hold a request for long
STATEMENT_TIMEOUT_MS = 10_000
LOCK_TIMEOUT_MS = 10_000
# A client that vanished inside a transaction (a host gone, a frozen VM) must not keep holding
# the append lock: the server ends such a session after this long.
IDLE_IN_TRANSACTION_MS = 10_000
# Dead peers (a host that vanished, a failover) are noticed within about this many seconds.
KEEPALIVES = {
    "keepalives": 1,
    "keepalives_idle": 5,
    "keepalives_interval": 2,
    "keepalives_count": 3,
    "tcp_user_timeout": 10_000,  # ms: sent data unacknowledged this long ends the connection
}


def conninfo(url: str, read_only: bool = False) -> str:
    """The libpq connection string for ``url``, with short timeouts and durable commits;
    ``read_only``: every transaction is read-only unless it says otherwise."""
    parts = urlsplit(url)
    if parts.scheme not in POSTGRES_SCHEMES or not parts.path.strip("/"):
        raise ConfigError(
            f"store.url {display_url(url)} is not a PostgreSQL URL: use "
            "postgresql://USER:PASSWORD@HOST:PORT/DATABASE (the database name is required)"
        )
    try:
        params = pg_conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError as exc:
        raise ConfigError(
            f"store.url {display_url(url)} is not a valid PostgreSQL URL: {_first_line(exc, url)}"
        ) from None
    # Our settings go after the user's own options: durability is not negotiable.
    options = " ".join(
        filter(
            None,
            [
                str(params.get("options") or ""),
                f"-c statement_timeout={STATEMENT_TIMEOUT_MS}",
                f"-c lock_timeout={LOCK_TIMEOUT_MS}",
                f"-c idle_in_transaction_session_timeout={IDLE_IN_TRANSACTION_MS}",
                "-c synchronous_commit=on",
                "-c default_transaction_read_only=on" if read_only else "",
            ],
        )
    )
    params.update(KEEPALIVES)
    params.setdefault("connect_timeout", CONNECT_TIMEOUT)
    params.setdefault("application_name", "tcwebhook")
    params["options"] = options
    return pg_conninfo.make_conninfo("", **params)


def connect(info: str, url: str, autocommit: bool = False) -> psycopg.Connection:
    """A new connection, or ``StoreUnavailable`` saying in one line what went wrong."""
    try:
        return psycopg.connect(info, autocommit=autocommit)
    except psycopg.Error as exc:
        raise StoreUnavailable(
            f"cannot connect to the PostgreSQL store {display_url(url)}: {_first_line(exc, url)}; "
            "check store.url (host, port, user, password, database) and that the server runs"
        ) from None


def unavailable(exc: BaseException, url: str, doing: str) -> StoreUnavailable:
    """A driver error while ``doing`` something, as the store's one-line error."""
    return StoreUnavailable(
        f"the PostgreSQL store {display_url(url)} could not {doing}: {_first_line(exc, url)}"
    )


def _first_line(exc: BaseException, url: str) -> str:
    """libpq's message without its repetitions, and never the password (it does not print it,
    but a message quoting the URL back would)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = lines[0] if lines else type(exc).__name__
    text = " ".join(text.removeprefix("connection failed: ").split())
    password = urlsplit(url).password
    if password:
        text = text.replace(password, "***")
    return text
