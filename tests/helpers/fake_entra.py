"""A fake Entra tenant: an HTTPS OpenID configuration and JWKS, and tokens signed by its keys."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import time
from dataclasses import dataclass, field
from typing import Any

import jwt
from aiohttp import web
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

TENANT = "11111111-2222-3333-4444-555555555555"
AUDIENCE = "api://tcwebhook-test"
CLIENT_ID = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
V1_ISSUER = f"https://sts.windows.net/{TENANT}/"
V2_ISSUER = f"https://login.microsoftonline.com/{TENANT}/v2.0"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class SigningKey:
    kid: str
    private: rsa.RSAPrivateKey = field(
        default_factory=lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )

    def jwk(self) -> dict[str, Any]:
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.private.public_key()))
        return {**jwk, "kid": self.kid, "use": "sig", "alg": "RS256"}

    def public_pem(self) -> bytes:
        return self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


def claims(version: str = "2.0", **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base: dict[str, Any] = {
        "aud": AUDIENCE,
        "iss": V2_ISSUER if version == "2.0" else V1_ISSUER,
        "iat": now,
        "nbf": now,
        "exp": now + 3600,
        "tid": TENANT,
        "ver": version,
        ("azp" if version == "2.0" else "appid"): CLIENT_ID,
        "roles": ["Webhook.Send"],
    }
    base.update(overrides)
    return base


def token(key: SigningKey, payload: dict[str, Any], kid: str | None = None) -> str:
    return jwt.encode(payload, key.private, algorithm="RS256", headers={"kid": kid or key.kid})


def token_with_header(key: SigningKey, payload: dict[str, Any], header: dict[str, Any]) -> str:
    """Correctly RS256-signed, with any JOSE header (PyJWT refuses to write odd ones)."""
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(payload).encode())}"
    signature = key.private.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{_b64(signature)}"


def unsigned_token(payload: dict[str, Any], kid: str) -> str:
    """``alg: none``: no signature at all."""
    header = _b64(json.dumps({"alg": "none", "typ": "JWT", "kid": kid}).encode())
    return f"{header}.{_b64(json.dumps(payload).encode())}."


def hs256_with_public_key(key: SigningKey, payload: dict[str, Any]) -> str:
    """HS256 whose shared secret is the (public) RSA key: the algorithm-confusion attack."""
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": key.kid}).encode())
    signing_input = f"{header}.{_b64(json.dumps(payload).encode())}"
    mac = hmac.new(key.public_pem(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(mac)}"


@dataclass
class FakeTenant:
    """Entra's OpenID configuration and JWKS, able to misbehave.

    ``keys`` may change at any time (Entra rolls its keys). ``status`` other than 200 is answered
    to every request (the key server is down); ``hold`` seconds pass before each answer (a slow or
    hanging key server; ``release`` ends every wait). ``fetches`` counts OpenID configuration
    requests (one per fetch of the keys, answered or not), ``hits`` JWKS downloads.
    """

    keys: list[SigningKey]
    base_url: str = ""
    hits: int = 0
    fetches: int = 0
    status: int = 200
    hold: float = 0.0
    _released: asyncio.Event = field(default_factory=asyncio.Event)

    def app(self) -> web.Application:
        async def configuration(request: web.Request) -> web.Response:
            self.fetches += 1
            await self._misbehave()
            if self.status != 200:
                return web.json_response({"error": "temporarily_unavailable"}, status=self.status)
            return web.json_response(
                {"issuer": V2_ISSUER, "jwks_uri": f"{self.base_url}/discovery/v2.0/keys"}
            )

        async def jwks(request: web.Request) -> web.Response:
            self.hits += 1
            return web.json_response({"keys": [key.jwk() for key in self.keys]})

        app = web.Application()
        app.router.add_get("/v2.0/.well-known/openid-configuration", configuration)
        app.router.add_get("/discovery/v2.0/keys", jwks)
        return app

    async def _misbehave(self) -> None:
        if self.hold > 0 and not self._released.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._released.wait(), self.hold)

    def release(self) -> None:
        """Answer every held request now (before the server closes)."""
        self._released.set()

    @property
    def openid_config_url(self) -> str:
        return f"{self.base_url}/v2.0/.well-known/openid-configuration"
