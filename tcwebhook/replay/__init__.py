"""Send webhook events to an endpoint exactly as Tradecloud does, and say what Tradecloud would
make of each answer (docs/tradecloud.md#methods, #status-codes-and-retries).

The library returns result objects and prints nothing. Sources are JSON files, directories,
standard input or built-in samples (``sources``); ``edit`` changes bodies before sending;
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
    USER_AGENT,
    ReplayOptions,
    RetryPolicy,
    prepare,
    replay,
    ssl_context,
)
from tcwebhook.replay.sources import STORED_PREFIX, Source, load_sources
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
    "USER_AGENT",
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
