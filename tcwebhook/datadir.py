"""The files tcwebhook keeps in its data directory, and their permissions.

The directory is the owner's alone (0700) and every file holding a secret is 0600 from its first
byte: the token, the development key, the Tradecloud token cache.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tcwebhook.errors import ConfigError

DIR_MODE = 0o700
SECRET_MODE = 0o600

DEV_CA_FILE = "dev-ca.pem"
DEV_CERT_FILE = "dev-server.pem"  # leaf certificate followed by the chain
DEV_KEY_FILE = "dev-server-key.pem"  # secret
DEV_TOKEN_FILE = "token"  # secret: the generated Bearer token of the receiver
DATABASE_FILE = "events.db"  # the default SQLite store
TOKEN_CACHE_NAME = "tradecloud-tokens.json"  # secret: Tradecloud API tokens
METRICS_DIR = "metrics"  # counters shared by serve's worker processes


def default_store_url(data_dir: Path) -> str:
    return f"sqlite:///{data_dir / DATABASE_FILE}"


@contextmanager
def writable(data_dir: Path) -> Iterator[None]:
    """Create ``data_dir`` and turn a failure to write there into one clear line."""
    try:
        data_dir.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
        yield
    except OSError as exc:
        raise ConfigError(
            f"cannot write to the data directory {data_dir}: {exc.strerror or exc}; "
            "set data_dir (or --data-dir, $TCWEBHOOK_DATA_DIR) to a writable folder"
        ) from None


def write_private(path: Path, data: bytes) -> None:
    """Write a secret file readable by its owner only (mode 0600 from the first byte)."""
    temporary = path.with_name(path.name + ".tmp")
    temporary.unlink(missing_ok=True)
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, SECRET_MODE)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
