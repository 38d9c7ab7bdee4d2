"""Async client for the Tradecloud API v2 (docs/tradecloud.md#the-tradecloud-api).

``client`` holds the endpoints, ``tokens`` the login, refresh and token cache, ``transport`` the
pacing, retries and error mapping. The names below are the package's public API.
"""

from tcwebhook.datadir import TOKEN_CACHE_NAME
from tcwebhook.tradecloud.client import (
    PASSWORD_ENV,
    POLL_LIMIT,
    USERNAME_ENV,
    DocumentMetadata,
    Fetched,
    LogoutResult,
    ObjectKind,
    PollEndpoint,
    PollPage,
    TradecloudClient,
)
from tcwebhook.tradecloud.tokens import (
    REFRESH_MARGIN_SECONDS,
    TokenCache,
    TokenManager,
    Tokens,
    jwt_expiry,
)
from tcwebhook.tradecloud.transport import MAX_ANSWER_BYTES, Answer, AnswerTooLarge, Transport

__all__ = [
    "MAX_ANSWER_BYTES",
    "PASSWORD_ENV",
    "POLL_LIMIT",
    "REFRESH_MARGIN_SECONDS",
    "TOKEN_CACHE_NAME",
    "USERNAME_ENV",
    "Answer",
    "AnswerTooLarge",
    "DocumentMetadata",
    "Fetched",
    "LogoutResult",
    "ObjectKind",
    "PollEndpoint",
    "PollPage",
    "TokenCache",
    "TokenManager",
    "Tokens",
    "TradecloudClient",
    "Transport",
    "jwt_expiry",
]
