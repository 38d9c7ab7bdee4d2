"""One error hierarchy for the whole tool.

Every error a user can cause is a ``TcwebhookError`` whose ``str()`` is a sentence that says what
is wrong and how to fix it. The CLI turns it into one line on stderr and ``exit_code``; the HTTP
edge turns it into a status code. Nothing else catches these.
"""

from __future__ import annotations

# Exit codes shared by every command (documented in the README).
EXIT_OK = 0
EXIT_CHECK_FAILED = 1
EXIT_USAGE = 2


class TcwebhookError(Exception):
    """Base class: a failure explained in one sentence for the user."""

    exit_code = EXIT_USAGE


class ConfigError(TcwebhookError):
    """The configuration file, an environment variable or a flag is invalid."""


class UsageError(TcwebhookError):
    """A command-line option or argument is invalid or conflicts with another (exit code 2)."""


class PayloadError(TcwebhookError):
    """A webhook body is not a valid Tradecloud webhook (HTTP 400)."""

    status = 400


class UnsupportedContentType(PayloadError):
    """The declared content type is not JSON (HTTP 415)."""

    status = 415


class StoreUnavailable(TcwebhookError):
    """The event store cannot take or give events right now (HTTP 503, so Tradecloud retries)."""


class NotFound(TcwebhookError):
    """The thing asked for does not exist (exit code 1)."""

    exit_code = EXIT_CHECK_FAILED


class TlsCheckError(TcwebhookError):
    """check-tls could not check at all: DNS failure, connection refused, timeout, bad input."""


class ApiError(TcwebhookError):
    """A call to the Tradecloud API failed (exit code 2 unless a subclass says otherwise)."""


class ApiCredentialsError(ApiError):
    """Tradecloud refused the integration user's username or password, or none are set."""


class ApiAccessDenied(ApiError):
    """Tradecloud answered 403: no integration role, or no access to this object."""


class ApiNotFound(ApiError, NotFound):
    """Tradecloud answered 404: no such order, shipment or document (exit code 1)."""

    exit_code = EXIT_CHECK_FAILED


class ApiUnavailable(ApiError):
    """Tradecloud could not be reached or kept failing after every retry."""


class UnknownSample(TcwebhookError):
    """No built-in sample has this name (exit code 2)."""


class ReplaySourceError(TcwebhookError):
    """A replay source cannot be read or is not a JSON object (exit code 2)."""


class ReplayTargetError(TcwebhookError):
    """The replay target cannot be reached or its TLS certificate is not trusted (exit code 2)."""
