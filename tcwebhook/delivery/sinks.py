"""Sinks: deliver one stored event somewhere, or raise ``DeliveryFailed`` saying why."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Protocol, runtime_checkable

import aiohttp

from tcwebhook.config import RetrySettings, SinkSettings
from tcwebhook.delivery.content import render, rendered_type
from tcwebhook.store import StoredEvent
from tcwebhook.trust import client_context
from tcwebhook.txml import XML_CONTENT_TYPE

OUTPUT_LIMIT = 4096  # bytes of a command's output or an HTTP answer kept for `events show`
# Characters of one TCWEBHOOK_* value: the kernel refuses to start a program whose environment
# is too large ("Argument list too long"); the whole event is on stdin anyway.
ENV_VALUE_LIMIT = 1024
# fsyncs a directory sink issues at once for a batch (docs/performance-notes.md).
FSYNC_THREADS = 16
# How a temporary file is opened (with mode 0o666: the umask decides, as open("wb") did).
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0)
# What a command inherits from tcwebhook's own environment (besides its sink's pass_env):
# enough to run programs, never the secrets the configuration refers to.
INHERITED_ENV = ("PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LANGUAGE", "TZ", "TMPDIR")


class DeliveryFailed(Exception):
    """This attempt failed; the message (never holding a secret) is kept as the last error."""

    def __init__(self, message: str, output: str | None = None) -> None:
        super().__init__(message)
        self.output = output


class DeliveryInterrupted(Exception):
    """tcwebhook is stopping: the attempt was cut short and does not count."""


@dataclass
class BatchResult:
    """What became of an ordered batch: the outputs of its leading delivered events, then the
    error that stopped it at the next one (the rest were not attempted)."""

    delivered: list[str | None] = field(default_factory=list)
    error: DeliveryFailed | DeliveryInterrupted | None = None


class TaskPolicy(Protocol):
    """How the worker schedules a target's tasks (a sink's settings have these fields)."""

    @property
    def name(self) -> str: ...
    @property
    def concurrency(self) -> int: ...
    @property
    def timeout(self) -> float: ...
    @property
    def retry(self) -> RetrySettings: ...


class Sink(Protocol):
    @property
    def settings(self) -> TaskPolicy: ...

    async def deliver(self, event: StoredEvent) -> str | None:
        """Hand the event on; return output worth keeping. Must be idempotent."""
        ...

    def interrupt(self) -> None:
        """tcwebhook is stopping: cut deliveries under way short if they may take long."""
        ...

    async def close(self) -> None: ...


@runtime_checkable
class BatchSink(Sink, Protocol):
    """A sink that hands on a run of events at once, in order (cheaper per event)."""

    async def deliver_batch(self, events: Sequence[StoredEvent]) -> BatchResult:
        """Deliver ``events`` in order, stopping at the first that fails. Must be idempotent."""
        ...


def make_sink(settings: SinkSettings) -> Sink:
    sink_types: dict[str, type] = {
        "directory": DirectorySink,
        "command": CommandSink,
        "http": HttpSink,
    }
    sink: Sink = sink_types[settings.type](settings)
    return sink


# --------------------------------------------------------------------------------------------


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def file_name(event: StoredEvent, content: str = "payload") -> str:
    """Sorts by arrival, never collides (the event id), and is the same on every re-delivery;
    ``.xml`` for a tXML payload handed on as it came."""
    received = re.sub(r"[^0-9TZ]", "", event.received_at)
    name = event.event_name or event.kind
    number = event.number or event.resource_id or "-"
    parts = [received, name, number, f"{event.id:09d}"]
    suffix = ".xml" if rendered_type(event, content) == XML_CONTENT_TYPE else ".json"
    return "_".join(_UNSAFE.sub("-", part).strip("-")[:80] or "-" for part in parts) + suffix


class DirectorySink:
    """Writes each event as a JSON file, atomically: readers never see half a file."""

    def __init__(self, settings: SinkSettings) -> None:
        assert settings.path is not None
        self.settings = settings
        self.path: Path = settings.path
        self._fsyncs: ThreadPoolExecutor | None = None

    async def deliver(self, event: StoredEvent) -> str | None:
        result = await self.deliver_batch([event])
        if result.error is not None:
            raise result.error
        return result.delivered[0]

    async def deliver_batch(self, events: Sequence[StoredEvent]) -> BatchResult:
        """Write the events' files in order, as one batch: each file is written and fsync'ed
        under a temporary name, then all are renamed in order and the directory is fsync'ed
        once. A file is done only once that directory fsync returned."""
        files = [
            (file_name(event, self.settings.content), render(event, self.settings.content))
            for event in events
        ]
        return await asyncio.to_thread(self._write_batch, files)

    def _write_batch(self, files: list[tuple[str, bytes]]) -> BatchResult:
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            return BatchResult(error=self._failure(exc))
        written, error = self._write_temporaries(files)
        renamed: list[str] = []
        for index, name in enumerate(written):
            try:  # in order, so that a reader sees them arrive in order
                os.replace(self.path / f".{name}.tmp", self.path / name)
            except OSError as exc:
                error = self._failure(exc)
                for later in written[index:]:  # no temporary file left behind
                    with contextlib.suppress(OSError):
                        os.unlink(self.path / f".{later}.tmp")
                break
            renamed.append(str(self.path / name))
        if renamed:
            try:
                _fsync_directory(self.path)  # the renames themselves must survive a power cut
            except OSError as exc:
                # Files are in place but not durable: none counts, all are written again.
                return BatchResult(error=self._failure(exc))
        return BatchResult(list(renamed), error)

    def _write_temporaries(
        self, files: list[tuple[str, bytes]]
    ) -> tuple[list[str], DeliveryFailed | None]:
        """Write each file under its temporary name, then fsync them all at once: the disk
        commits concurrent fsyncs together, where one after the other each waits for its own
        commit. The names of the leading files now durable, and the error that stopped there;
        the temporary files after it are removed."""
        handles: list[tuple[str, int]] = []
        ready = 0  # how many of the handles hold their whole file
        error: DeliveryFailed | None = None
        try:
            for name, data in files:
                handles.append((name, os.open(self.path / f".{name}.tmp", _CREATE, 0o666)))
                _write_all(handles[-1][1], data)
                ready += 1
        except OSError as exc:
            error = self._failure(exc)
        fsyncs = [handle for _, handle in handles[:ready]]
        if len(fsyncs) > 1:
            failures = list(self._pool().map(_fsync_error, fsyncs))
        else:
            failures = [_fsync_error(handle) for handle in fsyncs]
        written: list[str] = []
        for (name, _), failure in zip(handles, failures, strict=False):
            if failure is not None:
                error = self._failure(failure)
                break
            written.append(name)
        for index, (name, handle) in enumerate(handles):
            os.close(handle)
            if index >= len(written):  # after a failure: no temporary file left behind
                with contextlib.suppress(OSError):
                    os.unlink(self.path / f".{name}.tmp")
        return written, error

    def _pool(self) -> ThreadPoolExecutor:
        if self._fsyncs is None:
            self._fsyncs = ThreadPoolExecutor(FSYNC_THREADS, thread_name_prefix="fsync")
        return self._fsyncs

    def _failure(self, exc: OSError) -> DeliveryFailed:
        return DeliveryFailed(f"cannot write to {self.path}: {exc.strerror or exc}")

    def interrupt(self) -> None:
        return None  # a file write is quick

    async def close(self) -> None:
        if self._fsyncs is not None:
            self._fsyncs.shutdown(wait=False)
            self._fsyncs = None


class CommandSink:
    """Runs a program per event: the event on stdin, its metadata in TCWEBHOOK_* variables.

    Each run has its own process group, killed as a whole on timeout or when tcwebhook stops,
    so a child the program started cannot keep the delivery (or tcwebhook) waiting. Its input
    and output are temporary files, not pipes: nothing waits for a pipe that a leftover process
    still holds open.
    """

    def __init__(self, settings: SinkSettings) -> None:
        self.settings = settings
        self._running: set[asyncio.subprocess.Process] = set()
        self._stopping = False

    async def deliver(self, event: StoredEvent) -> str | None:
        program = self.settings.run[0]
        if self._stopping:
            raise DeliveryInterrupted()
        with (
            tempfile.TemporaryFile() as stdin,
            tempfile.TemporaryFile() as stdout,
            tempfile.TemporaryFile() as stderr,
        ):
            stdin.write(render(event, self.settings.content))
            stdin.seek(0)
            try:
                process = await asyncio.create_subprocess_exec(
                    *self.settings.run,
                    stdin=stdin,
                    stdout=stdout,
                    stderr=stderr,
                    env=command_environment(self.settings, event),
                    start_new_session=True,
                )
            except OSError as exc:
                raise DeliveryFailed(f"cannot run {program}: {exc.strerror or exc}") from None
            self._running.add(process)
            try:
                await asyncio.wait_for(process.wait(), self.settings.timeout)
            except TimeoutError:
                _kill_group(process)
                await process.wait()
                if self._stopping:
                    raise DeliveryInterrupted() from None
                raise DeliveryFailed(
                    f"{program} did not finish within {self.settings.timeout:g} s"
                ) from None
            except BaseException:  # cancelled: take the program down with us
                _kill_group(process)
                raise
            finally:
                self._running.discard(process)
            if self._stopping:
                raise DeliveryInterrupted()
            output = _tail(_read_tail(stdout))
            if process.returncode != 0:
                detail = _tail(_read_tail(stderr), 500).strip() or "no error output"
                raise DeliveryFailed(
                    f"{program} exited with {process.returncode}: {detail}", output
                )
            return output

    def interrupt(self) -> None:
        self._stopping = True
        for process in self._running:
            _kill_group(process)

    async def close(self) -> None:
        self.interrupt()


def command_environment(settings: SinkSettings, event: StoredEvent) -> dict[str, str]:
    """A minimal environment: what programs need to run, the variables the sink names in
    ``pass_env`` and sets in ``env``, and the event's TCWEBHOOK_* metadata (each bounded)."""
    environment = {
        name: value
        for name, value in os.environ.items()
        if name in INHERITED_ENV or name.startswith("LC_") or name in settings.pass_env
    }
    environment.update(settings.env)
    metadata = {
        "TCWEBHOOK_EVENT_ID": str(event.id),
        "TCWEBHOOK_EVENT_NAME": event.event_name or "",
        "TCWEBHOOK_KIND": event.kind,
        "TCWEBHOOK_CONTENT_TYPE": rendered_type(event, settings.content),
        "TCWEBHOOK_RESOURCE_ID": event.resource_id or "",
        "TCWEBHOOK_MESSAGE_ID": event.message_id or "",
        "TCWEBHOOK_NUMBER": event.number or "",
    }
    environment.update({name: _env_value(value) for name, value in metadata.items()})
    return environment


def _env_value(value: str) -> str:
    """Cut to ``ENV_VALUE_LIMIT``, without NUL (which no environment can hold) or unpaired
    surrogates (which cannot be encoded)."""
    cut = value[:ENV_VALUE_LIMIT].replace("\0", "")
    return cut.encode("utf-8", "replace").decode("utf-8")


def _write_all(handle: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(handle, view) :]


def _fsync_error(handle: int) -> OSError | None:
    try:
        os.fsync(handle)
    except OSError as exc:
        return exc
    return None


def _fsync_directory(path: Path) -> None:
    directory = os.open(path, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def _kill_group(process: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


def _read_tail(file: IO[bytes], limit: int = OUTPUT_LIMIT) -> bytes:
    file.seek(max(file.seek(0, os.SEEK_END) - limit, 0))
    return bytes(file.read(limit))


class HttpSink:
    """POSTs the event to an internal URL; any 2xx is done."""

    def __init__(self, settings: SinkSettings) -> None:
        assert settings.url is not None
        self.settings = settings
        self.url: str = settings.url
        # Made now, so that an unusable CA file stops `serve` at start with one clear line.
        self._context = client_context(settings.ca_file, f"sink {settings.name}: ca_file")
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=self._context, limit=self.settings.concurrency),
                timeout=aiohttp.ClientTimeout(total=self.settings.timeout),
            )
        return self._session

    async def deliver(self, event: StoredEvent) -> str | None:
        headers = {"Content-Type": rendered_type(event, self.settings.content)}
        headers.update(self.settings.headers)
        data = render(event, self.settings.content)
        try:
            async with self._client().post(self.url, data=data, headers=headers) as response:
                body = _tail(await response.content.read(OUTPUT_LIMIT))
                if 200 <= response.status < 300:
                    return body
                raise DeliveryFailed(f"{self.url} answered {response.status}: {body[:300]}", body)
        except TimeoutError:
            raise DeliveryFailed(
                f"{self.url} did not answer within {self.settings.timeout:g} s"
            ) from None
        except aiohttp.ClientError as exc:
            raise DeliveryFailed(f"cannot reach {self.url}: {exc}") from None

    def interrupt(self) -> None:
        return None  # bounded by the sink's timeout

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


def _tail(data: bytes, limit: int = OUTPUT_LIMIT) -> str:
    return data[-limit:].decode("utf-8", "replace")
