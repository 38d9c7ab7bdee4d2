"""Every refusal the receiver makes, in one line, with a concrete fix and never a secret."""

from __future__ import annotations

import inspect
import re

import pytest

from tcwebhook import config
from tcwebhook.auth import entra
from tcwebhook.auth.static import StaticAuthenticator
from tcwebhook.errors import PayloadError
from tcwebhook.events import check_depth, parse_notification, parse_webhook
from tcwebhook.protocol import basic_header, bearer_header
from tcwebhook.requestlog import ReceiverFacts, auth_presence, explain
from tcwebhook.requestlog.explain import CAUSES

TOKEN = "tok-9f8e7d6c5b4a39281706f5e4d3c2b1a0"
USER, PASSWORD = "tradecloud", "pw-0a1b2c3d4e5f60718293a4b5c6d7e8f9"
SECRETS = (TOKEN, PASSWORD)


def settings(**server: object) -> config.Settings:
    paths = config.Paths(
        order="/erp/orders",
        shipment="/erp/shipments",
        shipment_auth=config.AuthSettings(type="basic", username=USER, password=PASSWORD),
    )
    return config.Settings(
        server=config.ServerSettings(paths=paths, max_body_bytes=65536, **server),  # type: ignore[arg-type]
        auth=config.AuthSettings(type="bearer", token=TOKEN),
    )


FACTS = ReceiverFacts.from_settings(settings())
ENTRA_FACTS = ReceiverFacts.from_settings(
    config.Settings(
        auth=config.AuthSettings(
            type="entra", tenant="t-1", audiences=("api://tcwebhook",), client_ids=("c-1",)
        )
    )
)


def no_secret(*texts: str) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in text
            assert secret[4:12] not in text  # not even a part of one


# ---- 401 -------------------------------------------------------------------------------------


def refusal_reason(path: str, header: str | None) -> str:
    """What the real authenticator of ``path`` answers, as the receiver would pass it on."""
    settings_ = settings()
    auth = settings_.server.paths.shipment_auth if path.startswith("/erp/shipments") else None
    result = StaticAuthenticator(auth or settings_.auth).check(header)
    return "auth." + result.reason  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("path", "header", "reason", "in_fix"),
    [
        ("/erp/orders", None, "no Authorization header", "enter the token of auth.token"),
        ("/erp/orders", bearer_header("wrong"), "wrong Bearer credentials",
         "does not match auth.token — re-enter the token in the Tradecloud portal"),
        ("/erp/orders", basic_header(USER, PASSWORD), "Basic credentials, but this path expects "
         "Bearer", "switch this webhook's authentication to Bearer"),
        ("/erp/shipments", basic_header(USER, "nope"), "wrong Basic credentials",
         "server.paths.shipment_auth.username / server.paths.shipment_auth.password"),
        ("/erp/shipments", bearer_header(TOKEN), "Bearer credentials, but this path expects Basic",
         "enter server.paths.shipment_auth.username and server.paths.shipment_auth.password"),
        ("/erp/shipments", None, "no Authorization header", "choose Basic authentication"),
    ],
)  # fmt: skip
def test_a_401_says_which_credential_to_re_enter(
    path: str, header: str | None, reason: str, in_fix: str
) -> None:
    cause = refusal_reason(path, header)
    explanation = explain(401, cause, FACTS, path=path, auth=auth_presence(header))
    assert explanation.reason == reason
    assert in_fix in explanation.fix
    assert explanation.tradecloud == "dropped"
    no_secret(explanation.reason, explanation.fix)


def _entra_reasons() -> set[str]:
    """Every refusal reason the Entra authenticator can give, read from its source."""
    source = inspect.getsource(entra)
    reasons = set(re.findall(r'_invalid\(\s*"(\w+)"', source))
    reasons |= {reason for _error, reason, _message in entra._JWT_REFUSALS}
    reasons |= {entra._MISSING.reason, entra._unavailable(1).reason}
    return reasons


@pytest.mark.parametrize("reason", sorted(_entra_reasons()))
def test_every_entra_refusal_has_its_own_wording(reason: str) -> None:
    status = 503 if reason == "keys_unavailable" else 401
    explanation = explain(status, f"auth.{reason}", ENTRA_FACTS, path="/tradecloud/order",
                          auth="present (Bearer)")  # fmt: skip
    assert explanation.reason != "the access token was refused", reason
    assert "auth." in explanation.fix or "portal" in explanation.fix or "clock" in explanation.fix


def test_an_invalid_entra_token_is_dropped_but_unavailable_keys_are_retried() -> None:
    invalid = explain(401, "auth.signature", ENTRA_FACTS, path="/tradecloud/order")
    unavailable = explain(503, "auth.keys_unavailable", ENTRA_FACTS, path="/tradecloud/order")
    assert invalid.tradecloud == "dropped" and "signature" in invalid.reason
    assert unavailable.tradecloud == "retried"
    assert "could not be fetched" in unavailable.reason
    assert "login.microsoftonline.com" in unavailable.fix
    audience = explain(401, "auth.audience", ENTRA_FACTS, path="/tradecloud/order")
    assert "auth.audiences" in audience.fix and "/.default" in audience.fix


# ---- the rest -------------------------------------------------------------------------------


def test_403_names_tradecloud_s_addresses_and_the_proxy_setting() -> None:
    explanation = explain(403, "not_allowed", FACTS)
    assert "server.allow_from" in explanation.reason
    assert "35.204.224.107" in explanation.fix and "server.proxy.trusted" in explanation.fix


def test_404_lists_the_configured_paths() -> None:
    explanation = explain(404, "not_found", FACTS, path="/erp/order", method="POST")
    assert "/erp/orders" in explanation.fix and "/erp/shipments" in explanation.fix
    assert "webhook URL" in explanation.fix
    assert explanation.tradecloud == "dropped"


def test_405_for_a_post_below_the_path_says_the_url_ends_at_the_path() -> None:
    below = explain(405, "method_not_allowed", FACTS, path="/erp/orders/123", method="POST")
    assert "ends at the path itself" in below.fix
    other = explain(405, "method_not_allowed", FACTS, path="/erp/orders", method="DELETE")
    assert "choose POST" in other.fix


@pytest.mark.parametrize(
    ("body", "part"),
    [
        (b"{not json", "not valid JSON"),
        (b"[]", "must be a JSON object"),
        (b'{"eventName": "X", "meta": {}}', "no payload key"),
        (b'{"eventName": "X", "orderEvent": [], "meta": {}}', "'orderEvent' must be"),
        (b"\xff\xfe", "not UTF-8"),
    ],
)
def test_400_says_which_part_of_the_body_is_wrong(body: bytes, part: str) -> None:
    with pytest.raises(PayloadError) as raised:
        parse_webhook(body)
    explanation = explain(400, "invalid_body", FACTS, detail=str(raised.value))
    assert part in explanation.reason
    assert "JSON" in explanation.fix and explanation.tradecloud == "dropped"


def test_other_400s_name_their_limit() -> None:
    with pytest.raises(PayloadError) as raised:
        check_depth(b"[" * 100 + b"]" * 100, 64)
    assert "max_json_depth" in explain(400, "too_deep", FACTS, detail=str(raised.value)).reason
    with pytest.raises(PayloadError):
        parse_notification("order", "")  # what the receiver answers no_resource_id for
    assert "{orderId}" in explain(400, "no_resource_id", FACTS).fix
    assert "/erp/orders/{orderId}" in explain(400, "no_resource_id", FACTS).fix


def test_413_415_and_503() -> None:
    too_large = explain(413, "too_large", FACTS)
    assert "65536 bytes" in too_large.reason and "server.max_body_bytes" in too_large.fix
    txml = explain(415, "txml", FACTS)
    assert "tXML" in txml.reason and "JSON format" in txml.fix
    other = explain(415, "content_type", FACTS)
    assert "JSON" in other.reason and "application/json" in other.fix
    store = explain(503, "store_unavailable", FACTS)
    assert store.tradecloud == "retried" and "tcwebhook status" in store.fix
    slow = explain(503, "body_timeout", settings_facts(body_timeout=7.5))
    assert "7.5 s" in slow.reason and slow.tradecloud == "retried"


def settings_facts(**limits: float) -> ReceiverFacts:
    return ReceiverFacts.from_settings(settings(limits=config.ServerLimits(**limits)))  # type: ignore[arg-type]


def test_a_client_that_went_away_got_no_answer() -> None:
    assert explain(400, "client_gone", FACTS).tradecloud == "unknown"


@pytest.mark.parametrize("status", [400, 401, 403, 404, 405, 413, 415, 503, 418])
def test_an_unknown_cause_is_worded_from_the_status(status: int) -> None:
    explanation = explain(status, "something_new", FACTS, detail="odd\x1b[2J")
    assert explanation.reason and explanation.fix
    assert "\x1b" not in explanation.reason


@pytest.mark.parametrize("cause", [*CAUSES, "auth.missing", "auth.wrong"])
def test_no_explanation_holds_a_secret_or_a_control(cause: str) -> None:
    for path in ("/erp/orders", "/erp/shipments"):
        for presence in ("absent", "present (Bearer)", "present (Basic)", "present (other)"):
            explanation = explain(401, cause, FACTS, path=path, auth=presence,  # type: ignore[arg-type]
                                  detail=f"detail {TOKEN}"[:7])  # fmt: skip
            no_secret(explanation.reason, explanation.fix)
            assert "\n" not in explanation.reason + explanation.fix
