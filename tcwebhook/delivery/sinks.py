"""Sinks: deliver one stored event somewhere, or raise ``DeliveryFailed`` saying why."""

from __future__ import annotations

import asyncio
import os
import re
from pathlib import Path
from typing import Protocol

import aiohttp

from tcwebhook.config import RetrySettings, SinkSettings
from tcwebhook.delivery.content import render
from tcwebhook.store import StoredEvent
from tcwebhook.trust import client_context

OUTPUT_LIMIT = 4096  # bytes of a command's output or an HTTP answer kept for `events show`


class DeliveryFailed(Exception):
    """This attempt failed; the message (never holding a secret) is kept as the last error."""

    def __init__(self, message: str, output: str | None = None) -> None:
        super().__init__(message)
        self.output = output


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

    async def close(self) -> None: ...


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


def file_name(event: StoredEvent) -> str:
    """Sorts by arrival, never collides (the event id), and is the same on every re-delivery."""
    received = re.sub(r"[^0-9TZ]", "", event.received_at)
    name = event.event_name or event.kind
    number = event.number or event.resource_id or "-"
    parts = [received, name, number, f"{event.id:09d}"]
    return "_".join(_UNSAFE.sub("-", part).strip("-")[:80] or "-" for part in parts) + ".json"


class DirectorySink:
    """Writes each event as a JSON file, atomically: readers never see half a file."""

    def __init__(self, settings: SinkSettings) -> None:
        assert settings.path is not None
        self.settings = settings
        self.path: Path = settings.path

    async def deliver(self, event: StoredEvent) -> str | None:
        data = render(event, self.settings.content)
        try:
            return await asyncio.to_thread(self._write, file_name(event), data)
        except OSError as exc:
            raise DeliveryFailed(f"cannot write to {self.path}: {exc.strerror or exc}") from None

    def _write(self, name: str, data: bytes) -> str:
        self.path.mkdir(parents=True, exist_ok=True)
        final = self.path / name
        temporary = self.path / f".{name}.tmp"
        with temporary.open("wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, final)
        directory = os.open(self.path, os.O_RDONLY)
        try:
            os.fsync(directory)  # the rename itself must survive a power cut
        finally:
            os.close(directory)
        return str(final)

    async def close(self) -> None:
        return None


class CommandSink:
    """Runs a program per event: the event on stdin, its metadata in TCWEBHOOK_* variables."""

    def __init__(self, settings: SinkSettings) -> None:
        self.settings = settings

    async def deliver(self, event: StoredEvent) -> str | None:
        environment = {
            **os.environ,
            "TCWEBHOOK_EVENT_ID": str(event.id),
            "TCWEBHOOK_EVENT_NAME": event.event_name or "",
            "TCWEBHOOK_KIND": event.kind,
            "TCWEBHOOK_RESOURCE_ID": event.resource_id or "",
            "TCWEBHOOK_MESSAGE_ID": event.message_id or "",
            "TCWEBHOOK_NUMBER": event.number or "",
        }
        program = self.settings.run[0]
        try:
            process = await asyncio.create_subprocess_exec(
                *self.settings.run,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=environment,
                start_new_session=True,
            )
        except OSError as exc:
            raise DeliveryFailed(f"cannot run {program}: {exc.strerror or exc}") from None
        try:
            stdout, stderr = await asyncio.wait_for(
                process.communicate(render(event, self.settings.content)), self.settings.timeout
            )
        except TimeoutError:
            process.kill()
            await process.wait()
            raise DeliveryFailed(
                f"{program} did not finish within {self.settings.timeout:g} s"
            ) from None
        output = _tail(stdout)
        if process.returncode != 0:
            detail = _tail(stderr, 500).strip() or "no error output"
            raise DeliveryFailed(f"{program} exited with {process.returncode}: {detail}", output)
        return output

    async def close(self) -> None:
        return None


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
        headers = {"Content-Type": "application/json", **self.settings.headers}
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

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


def _tail(data: bytes, limit: int = OUTPUT_LIMIT) -> str:
    return data[-limit:].decode("utf-8", "replace")
