"""A hand-written Flask receiver, as a user might write one: check the token, parse, append.

Run under gunicorn: ``BENCH_TOKEN=... BENCH_OUT=events.jsonl gunicorn flask_receiver:app``.
It appends each body as one line to BENCH_OUT (flushed, not fsynced: what such scripts do).
"""

from __future__ import annotations

import hmac
import json
import os

from flask import Flask, Response, request

app = Flask(__name__)
_EXPECTED = f"Bearer {os.environ.get('BENCH_TOKEN', '')}".encode()
_OUT = os.environ.get("BENCH_OUT", "flask-events.jsonl")


@app.post("/tradecloud/order")
def receive() -> Response:
    given = (request.headers.get("Authorization") or "").encode()
    if not hmac.compare_digest(given, _EXPECTED):
        return Response('{"error":"unauthorized"}', status=401, mimetype="application/json")
    event = request.get_json(force=True)
    with open(_OUT, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(event) + "\n")
    return Response('{"status":"stored"}', mimetype="application/json")
