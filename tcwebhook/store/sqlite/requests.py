"""The request log on SQLite (``store/requests.py`` holds what both backends share)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from tcwebhook.requestlog import Limits, Write
from tcwebhook.store import requests
from tcwebhook.store.requests import RequestPage, RequestQuery
from tcwebhook.store.sql import SQLITE
from tcwebhook.store.sqlite.connection import SqliteDatabase


class SqliteRequests(SqliteDatabase):
    """Writes the request log's aggregated rows, reads it merged with the stored events."""

    def record_requests(self, writes: Sequence[Write]) -> None:
        if writes:
            with self.writing() as connection:
                requests.upsert(connection, SQLITE, writes)

    def trim_requests(self, limits: Limits, now: dt.datetime) -> int:
        with self.writing() as connection:
            return requests.trim(connection, SQLITE, limits, now)

    def page_requests(self, query: RequestQuery) -> RequestPage:
        with self.reading() as connection:
            return requests.page(connection, SQLITE, query)

    def latest_request(self) -> tuple[int, int]:
        with self.reading() as connection:
            return requests.latest(connection, SQLITE)
