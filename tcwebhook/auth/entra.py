"""Microsoft Entra ID access tokens, as Tradecloud sends them for OAuth
(docs/tradecloud.md#webhook-authentication).

Only RS256 signatures by the tenant's published keys are accepted: ``alg: none`` and HMAC
(``HS256`` signed with the public key as a shared secret, the classic confusion attack) are refused
before any key is looked at.

Everything that can be checked without a key (algorithm, expiry, issuer, audience, client, roles,
the types of the claims read) is checked first, on the unverified token: a token that fails there
is wrong whatever the keys are, so it is refused at once and never starts a key fetch. A token that
passes them but whose key cannot be checked right now is answered 503 with ``Retry-After``, never
401: Tradecloud drops an event answered 401 and retries one answered 503.
"""

from __future__ import annotations

from typing import Any

import jwt

from tcwebhook.auth import AuthResult, Principal, Refusal
from tcwebhook.auth.keys import KeysUnavailable, SigningKeys, UnknownKey
from tcwebhook.config import AuthSettings
from tcwebhook.protocol import bearer_token

LEEWAY_SECONDS = 120  # clock skew between Entra and this host
_CHALLENGE = 'Bearer realm="tcwebhook"'
_REQUIRED_CLAIMS = ["exp", "iss", "aud"]


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
_MALFORMED = _invalid("malformed", "the token is not a valid access token")
_UNKNOWN_KEY = _invalid("unknown_key", "the token is signed by an unknown key")


def _unavailable(retry_after: int) -> Refusal:
    return Refusal(
        "keys_unavailable",
        "the Entra signing keys cannot be checked right now; retry later",
        status=503,
        retry_after=retry_after,
    )


class EntraAuthenticator:
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

    def check(self, header: str | None) -> AuthResult | None:
        """The result, or None when the signing key must be fetched first."""
        checked = self._check_without_key(header)
        if isinstance(checked, Refusal):
            return checked
        token, kid, client = checked
        key = self.keys.get(kid)
        return None if key is None else self._verify(token, key, client)

    async def authenticate(self, header: str | None) -> AuthResult:
        checked = self._check_without_key(header)
        if isinstance(checked, Refusal):
            return checked
        token, kid, client = checked
        try:
            key = await self.keys.key_for(kid)
        except UnknownKey:
            return _UNKNOWN_KEY
        except KeysUnavailable as exc:
            return _unavailable(exc.retry_after)
        return self._verify(token, key, client)

    def _check_without_key(self, header: str | None) -> Refusal | tuple[str, str, str]:
        """(token, key id, client id) when the unverified token passes every check but the
        signature; else why not."""
        token = bearer_token(header)
        if token is None:
            return _MISSING
        try:
            jose = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            return _invalid("malformed", "the token is not a JWT")
        if jose.get("alg") != "RS256":
            return _invalid("algorithm", "only RS256-signed tokens are accepted")
        kid = jose.get("kid")
        if not isinstance(kid, str):
            return _invalid("malformed", "the token names no signing key")
        claims = self._decode(token, None)
        if isinstance(claims, Refusal):
            return claims
        version = self._issuers[claims["iss"]]
        client = claims.get("appid" if version == "1.0" else "azp")
        if not isinstance(client, str) or client not in self._client_ids:
            return _invalid("client", "the token was issued to another client")
        roles = claims.get("roles")
        if self._roles and not (
            isinstance(roles, list)
            and self._roles.intersection(role for role in roles if isinstance(role, str))
        ):
            return _invalid("role", "the token lacks the required role")
        return token, kid, client

    def _verify(self, token: str, key: Any, client: str) -> AuthResult:
        decoded = self._decode(token, key)
        return decoded if isinstance(decoded, Refusal) else Principal("entra", client)

    def _decode(self, token: str, key: Any | None) -> dict[str, Any] | Refusal:
        """The claims after checking time, issuer and audience; the signature too with ``key``."""
        options: dict[str, Any] = {"require": _REQUIRED_CLAIMS}
        if key is None:  # PyJWT checks no claim without a signature unless told each one
            options |= {"verify_signature": False, "verify_exp": True, "verify_nbf": True,
                        "verify_iat": True, "verify_iss": True, "verify_aud": True}  # fmt: skip
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                "" if key is None else key,  # no key: not used
                algorithms=["RS256"],
                audience=self._audiences,
                issuer=list(self._issuers),
                leeway=LEEWAY_SECONDS,
                options=options,  # type: ignore[arg-type]
            )
        except jwt.PyJWTError as exc:
            for error, reason, message in _JWT_REFUSALS:
                if isinstance(exc, error):
                    return _invalid(reason, message)
            return _MALFORMED
        except (TypeError, ValueError, OverflowError):
            return _MALFORMED  # PyJWT before 2.10 lets a claim of an odd type raise these
        return claims
