"""The request log on PostgreSQL (``store/requests.py`` holds what both backends share)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from tcwebhook.requestlog import Limits, Write
from tcwebhook.store import requests
from tcwebhook.store.postgres.connection import PostgresDatabase
from tcwebhook.store.requests import RequestPage, RequestQuery
from tcwebhook.store.sql import POSTGRES


class PostgresRequests(PostgresDatabase):
    """Writes the request log's aggregated rows, reads it merged with the stored events."""

    def record_requests(self, writes: Sequence[Write]) -> None:
        if writes:
            with self.writing("record refused requests") as connection:
                requests.upsert(connection, POSTGRES, writes)

    def trim_requests(self, limits: Limits, now: dt.datetime) -> int:
        with self.writing("trim the request log") as connection:
            return requests.trim(connection, POSTGRES, limits, now)

    def page_requests(self, query: RequestQuery) -> RequestPage:
        with self.reading("read the request log") as connection:
            return requests.page(connection, POSTGRES, query)

    def latest_request(self) -> tuple[int, int]:
        with self.reading("read the request log") as connection:
            return requests.latest(connection, POSTGRES)
