"""Send webhook events to an endpoint exactly as Tradecloud does, and say what Tradecloud would
make of each answer (docs/tradecloud.md#methods, #status-codes-and-retries).

The library returns result objects and prints nothing. Sources are JSON or tXML files,
directories, standard input or built-in samples (``sources``), sent as JSON or as tXML
(``ReplayOptions.body_format``); ``edit`` changes bodies before sending;
``target`` is a URL as entered in the Tradecloud portal or the local ``tcwebhook serve`` of the
same configuration; ``send`` sends and retries like Tradecloud; ``report`` holds the results.
"""

from tcwebhook.replay.edit import (
    apply_assignment,
    id_of,
    message_id_of,
    parse_assignment,
    refresh_message_id,
    resource_of,
)
from tcwebhook.replay.report import (
    TRADECLOUD_REACTION,
    ReplayReport,
    SendResult,
    classify,
)
from tcwebhook.replay.send import (
    TXML_PAYLOAD_KEYS,
    USER_AGENT,
    ReplayOptions,
    RetryPolicy,
    prepare,
    replay,
    ssl_context,
)
from tcwebhook.replay.sources import STORED_PREFIX, BodyFormat, Source, load_sources
from tcwebhook.replay.target import (
    BEARER_COMMAND_TIMEOUT,
    IdIn,
    Method,
    Target,
    bearer_from_command,
    request_url,
    resolve_target,
)

__all__ = [
    "BEARER_COMMAND_TIMEOUT",
    "STORED_PREFIX",
    "TRADECLOUD_REACTION",
    "TXML_PAYLOAD_KEYS",
    "USER_AGENT",
    "BodyFormat",
    "IdIn",
    "Method",
    "ReplayOptions",
    "ReplayReport",
    "RetryPolicy",
    "SendResult",
    "Source",
    "Target",
    "apply_assignment",
    "bearer_from_command",
    "classify",
    "id_of",
    "load_sources",
    "message_id_of",
    "parse_assignment",
    "prepare",
    "refresh_message_id",
    "replay",
    "request_url",
    "resolve_target",
    "resource_of",
    "ssl_context",
]
