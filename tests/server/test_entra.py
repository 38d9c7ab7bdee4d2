"""Entra ID access tokens (auth.type entra) against a local HTTPS OpenID/JWKS server."""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
import trustme
from aiohttp import web
from aiohttp.test_utils import TestServer

from tcwebhook.auth import keys as signing_keys
from tcwebhook.auth.entra import EntraAuthenticator
from tcwebhook.auth.keys import KeysUnavailable, SigningKeys
from tcwebhook.config import AuthSettings, Paths
from tcwebhook.server.app import RECEIVER_AUTH
from tests.helpers.fake_entra import (
    AUDIENCE,
    CLIENT_ID,
    TENANT,
    FakeTenant,
    SigningKey,
    claims,
    hs256_with_public_key,
    token,
    token_with_header,
    unsigned_token,
)
from tests.helpers.paths import FIXTURES
from tests.helpers.receiver import AUTH, MakeReceiver, Receiver

ORDER = (FIXTURES / "tradecloud" / "order-event.json").read_bytes()
KEY = SigningKey("key-1")
ROTATED = SigningKey("key-2")


@pytest.fixture
async def tenant(server_ssl_ctx: ssl.SSLContext, tls_ca: trustme.CA, tmp_path: Path) -> Any:
    fake = FakeTenant([KEY])
    server = TestServer(fake.app(), host="127.0.0.1")
    await server.start_server(ssl=server_ssl_ctx)
    fake.base_url = f"https://127.0.0.1:{server.port}"
    yield fake
    fake.release()
    await server.close()


@pytest.fixture
def ca_file(tls_ca: trustme.CA, tmp_path: Path) -> Path:
    path = tmp_path / "ca.pem"
    tls_ca.cert_pem.write_to_path(str(path))
    return path


def entra(url: str, ca_file: Path, **overrides: Any) -> AuthSettings:
    options: dict[str, Any] = {
        "type": "entra",
        "tenant": TENANT,
        "audiences": (AUDIENCE,),
        "client_ids": (CLIENT_ID,),
        "openid_config_url": url,
        "ca_file": ca_file,
        **overrides,
    }
    return AuthSettings(**options)


Send = Callable[[str | None], Awaitable[Any]]


@pytest.fixture
async def entra_receiver(
    make_receiver: MakeReceiver, tenant: FakeTenant, ca_file: Path
) -> Receiver:
    return await make_receiver(entra(tenant.openid_config_url, ca_file, roles=("Webhook.Send",)))


async def post(receiver: Receiver, bearer: str | None, path: str = "/tradecloud/order") -> Any:
    headers = {"Content-Type": "application/json"}
    if bearer is not None:
        headers["Authorization"] = f"Bearer {bearer}"
    return await receiver.client.post(path, data=ORDER, headers=headers)


@pytest.mark.parametrize("version", ["1.0", "2.0"])
async def test_valid_v1_and_v2_tokens_are_accepted(entra_receiver: Receiver, version: str) -> None:
    response = await post(entra_receiver, token(KEY, claims(version)))
    assert response.status == 200, await response.text()
    assert entra_receiver.store.count() == 1


now = int(time.time())
REFUSED = {
    "expired": claims(exp=now - 600, iat=now - 4000, nbf=now - 4000),
    "not yet valid": claims(nbf=now + 3600, exp=now + 7200),
    "wrong audience": claims(aud="api://someone-else"),
    "wrong issuer": claims(iss="https://login.microsoftonline.com/other-tenant/v2.0"),
    "wrong client id v2": claims(azp="not-tradecloud"),
    "wrong client id v1": claims("1.0", appid="not-tradecloud"),
    "missing role": claims(roles=["Something.Else"]),
}


@pytest.mark.parametrize("case", REFUSED)
async def test_invalid_tokens_are_401_invalid_token(entra_receiver: Receiver, case: str) -> None:
    response = await post(entra_receiver, token(KEY, REFUSED[case]))
    assert response.status == 401
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
    assert entra_receiver.store.count() == 0


@pytest.mark.parametrize(
    "forged",
    [
        pytest.param(unsigned_token(claims(), KEY.kid), id="alg-none"),
        pytest.param(hs256_with_public_key(KEY, claims()), id="hs256-with-public-key"),
        pytest.param(token(ROTATED, claims(), kid=KEY.kid), id="wrong-signature"),
        pytest.param("not-a-jwt", id="garbage"),
    ],
)
async def test_forged_tokens_are_refused(entra_receiver: Receiver, forged: str) -> None:
    response = await post(entra_receiver, forged)
    assert response.status == 401
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


async def test_missing_token_and_basic_are_401(entra_receiver: Receiver) -> None:
    for headers in ({}, {"Authorization": "Basic dXNlcjpwYXNz"}, AUTH):
        response = await entra_receiver.client.post(
            "/tradecloud/order", data=ORDER, headers=headers
        )
        assert response.status == 401
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


async def test_rotated_key_is_fetched_once_and_forged_kids_are_rate_limited(
    entra_receiver: Receiver, tenant: FakeTenant
) -> None:
    assert (await post(entra_receiver, token(KEY, claims()))).status == 200
    hits = tenant.hits
    tenant.keys = [ROTATED]  # Entra rolls its signing key
    response = await post(entra_receiver, token(ROTATED, claims()))
    assert response.status == 200
    assert tenant.hits == hits + 1
    for _ in range(3):  # unknown key ids no longer reach the key server: come back later
        response = await post(entra_receiver, token(ROTATED, claims(), kid="forged"))
        assert response.status == 503
        assert 0 < int(response.headers["Retry-After"]) <= 300
    assert tenant.hits == hits + 1


async def test_key_server_down_is_503_with_retry_after(
    make_receiver: MakeReceiver, ca_file: Path
) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    url = f"https://127.0.0.1:{port}/v2.0/.well-known/openid-configuration"
    receiver = await make_receiver(entra(url, ca_file))
    response = await post(receiver, token(KEY, claims()))
    assert response.status == 503
    assert int(response.headers["Retry-After"]) > 0
    assert receiver.store.count() == 0


async def test_auth_per_path_entra_for_orders_bearer_for_shipments(
    make_receiver: MakeReceiver, tenant: FakeTenant, ca_file: Path
) -> None:
    paths = Paths(order_auth=entra(tenant.openid_config_url, ca_file))
    receiver = await make_receiver(paths=paths)  # top-level auth: the static bearer token
    shipment = (FIXTURES / "tradecloud" / "shipment-event.json").read_bytes()
    good = token(KEY, claims())
    assert (await post(receiver, good)).status == 200
    headers = {**AUTH, "Content-Type": "application/json"}
    assert (await receiver.client.post("/tradecloud/order", data=ORDER, headers=AUTH)).status == 401
    ok = await receiver.client.post("/tradecloud/shipment", data=shipment, headers=headers)
    assert ok.status == 200
    refused = await receiver.client.post(
        "/tradecloud/shipment", data=shipment, headers={"Authorization": f"Bearer {good}"}
    )
    assert refused.status == 401


def test_entra_settings_are_validated() -> None:
    from tcwebhook.errors import ConfigError

    with pytest.raises(ConfigError, match=r"auth\.tenant"):
        AuthSettings(type="entra", audiences=("a",), client_ids=("c",))
    with pytest.raises(ConfigError, match="token_versions"):
        AuthSettings(type="entra", tenant="t", audiences=("a",), client_ids=("c",),
                     token_versions=("3.0",))  # fmt: skip
    settings = AuthSettings(type="entra", tenant="t", audiences=("a",), client_ids=("c",))
    assert EntraAuthenticator(settings).keys.url.startswith(
        "https://login.microsoftonline.com/t/v2.0/"
    )


async def test_key_fetch_errors_never_show_the_credentials_of_the_url(
    server_ssl_ctx: ssl.SSLContext, ca_file: Path
) -> None:
    server = TestServer(web.Application(), host="127.0.0.1")  # 404 for every path
    await server.start_server(ssl=server_ssl_ctx)
    try:
        for url in (
            f"https://user:pass-s3cret@127.0.0.1:{server.port}/v2.0/openid-configuration",
            f"https://127.0.0.1:{server.port}/v2.0/openid-configuration?code=s3cret",
        ):
            with pytest.raises(KeysUnavailable) as raised:
                await SigningKeys(entra(url, ca_file)).refresh()
            assert "s3cret" not in str(raised.value)
            assert f"127.0.0.1:{server.port}/v2.0/openid-configuration" in str(raised.value)
    finally:
        await server.close()


async def test_key_documents_arriving_in_pieces_are_read_whole(
    server_ssl_ctx: ssl.SSLContext, ca_file: Path
) -> None:
    document = orjson.dumps({"keys": [KEY.jwk()] * 40})  # ~70 KB, as several chunks

    async def configuration(request: web.Request) -> web.Response:
        return web.json_response({"jwks_uri": str(request.url.with_path("/keys"))})

    async def jwks(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        for start in range(0, len(document), 8192):
            await response.write(document[start : start + 8192])
            await asyncio.sleep(0.01)
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_get("/config", configuration)
    app.router.add_get("/keys", jwks)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server(ssl=server_ssl_ctx)
    try:
        keys = SigningKeys(entra(f"https://127.0.0.1:{server.port}/config", ca_file))
        await keys.refresh()
        assert keys.get(KEY.kid) is not None
    finally:
        await server.close()


# ----------------------------------------------------------------------------------------------
# Key rollover and a misbehaving key server: a valid event is never answered 401, and no request
# makes the key server work harder or waits long on it.

STRANGER = SigningKey("stranger")  # anyone can mint tokens; only the tenant's keys sign valid ones


def _keys_of(receiver: Receiver) -> SigningKeys:
    authenticator = receiver.client.app[RECEIVER_AUTH].for_path("/tradecloud/order")
    assert isinstance(authenticator, EntraAuthenticator)
    return authenticator.keys


async def deliver(receiver: Receiver, bearer: str, within: float = 30.0) -> Any:
    """Send like Tradecloud: a 503 is retried, anything else is final."""
    deadline = time.monotonic() + within
    while True:
        response = await post(receiver, bearer)
        if response.status != 503 or time.monotonic() > deadline:
            return response
        assert int(response.headers["Retry-After"]) > 0
        await asyncio.sleep(0.2)


async def test_a_stray_unknown_key_id_does_not_make_a_rolled_key_refused(
    make_receiver: MakeReceiver, tenant: FakeTenant, ca_file: Path
) -> None:
    receiver = await make_receiver(entra(tenant.openid_config_url, ca_file))
    _keys_of(receiver).unknown_kid_refresh_every = 3.0  # the spacing, short enough to wait out
    assert (await deliver(receiver, token(KEY, claims()))).status == 200
    stray = await post(receiver, token(STRANGER, claims()))  # right claims, a key nobody published
    assert stray.status == 401  # the keys were fetched for it and lack its key id
    tenant.keys = [KEY, ROTATED]  # Entra publishes its next key right after
    first = await post(receiver, token(ROTATED, claims()))
    assert first.status == 503, await first.text()  # the fetch is spent: come back, not 401
    assert 0 < int(first.headers["Retry-After"]) <= 3  # when the spacing allows a fetch
    hits = tenant.hits
    for _ in range(200):  # a fetch was booked for when the spacing allows: no request needed
        if tenant.hits > hits:
            break
        await asyncio.sleep(0.1)
    assert tenant.hits == hits + 1
    for _ in range(4):  # the retries find the key at once
        assert (await post(receiver, token(ROTATED, claims()))).status == 200
    assert tenant.hits <= 3  # at start, for the stray token, once booked for the rolled key


async def test_rolled_key_waits_for_the_spacing_with_503_never_401(
    entra_receiver: Receiver, tenant: FakeTenant
) -> None:
    assert (await deliver(entra_receiver, token(KEY, claims()))).status == 200
    assert (await post(entra_receiver, token(STRANGER, claims()))).status == 401
    fetches = tenant.fetches
    tenant.keys = [KEY, ROTATED]
    for _ in range(5):
        response = await post(entra_receiver, token(ROTATED, claims()))
        assert response.status == 503, await response.text()
        assert 200 < int(response.headers["Retry-After"]) <= 300  # the next fetch allowed
        assert "WWW-Authenticate" not in response.headers
    assert tenant.fetches == fetches
    assert entra_receiver.store.count() == 1


async def test_key_server_down_after_a_roll_is_503_and_fetches_stay_spaced(
    entra_receiver: Receiver, tenant: FakeTenant
) -> None:
    assert (await deliver(entra_receiver, token(KEY, claims()))).status == 200
    fetches = tenant.fetches
    tenant.status = 503  # the key server goes down, and Entra rolls its key meanwhile
    for _ in range(20):
        response = await post(entra_receiver, token(ROTATED, claims()))
        assert response.status == 503, await response.text()
        assert 0 < int(response.headers["Retry-After"]) <= 30
    assert tenant.fetches == fetches + 1  # one try, then the next no sooner than 30 s later


WRONG_WHATEVER_THE_KEYS: dict[str, tuple[str, str]] = {
    # case: (token, what the refusal says)
    "expired": (
        token(STRANGER, claims(exp=now - 600, iat=now - 4000, nbf=now - 4000)),
        "expired",
    ),
    "wrong audience": (token(STRANGER, claims(aud="api://someone-else")), "audience"),
    "wrong issuer": (
        token(STRANGER, claims(iss="https://login.microsoftonline.com/other/v2.0")),
        "issuer",
    ),
    "wrong client": (token(STRANGER, claims(azp="not-tradecloud")), "client"),
    "missing role": (token(STRANGER, claims(roles=["Other"])), "role"),
    "no issuer": (token(STRANGER, {k: v for k, v in claims().items() if k != "iss"}), "valid"),
    "HS256": (hs256_with_public_key(STRANGER, claims()), "RS256"),
}


@pytest.mark.parametrize("case", WRONG_WHATEVER_THE_KEYS)
async def test_tokens_failing_checks_without_a_key_never_use_the_key_fetch(
    entra_receiver: Receiver, tenant: FakeTenant, case: str
) -> None:
    assert (await deliver(entra_receiver, token(KEY, claims()))).status == 200
    fetches = tenant.fetches
    bad, said = WRONG_WHATEVER_THE_KEYS[case]
    for _ in range(5):
        response = await post(entra_receiver, bad)
        assert response.status == 401
        challenge = response.headers["WWW-Authenticate"]
        assert 'error="invalid_token"' in challenge and said in challenge, challenge
    assert tenant.fetches == fetches
    tenant.keys = [KEY, ROTATED]  # the fetch for a rolled key is still there to use
    assert (await deliver(entra_receiver, token(ROTATED, claims()), within=20)).status == 200
    assert tenant.fetches == fetches + 1


async def test_no_keys_yet_self_minted_tokens_do_not_make_fetches(
    make_receiver: MakeReceiver, tenant: FakeTenant, ca_file: Path
) -> None:
    tenant.status = 503  # the key server is down when serve starts
    receiver = await make_receiver(entra(tenant.openid_config_url, ca_file))
    answers = [await post(receiver, token(STRANGER, claims(), kid=f"k{n}")) for n in range(40)]
    assert {response.status for response in answers} == {503}
    assert all(0 < int(response.headers["Retry-After"]) <= 30 for response in answers)
    assert 1 <= tenant.fetches <= 2  # the first at start, at most one more 30 s later


async def test_key_server_back_the_booked_fetch_brings_the_keys(
    make_receiver: MakeReceiver, tenant: FakeTenant, ca_file: Path, monkeypatch: Any
) -> None:
    monkeypatch.setattr(signing_keys, "RETRY_EVERY", 0.5)
    tenant.status = 503
    receiver = await make_receiver(entra(tenant.openid_config_url, ca_file))
    assert (await post(receiver, token(KEY, claims()))).status == 503
    tenant.status = 200
    assert (await deliver(receiver, token(KEY, claims()), within=20)).status == 200
    assert tenant.fetches < 60  # spaced: at most a few per second


async def test_hanging_key_server_holds_no_request_long_and_requests_share_one_fetch(
    make_receiver: MakeReceiver, tenant: FakeTenant, ca_file: Path
) -> None:
    tenant.hold = 60.0  # accepts, then never answers within the fetch timeout
    receiver = await make_receiver(entra(tenant.openid_config_url, ca_file))
    started = time.monotonic()
    answers = await asyncio.gather(*(post(receiver, token(KEY, claims())) for _ in range(10)))
    answers += [await post(receiver, token(STRANGER, claims(), kid=f"k{n}")) for n in range(5)]
    elapsed = time.monotonic() - started
    assert {response.status for response in answers} == {503}
    assert all(int(response.headers["Retry-After"]) > 0 for response in answers)
    assert elapsed < 7.0  # a wait of 2 s, not the fetch timeout of 10 s per request
    assert tenant.fetches == 1


async def test_slow_key_server_the_fetch_completes_off_the_request_path(
    make_receiver: MakeReceiver, tenant: FakeTenant, ca_file: Path
) -> None:
    tenant.hold = 6.0
    receiver = await make_receiver(entra(tenant.openid_config_url, ca_file))
    started = time.monotonic()
    first = await post(receiver, token(KEY, claims()))
    assert first.status == 503
    assert time.monotonic() - started < 5.0  # within the time Tradecloud waits for an answer
    for _ in range(200):  # the fetch goes on without the request
        if tenant.hits:
            break
        await asyncio.sleep(0.1)
    assert (await deliver(receiver, token(KEY, claims()), within=10)).status == 200
    assert tenant.fetches == 1


ODD_TYPES = {
    "appid a list": claims("1.0", appid=[CLIENT_ID]),
    "azp an object": claims(azp={"id": CLIENT_ID}),
    "roles nested": claims(roles=[["Webhook.Send"]]),
    "roles a string": claims(roles="Webhook.Send"),
    "iss a list": claims(iss=[f"https://login.microsoftonline.com/{TENANT}/v2.0"]),
    "aud a number": claims(aud=42),
    "exp a string": claims(exp="tomorrow"),
    "nbf null": claims(nbf=None),
    "iat a list": claims(iat=[now]),
}


@pytest.mark.parametrize("case", ODD_TYPES)
async def test_claims_of_unexpected_types_are_401_invalid_token(
    entra_receiver: Receiver, case: str
) -> None:
    header = {"alg": "RS256", "typ": "JWT", "kid": KEY.kid}
    response = await post(entra_receiver, token_with_header(KEY, ODD_TYPES[case], header))
    assert response.status == 401, await response.text()
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


@pytest.mark.parametrize("kid", [["key-1"], {"kid": "key-1"}, 1, None])
async def test_key_ids_of_unexpected_types_are_401_invalid_token(
    entra_receiver: Receiver, tenant: FakeTenant, kid: Any
) -> None:
    bearer = token_with_header(KEY, claims(), {"alg": "RS256", "typ": "JWT", "kid": kid})
    response = await post(entra_receiver, bearer)
    assert response.status == 401, await response.text()
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
