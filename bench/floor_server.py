"""The floor of a durable receiver on this stack: the baseline (bench/baseline_server.py) plus
tcwebhook's own SQLite store, and nothing else.

Each request's body is committed (group commit, ``synchronous=FULL``) under a unique dedup key,
looked up first, before the 200, as ``serve`` does; but none of ``serve``'s other work is done: no
parsing, no depth or length checks, no request log line, no connection guard. What this costs
above the baseline is what the store alone costs per event; ``serve`` cannot cost less.
"""

from __future__ import annotations

import hmac
import itertools
from pathlib import Path

from aiohttp import web
from baseline_server import argument_parser, run

from tcwebhook.store import NewEvent, Store, open_store
from tcwebhook.store.clock import utc_now


def make_app(token: str, store: Store) -> web.Application:
    expected = f"Bearer {token}".encode()
    numbers = itertools.count(1)  # the benchmark's message ids are unique too

    async def receive(request: web.Request) -> web.Response:
        given = (request.headers.get("Authorization") or "").encode()
        if not hmac.compare_digest(given, expected):
            return web.json_response({"error": "unauthorized"}, status=401)
        body = await request.read()
        event = NewEvent(
            received_at=utc_now(),
            kind="order",
            event_name=None,
            message_id=None,
            dedup_key=f"m:{next(numbers)}",
            resource_id=None,
            number=None,
            changed_lines=(),
            method="POST",
            path=request.path,
            headers={},
            body=body,
        )
        result = await store.append(event)
        return web.json_response({"status": "stored", "id": result.id})

    app = web.Application(client_max_size=10 * 1024 * 1024)
    app.router.add_post("/tradecloud/order", receive)
    return app


def main() -> None:
    parser = argument_parser(__doc__)
    parser.add_argument("--database", type=Path, required=True)
    args = parser.parse_args()
    store = open_store(f"sqlite:///{args.database}")
    try:
        run(make_app(args.token_file.read_text().strip(), store), args)
    finally:
        store.close()


if __name__ == "__main__":
    main()
