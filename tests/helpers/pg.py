"""A throwaway PostgreSQL server for the tests: initdb into a temporary directory, start it on a
free loopback port as the ``postgres`` user (PostgreSQL refuses to run as root), stop it at the
end. Each test gets its own schema, so tests never see each other's rows."""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

SUPERUSER = "postgres"
DATABASE = "tcwebhook"
PASSWORD = "s3cret-test-password"


class PostgresUnavailable(RuntimeError):
    """PostgreSQL's binaries are missing or the server did not start."""


def find_bindir() -> Path:
    """The newest installed PostgreSQL's bin directory (Debian keeps one per major version)."""
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"),
        key=lambda path: int(Path(path).parent.name) if Path(path).parent.name.isdigit() else 0,
    )
    for directory in reversed(candidates):
        if (Path(directory) / "pg_ctl").exists():
            return Path(directory)
    on_path = shutil.which("pg_ctl")
    if on_path:
        return Path(on_path).parent
    raise PostgresUnavailable("no PostgreSQL binaries (pg_ctl) found; apt-get install postgresql")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PostgresServer:
    """One server for the test session."""

    def __init__(self) -> None:
        self.bindir = find_bindir()
        self.root = Path(tempfile.mkdtemp(prefix="tcwebhook-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self._schemas = itertools.count(1)
        self._as_user: list[str] = []
        if os.geteuid() == 0:
            self._as_user = ["runuser", "-u", SUPERUSER, "--"]
            user = pwd.getpwnam(SUPERUSER)
            os.chown(self.root, user.pw_uid, user.pw_gid)
        os.chmod(self.root, 0o700)

    def _run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [*self._as_user, *args], capture_output=True, text=True, timeout=timeout
        )
        if result.returncode != 0:
            raise PostgresUnavailable(f"{' '.join(args[:2])} failed: {result.stderr.strip()}")
        return result

    def start(self) -> None:
        if not self.data.exists():
            password_file = self.root / "pw"
            password_file.write_text(PASSWORD)
            if self._as_user:
                user = pwd.getpwnam(SUPERUSER)
                os.chown(password_file, user.pw_uid, user.pw_gid)
            self._run(
                str(self.bindir / "initdb"), "-D", str(self.data), "-U", SUPERUSER,
                "--auth=scram-sha-256", f"--pwfile={password_file}", "-E", "UTF8",
                "--no-instructions",
            )  # fmt: skip
        options = (
            f"-c port={self.port} -c listen_addresses=127.0.0.1 "
            f"-c unix_socket_directories={self.root} -c fsync=on -c synchronous_commit=on "
            "-c max_connections=200 -c shared_buffers=32MB"
        )
        self._run(
            str(self.bindir / "pg_ctl"), "start", "-D", str(self.data), "-w", "-t", "30",
            "-l", str(self.root / "server.log"), "-o", options,
        )  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        self._run(str(self.bindir / "pg_ctl"), "stop", "-D", str(self.data), "-m", mode, "-w")

    def processes(self) -> list[int]:
        """The postmaster and its children (backends, WAL writer ...) of this server only."""
        postmaster = int((self.data / "postmaster.pid").read_text().split()[0])
        children = Path(f"/proc/{postmaster}/task/{postmaster}/children").read_text().split()
        return [postmaster, *map(int, children)]

    def signal(self, signum: int) -> None:
        """SIGSTOP freezes the server without closing a connection; SIGCONT thaws it."""
        for pid in self.processes():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    def destroy(self) -> None:
        with contextlib.suppress(PostgresUnavailable, subprocess.TimeoutExpired):
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str = DATABASE, password: str = PASSWORD) -> str:
        return f"postgresql://{SUPERUSER}:{password}@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> None:
        import psycopg

        with psycopg.connect(self.url("postgres"), autocommit=True) as connection:
            connection.execute(f"CREATE DATABASE {DATABASE}")

    def new_schema(self) -> str:
        """A fresh, empty schema; the URL that makes it the store's (through search_path)."""
        import psycopg

        name = f"t{next(self._schemas)}"
        with psycopg.connect(self.url(), autocommit=True) as connection:
            connection.execute(f"CREATE SCHEMA {name}")
        return f"{self.url()}?options=-csearch_path%3D{name}"


def start_server() -> PostgresServer:
    server = PostgresServer()
    try:
        server.start()
        server.create_database()
    except BaseException:
        server.destroy()
        raise
    return server
