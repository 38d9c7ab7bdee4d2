"""Random and mutated bodies and headers never crash the receiver or get a 5xx."""

from __future__ import annotations

import asyncio
import http.client
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tcwebhook.config import AuthSettings, ServerSettings, Settings
from tcwebhook.server.app import create_app
from tcwebhook.store import open_store
from tests.helpers.paths import FIXTURES
from tests.helpers.receiver import TOKEN

SAMPLES = [
    orjson.loads(path.read_bytes())
    for path in sorted((FIXTURES / "tradecloud").glob("*event.json"))
]
ALLOWED = {200, 400, 401, 404, 405, 413, 415}


@pytest.fixture(scope="module")
def threaded_server(
    tmp_path_factory: pytest.TempPathFactory, server_ssl_ctx: ssl.SSLContext
) -> Iterator[int]:
    """The app on its own loop in a thread, so hypothesis can drive it synchronously."""
    folder: Path = tmp_path_factory.mktemp("fuzz")
    settings = Settings(
        data_dir=folder,
        server=ServerSettings(max_body_bytes=64 * 1024),
        auth=AuthSettings(token=TOKEN),
    )
    store = open_store(settings.store_url)
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(create_app(settings, store), access_log=None)
    loop.run_until_complete(runner.setup())
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=server_ssl_ctx)
    loop.run_until_complete(site.start())
    port = runner.addresses[0][1]
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield port
    asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    loop.close()
    store.close()


def request(
    port: int, context: ssl.SSLContext, method: str, path: str, body: bytes, headers: dict[str, str]
) -> int:
    connection = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=10)
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def mutate(value: object, data: st.DataObject) -> object:
    """Replace one randomly chosen node of a JSON value with a random JSON value."""
    if isinstance(value, dict) and value and data.draw(st.booleans()):
        key = data.draw(st.sampled_from(sorted(value)))
        copy = dict(value)
        if data.draw(st.booleans()):
            del copy[key]
        else:
            copy[key] = mutate(copy[key], data)
        return copy
    if isinstance(value, list) and value and data.draw(st.booleans()):
        index = data.draw(st.integers(0, len(value) - 1))
        copy = list(value)
        copy[index] = mutate(copy[index], data)
        return copy
    return data.draw(json_values)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)
content_types = st.sampled_from(
    [
        None,
        "application/json",
        "application/json; charset=utf-8",
        "text/plain",
        "application/xml",
        "x/y",
    ]
)
authorizations = st.sampled_from(
    [None, f"Bearer {TOKEN}", f"Bearer {TOKEN}x", "Basic Zm9vOmJhcg==", "Bearer"]
)


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_random_input_never_gets_a_5xx(
    threaded_server: int, client_ssl_ctx: ssl.SSLContext, data: st.DataObject
) -> None:
    choice = data.draw(st.sampled_from(["mutated", "random-json", "bytes", "truncated"]))
    sample = data.draw(st.sampled_from(SAMPLES))
    if choice == "mutated":
        body = orjson.dumps(mutate(sample, data))
    elif choice == "random-json":
        body = orjson.dumps(data.draw(json_values))
    elif choice == "truncated":
        raw = orjson.dumps(sample)
        body = raw[: data.draw(st.integers(0, len(raw)))]
    else:
        body = data.draw(st.binary(max_size=300))
    headers = {}
    if (content_type := data.draw(content_types)) is not None:
        headers["Content-Type"] = content_type
    if (authorization := data.draw(authorizations)) is not None:
        headers["Authorization"] = authorization
    method = data.draw(st.sampled_from(["POST", "PUT", "POST", "GET", "DELETE"]))
    path = data.draw(
        st.sampled_from(
            ["/tradecloud/order", "/tradecloud/shipment", "/tradecloud/order/x%2Fy", "/nope"]
        )
    )
    status = request(threaded_server, client_ssl_ctx, method, path, body, headers)
    assert status in ALLOWED
    if authorization != f"Bearer {TOKEN}":
        assert status == 401
