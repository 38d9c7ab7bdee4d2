"""One request as the request log keeps it: what arrived, what was answered, and why.

A record never holds a credential: the ``Authorization`` header is kept as its scheme only
("present (Bearer)"), and a refused body only as a short excerpt with anything that looks like a
credential masked. Every text that came from the client is bounded and has its control characters
escaped when the record is made, so whatever shows it later shows one harmless line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from tcwebhook import protocol
from tcwebhook.console import printable

# What Tradecloud does with the answer (docs/tradecloud.md#status-codes-and-retries); "unknown"
# where nothing is documented: a failed TLS handshake or a connection closed before the answer.
Tradecloud = Literal["stored", "retried", "dropped", "unknown"]
AuthPresence = Literal["present (Bearer)", "present (Basic)", "present (other)", "absent"]
# "http": a request that was answered; "tls": a handshake that failed, so no request arrived;
# "dropped": the count of refused requests left out under the write limit (aggregate.py).
Kind = Literal["http", "tls", "dropped"]

EXCERPT_BYTES = 512  # of a refused body
_METHOD_CHARS = 16
_PATH_CHARS = 512
_TEXT_CHARS = 300  # a reason (explain.py keeps its own well below)
_FIX_CHARS = 600

JSON_KEYS: tuple[str, ...] = (
    "time",
    "kind",
    "method",
    "path",
    "status",
    "reason",
    "fix",
    "duration_ms",
    "client",
    "tradecloud",
    "event_id",
    "content_type",
    "size",
    "auth",
    "excerpt",
    "count",
    "first_seen",
    "last_seen",
)


@dataclass(frozen=True)
class RequestRecord:
    """One request (or, with ``count`` > 1, identical ones from one client), newest ``time``.

    ``status`` is None for a failed TLS handshake; ``event_id`` is set only for a stored event.
    """

    time: str  # ISO 8601 UTC; for an aggregate, the last one seen
    method: str | None
    path: str | None
    status: int | None
    reason: str
    duration_ms: float | None
    client: str | None
    tradecloud: Tradecloud
    event_id: int | None = None
    fix: str | None = None
    kind: Kind = "http"
    content_type: str | None = None
    size: int | None = None  # body bytes (declared or read)
    auth: AuthPresence = "absent"
    excerpt: str | None = None
    count: int = 1
    first_seen: str | None = None  # None: same as ``time`` (a single request)
    last_seen: str | None = None

    @property
    def identity(self) -> tuple[object, ...]:
        """What makes two failures "the same" for aggregation (aggregate.py)."""
        return (self.kind, self.client, self.method, self.path, self.status, self.reason)

    def to_json(self) -> dict[str, Any]:
        """The record for ``--json`` and the inspector: always the keys of ``JSON_KEYS``."""
        return {
            "time": self.time,
            "kind": self.kind,
            "method": self.method,
            "path": self.path,
            "status": self.status,
            "reason": self.reason,
            "fix": self.fix,
            "duration_ms": None if self.duration_ms is None else round(self.duration_ms, 3),
            "client": self.client,
            "tradecloud": self.tradecloud,
            "event_id": self.event_id,
            "content_type": self.content_type,
            "size": self.size,
            "auth": self.auth,
            "excerpt": self.excerpt,
            "count": self.count,
            "first_seen": self.first_seen or self.time,
            "last_seen": self.last_seen or self.time,
        }


def tradecloud_reaction(status: int | None) -> Tradecloud:
    """What Tradecloud's sender does with ``status`` (None: it got no answer)."""
    verdict = protocol.verdict(status)
    if verdict == "delivered":
        return "stored"
    if verdict in ("dropped", "retried"):
        return verdict
    return "unknown"


def auth_presence(header: str | None) -> AuthPresence:
    """Whether an ``Authorization`` header came, and its scheme; never a character of the rest."""
    parsed = protocol.parse_authorization(header)
    if parsed is None:
        return "absent"
    if parsed.scheme == "bearer":
        return "present (Bearer)"
    if parsed.scheme == "basic":
        return "present (Basic)"
    return "present (other)"


# Credential-looking text in a body: an Authorization value, key=value or "key": "value" pairs
# whose key names a secret, and JWTs wherever they stand. Each pattern looks a bounded way ahead
# from where it can start, so a hostile body costs linear time.
_SECRET_WORD = r"(?:pass|pwd|secret|token|api[-_]?key|authorization|credential|signature)"
_SCHEME_VALUE = re.compile(r"(?i)\b(bearer|basic)(\s+)[A-Za-z0-9._~+/=-]+")
_HINT = re.compile(_SECRET_WORD)  # searched in lower case: IGNORECASE costs six times more
_HINT_ANY_CASE = re.compile(_SECRET_WORD, re.IGNORECASE)
_KEY_AT = re.compile(
    r"""(?ix)
    ( ["']? [\w-]{1,64} ["']? \s* [:=] \s* )                     # the key and its separator
    (?!(?:bearer|basic)\s)                                       # left to _SCHEME_VALUE
    ( "(?:[^"\\]|\\.){0,512}"? | '[^']{0,512}'? | [^\s&,;}\]"']{1,512} )  # the value
    """
)
_MAX_HINTS = 32  # secret words looked at in one excerpt; past them the rest is masked whole
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*")
MASK = "***"
_SECRET_HINTS = ("pass", "pwd", "secret", "token", "key", "authorization", "credential", "signatur")
_WORD_REST = re.compile(r"[\w-]*")


def mask_credentials(text: str) -> str:
    """``text`` with every credential-looking value replaced by ``***``."""
    lower = text.lower()  # plain substring checks first: most bodies need no regex at all
    if "eyj" in lower:
        text = _JWT.sub(MASK, text)
    if "bearer" in lower or "basic" in lower:
        text = _SCHEME_VALUE.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", text)
    if not any(hint in lower for hint in _SECRET_HINTS):
        return text
    lower = text.lower()  # the masks above changed the text
    if len(lower) != len(text):  # lowering changed a length (rare): positions would differ
        return _mask_values(text, text, _HINT_ANY_CASE)
    return _mask_values(text, lower, _HINT)


def _mask_values(text: str, lower: str, hints: re.Pattern[str]) -> str:
    """Masks the value of every key naming a secret. The secret word is found first, then one
    anchored match tried there: linear, whatever the text."""
    parts: list[str] = []
    done = 0  # text[:done] is in parts
    position = 0
    for _ in range(_MAX_HINTS):
        hint = hints.search(lower, position)
        if hint is None:
            break
        # The key may begin before its secret word (client_secret): only what follows matters.
        match = _KEY_AT.match(text, hint.start())
        if match is None:  # no key here: go on after this word, not after this hint
            rest = _WORD_REST.match(text, hint.end())
            position = rest.end() if rest is not None else hint.end()
            continue
        value = match.group(2)
        quote = value[0] if value[:1] in ('"', "'") else ""
        closed = quote if len(value) > 1 and value.endswith(quote) else ""
        parts += [text[done : match.start(2)], quote, MASK, closed]
        done = position = match.end()
    else:
        if hints.search(lower, position) is not None:  # a body made of secrets: stop reading
            return "".join([*parts, text[done:position], MASK])
    parts.append(text[done:])
    return "".join(parts)


# Control characters as ``console.printable`` escapes them, by one C-level translate: a refused
# body may be all controls, and escaping them one callback at a time costs a millisecond.
_ESCAPES = {code: f"\\x{code:02x}" for code in (*range(0x20), *range(0x7F, 0xA0))}
_SEPARATORS_AND_BIDI = (0x2028, 0x2029, *range(0x202A, 0x202F), *range(0x2066, 0x206A))
_ESCAPES |= {code: f"\\u{code:04x}" for code in _SEPARATORS_AND_BIDI}


def escape_controls(text: str) -> str:
    """``text`` with control characters escaped exactly as ``console.printable`` does."""
    return text.translate(_ESCAPES)


def body_excerpt(body: bytes, limit: int = EXCERPT_BYTES) -> str | None:
    """The start of a refused body for a person: at most ``limit`` bytes, decoded with
    replacement, credentials masked, control characters escaped; None for an empty body."""
    if not body:
        return None
    # A secret cut by the limit would escape the mask: read a little further, then cut the text.
    head = body[: limit + 256].decode("utf-8", "replace")
    masked = mask_credentials(head)
    cut = masked.encode("utf-8")[:limit].decode("utf-8", "ignore")
    text = escape_controls(cut)
    if len(body) > limit:
        text += f"… ({len(body)} bytes)"
    return text


def bounded(value: object, limit: int = _TEXT_CHARS) -> str:
    """A client-sent text for a record: controls escaped, at most ``limit`` characters."""
    return printable(value, limit=limit)


def refused_record(
    *,
    time: str,
    method: str,
    path: str,
    status: int,
    reason: str,
    fix: str | None,
    duration_ms: float,
    client: str | None,
    content_type: str | None = None,
    size: int | None = None,
    authorization: str | None = None,
    body: bytes = b"",
    tradecloud: Tradecloud | None = None,
) -> RequestRecord:
    """The record of a request answered without storing an event (every text bounded)."""
    return RequestRecord(
        time=time,
        method=bounded(method, _METHOD_CHARS),
        path=bounded(path, _PATH_CHARS),
        status=status,
        reason=bounded(reason),
        fix=None if fix is None else bounded(fix, _FIX_CHARS),
        duration_ms=duration_ms,
        client=None if client is None else bounded(client, 64),
        tradecloud=tradecloud_reaction(status) if tradecloud is None else tradecloud,
        content_type=None if content_type is None else bounded(content_type, 100),
        size=size,
        auth=auth_presence(authorization),
        excerpt=body_excerpt(body),
    )


def stored_record(
    *,
    time: str,
    method: str,
    path: str,
    event_id: int,
    client: str | None = None,
    duration_ms: float | None = None,
    content_type: str | None = None,
    size: int | None = None,
    auth: AuthPresence,
    status: int = 200,
    reason: str = "stored",
) -> RequestRecord:
    """A stored event as a request-log line: its event row is the record, nothing else is kept.

    ``auth``: the scheme the path's authentication takes (the header itself is never stored)."""
    return RequestRecord(
        time=time,
        method=method,
        path=bounded(path, _PATH_CHARS),
        status=status,
        reason=reason,
        duration_ms=duration_ms,
        client=client,
        tradecloud=tradecloud_reaction(status),
        event_id=event_id,
        content_type=content_type,
        size=size,
        auth=auth,
    )
