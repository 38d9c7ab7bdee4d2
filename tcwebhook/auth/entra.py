"""Microsoft Entra ID access tokens, as Tradecloud sends them for OAuth
(docs/tradecloud.md#webhook-authentication).

Only RS256 signatures by the tenant's published keys are accepted: ``alg: none`` and HMAC
(``HS256`` signed with the public key as a shared secret, the classic confusion attack) are refused
before any key is looked at.
"""

from __future__ import annotations

from typing import Any

import jwt

from tcwebhook.auth import Principal, Refusal, Verdict
from tcwebhook.auth.keys import KeysUnavailable, SigningKeys
from tcwebhook.config import AuthSettings
from tcwebhook.protocol import bearer_token

LEEWAY_SECONDS = 120  # clock skew between Entra and this host
RETRY_AFTER_SECONDS = 30
_CHALLENGE = 'Bearer realm="tcwebhook"'


def issuers(settings: AuthSettings) -> dict[str, str]:
    """Accepted ``iss`` → token version."""
    by_version = {
        "1.0": f"https://sts.windows.net/{settings.tenant}/",
        "2.0": f"https://login.microsoftonline.com/{settings.tenant}/v2.0",
    }
    return {by_version[version]: version for version in settings.token_versions}


def _invalid(reason: str, message: str) -> Refusal:
    # RFC 6750 §3: the error code tells the client the token itself is the problem.
    return Refusal(
        reason,
        message,
        challenge=f'{_CHALLENGE}, error="invalid_token", error_description="{message}"',
    )


# PyJWT's exception → (metric reason, the message sent back; never a token or claim value).
_JWT_REFUSALS: tuple[tuple[type[jwt.PyJWTError], str, str], ...] = (
    (jwt.ExpiredSignatureError, "expired", "the token has expired"),
    (jwt.ImmatureSignatureError, "not_yet_valid", "the token is not valid yet"),
    (jwt.InvalidAudienceError, "audience", "the token is for another audience"),
    (jwt.InvalidIssuerError, "issuer", "the token comes from another issuer"),
    (jwt.InvalidSignatureError, "signature", "the token signature is wrong"),
)

_MISSING = Refusal("missing", "no bearer token", challenge=_CHALLENGE)
_UNAVAILABLE = Refusal(
    "keys_unavailable",
    "the Entra signing keys cannot be fetched right now; retry later",
    status=503,
    retry_after=RETRY_AFTER_SECONDS,
)


class EntraGuard:
    """Validates ``Authorization: Bearer <Entra access token>``."""

    def __init__(self, settings: AuthSettings) -> None:
        self.settings = settings
        self.keys = SigningKeys(settings)
        self._issuers = issuers(settings)
        self._audiences = list(settings.audiences)
        self._client_ids = frozenset(settings.client_ids)
        self._roles = frozenset(settings.roles)

    async def start(self) -> None:
        await self.keys.start()

    async def stop(self) -> None:
        await self.keys.stop()

    def check(self, header: str | None) -> Verdict | None:
        token = bearer_token(header)
        if token is None:
            return _MISSING
        try:
            jose = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            return _invalid("malformed", "the token is not a JWT")
        if jose.get("alg") != "RS256":
            return _invalid("algorithm", "only RS256-signed tokens are accepted")
        key = self.keys.get(jose.get("kid"))
        if key is None:
            if not self.keys.loaded or self.keys.may_refresh_for_unknown_kid():
                return None  # authenticate() fetches the keys first
            return _invalid("unknown_key", "the token is signed by an unknown key")
        return self._verify(token, key)

    async def authenticate(self, header: str | None) -> Verdict:
        verdict = self.check(header)
        if verdict is not None:
            return verdict
        try:
            if self.keys.loaded:
                await self.keys.refresh_for_unknown_kid()
            else:
                await self.keys.refresh()
        except KeysUnavailable:
            # A 401 would make Tradecloud drop the event; a 503 makes it come back.
            return _UNAVAILABLE
        token = bearer_token(header)
        assert token is not None
        key = self.keys.get(jwt.get_unverified_header(token).get("kid"))
        if key is None:
            return _invalid("unknown_key", "the token is signed by an unknown key")
        return self._verify(token, key)

    def _verify(self, token: str, key: Any) -> Verdict:
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=["RS256"],
                audience=self._audiences,
                issuer=list(self._issuers),
                leeway=LEEWAY_SECONDS,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.PyJWTError as exc:
            for error, reason, message in _JWT_REFUSALS:
                if isinstance(exc, error):
                    return _invalid(reason, message)
            return _invalid("malformed", "the token is not a valid access token")
        version = self._issuers[claims["iss"]]
        client = claims.get("appid" if version == "1.0" else "azp")
        if client not in self._client_ids:
            return _invalid("client", "the token was issued to another client")
        roles = claims.get("roles")
        if self._roles and not (isinstance(roles, list) and self._roles.intersection(roles)):
            return _invalid("role", "the token lacks the required role")
        return Principal("entra", str(client))
