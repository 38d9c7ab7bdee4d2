"""Behind a reverse proxy: plain HTTP only locally, forwarded addresses only from trusted peers."""

from __future__ import annotations

import asyncio
import signal
import socket
import stat
from pathlib import Path

import aiohttp
import pytest

from tcwebhook.config import ProxySettings, ServerSettings, Settings, TlsFiles
from tcwebhook.errors import ConfigError
from tcwebhook.server.plan import plan
from tests.helpers.paths import FIXTURES
from tests.helpers.receiver import TOKEN, MakeReceiver
from tests.helpers.serve import start_server

ORDER = (FIXTURES / "tradecloud" / "order-event.json").read_bytes()
PLAIN = TlsFiles(enabled=False)


@pytest.mark.parametrize(
    ("server", "message"),
    [
        (ServerSettings(host="0.0.0.0", tls=PLAIN, proxy=ProxySettings(("127.0.0.1",))),
         "which other machines can reach"),
        (ServerSettings(tls=PLAIN), "server.proxy.trusted is empty"),
    ],
)  # fmt: skip
def test_other_plain_http_configurations_are_refused(
    tmp_path: Path, server: ServerSettings, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        plan(Settings(data_dir=tmp_path, server=server))


def test_plain_http_on_loopback_behind_a_trusted_proxy_is_allowed(tmp_path: Path) -> None:
    server = ServerSettings(tls=PLAIN, proxy=ProxySettings(("127.0.0.1",)))
    serve_plan = plan(Settings(data_dir=tmp_path, server=server))
    assert serve_plan.certificates is None
    assert serve_plan.url("/x").startswith("http://")


@pytest.mark.parametrize(
    ("trusted", "headers", "status", "client"),
    [
        (("127.0.0.1",), {"X-Forwarded-For": "203.0.113.7"}, 200, "203.0.113.7"),
        (("127.0.0.1", "10.0.0.0/8"), {"X-Forwarded-For": "203.0.113.7, 10.1.2.3"}, 200,
         "203.0.113.7"),
        (("127.0.0.1",), {"Forwarded": 'for="203.0.113.9:4711";proto=https'}, 200, "203.0.113.9"),
        (("127.0.0.1",), {"X-Forwarded-For": "198.51.100.1"}, 403, "198.51.100.1"),
        # An untrusted peer's header is ignored: its own address counts (and is refused).
        (("10.9.9.9",), {"X-Forwarded-For": "203.0.113.7"}, 403, "127.0.0.1"),
        # nginx as documented replaces X-Forwarded-For and passes the client's Forwarded on:
        # headers that disagree name nobody, so the spoofed allowed address does not pass.
        (("127.0.0.1",), {"X-Forwarded-For": "198.51.100.1", "Forwarded": "for=203.0.113.7"},
         403, "127.0.0.1"),
        (("127.0.0.1",), {"X-Forwarded-For": "203.0.113.7", "Forwarded": "for=203.0.113.7"},
         200, "203.0.113.7"),
        (("127.0.0.1",), {"X-Forwarded-For": "[2001:db8::7]:4711"}, 403, "2001:db8::7"),
        (("127.0.0.1",), {"X-Forwarded-For": "203.0.113.7:4711"}, 200, "203.0.113.7"),
        # Unreadable chains name nobody: the proxy's own address, never a 500 or 503.
        (("127.0.0.1",), {"Forwarded": 'for="[::1'}, 403, "127.0.0.1"),
        (("127.0.0.1",), {"Forwarded": "for=unknown;;;,=,for="}, 403, "127.0.0.1"),
        (("127.0.0.1",), {"X-Forwarded-For": ",,, 999.1.1.1"}, 403, "127.0.0.1"),
        (("127.0.0.1",), {"X-Forwarded-For": "[]:]:[:"}, 403, "127.0.0.1"),
    ],
)  # fmt: skip
async def test_forwarded_client_and_allow_from(
    make_receiver: MakeReceiver, trusted: tuple[str, ...], headers: dict, status: int, client: str
) -> None:
    receiver = await make_receiver(proxy=ProxySettings(trusted), allow_from=("203.0.113.0/24",))
    response = await receiver.post("/tradecloud/order", ORDER, headers)
    assert response.status == status
    assert receiver.logs[-1].client == client
    assert receiver.store.count() == (1 if status == 200 else 0)


def test_serve_on_a_unix_socket_behind_a_proxy(tmp_path: Path) -> None:
    socket_path = tmp_path / "tcwebhook.sock"
    config = tmp_path / "tcwebhook.yaml"
    config.write_text(
        f"server:\n  tls: false\n  unix_socket: {socket_path}\n  proxy:\n    trusted: [unix]\n"
        f"auth:\n  token: {TOKEN}\n"
    )
    process, _ = start_server(tmp_path / "data", "--config", str(config))

    async def post() -> tuple[int, str]:
        connector = aiohttp.UnixConnector(path=str(socket_path))
        headers = {"Authorization": f"Bearer {TOKEN}", "X-Forwarded-For": "203.0.113.7",
                   "Content-Type": "application/json"}  # fmt: skip
        async with (
            aiohttp.ClientSession(connector=connector) as session,
            session.post("http://proxy/tradecloud/order", data=ORDER, headers=headers) as answer,
        ):
            return answer.status, await answer.text()

    try:
        status, text = asyncio.run(post())
        assert status == 200, text
        # Only this user and its group (the proxy's) may connect, whatever the umask.
        assert stat.S_IMODE(socket_path.stat().st_mode) == 0o660
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
    log = next(tmp_path.glob("serve-*.log")).read_text()
    assert '"client":"203.0.113.7"' in log
    assert not socket_path.exists()  # removed at stop

    # A socket file left behind by a crash does not stop the next start.
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(socket_path))
    stale.close()
    process, _ = start_server(tmp_path / "data", "--config", str(config))
    try:
        assert asyncio.run(post())[0] == 200
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
