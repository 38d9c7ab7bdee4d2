"""What a request leaves behind: bounded, escaped, and never a credential."""

from __future__ import annotations

import base64
import re
import time

from hypothesis import given, settings
from hypothesis import strategies as st

from tcwebhook.console import printable
from tcwebhook.requestlog import (
    JSON_KEYS,
    auth_presence,
    body_excerpt,
    mask_credentials,
    refused_record,
    stored_record,
    tradecloud_reaction,
)
from tcwebhook.requestlog.records import EXCERPT_BYTES, MASK, escape_controls

T0 = "2026-12-07T01:00:00.000Z"
CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def refused(**overrides: object) -> dict[str, object]:
    fields: dict[str, object] = {
        "time": T0,
        "method": "POST",
        "path": "/tradecloud/order",
        "status": 401,
        "reason": "wrong Bearer credentials",
        "fix": "re-enter the token",
        "duration_ms": 1.25,
        "client": "35.204.224.107",
    }
    fields.update(overrides)
    return refused_record(**fields).to_json()  # type: ignore[arg-type]


def test_the_json_keys_are_exactly_the_documented_ones() -> None:
    assert tuple(refused()) == JSON_KEYS
    stored = stored_record(time=T0, method="POST", path="/tradecloud/order", event_id=7,
                           auth="present (Bearer)").to_json()  # fmt: skip
    assert tuple(stored) == JSON_KEYS
    assert {"time", "method", "path", "status", "reason", "duration_ms", "client",
            "tradecloud", "event_id"} <= set(JSON_KEYS)  # fmt: skip


def test_a_refused_request_names_tradecloud_s_reaction_and_no_event() -> None:
    data = refused()
    assert (data["status"], data["tradecloud"], data["event_id"]) == (401, "dropped", None)
    assert (data["count"], data["first_seen"], data["last_seen"]) == (1, T0, T0)
    assert refused(status=503)["tradecloud"] == "retried"


def test_a_stored_request_is_its_event() -> None:
    data = stored_record(time=T0, method="POST", path="/tradecloud/order", event_id=42,
                         auth="present (Basic)").to_json()  # fmt: skip
    assert (data["status"], data["tradecloud"], data["event_id"]) == (200, "stored", 42)
    assert data["excerpt"] is None and data["auth"] == "present (Basic)"


def test_tradecloud_reaction_follows_the_protocol_rule() -> None:
    statuses = (200, 202, 400, 401, 415, 500, 502, 503, None, 302)
    reactions = [tradecloud_reaction(status) for status in statuses]
    assert reactions == ["stored", "stored", "dropped", "dropped", "dropped", "dropped",
                         "retried", "retried", "unknown", "unknown"]  # fmt: skip


def test_the_authorization_header_is_kept_as_its_scheme_only() -> None:
    secret = "s3cr3t-token-value"
    basic = "Basic " + base64.b64encode(b"user:pa55word").decode()
    assert auth_presence(f"Bearer {secret}") == "present (Bearer)"
    assert auth_presence(f"bearer {secret}") == "present (Bearer)"
    assert auth_presence(basic) == "present (Basic)"
    assert auth_presence("Negotiate abc") == "present (other)"
    assert auth_presence(None) == auth_presence("") == auth_presence("   ") == "absent"
    data = refused(authorization=f"Bearer {secret}")
    assert data["auth"] == "present (Bearer)"
    assert secret not in repr(data)


def test_client_text_is_bounded_and_escaped() -> None:
    data = refused(
        method="P\x1bOST" * 10,
        path="/x\x1b[2J" + "a" * 10_000,
        client="evil\n",
        content_type="text/plain\r\nX: y" + "z" * 1000,
    )
    for key in ("method", "path", "client", "content_type"):
        value = str(data[key])
        assert not CONTROLS.search(value), key
        assert len(value) < 700, key
    assert "\\x1b" in str(data["path"])


def test_the_excerpt_is_bounded_escaped_and_masked() -> None:
    body = (
        b'{"password": "hunter2", "note": "Authorization: Bearer abc.def.ghi", '
        b'"login": "user=bob&passwd=letmein", "jwt": "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln", '
        b'"basic": "Basic dXNlcjpwYXNz", "evil": "\x1b[31m\xff\xfe"}'
    )
    excerpt = body_excerpt(body)
    assert excerpt is not None
    for secret in ("hunter2", "abc.def.ghi", "letmein", "eyJhbGci", "dXNlcjpwYXNz"):
        assert secret not in excerpt, secret
    assert excerpt.count(MASK) >= 5
    assert "\\x1b" in excerpt and "\x1b" not in excerpt
    assert "\ufffd" in excerpt  # undecodable bytes are replaced, not fatal
    assert '"note": "Authorization: Bearer ***"' in excerpt  # the shape stays readable


def test_a_long_body_is_cut_and_says_its_size() -> None:
    excerpt = body_excerpt(b"x" * 100_000)
    assert excerpt is not None
    assert excerpt.startswith("x" * EXCERPT_BYTES)
    assert excerpt.endswith("(100000 bytes)")
    assert len(excerpt) < EXCERPT_BYTES + 30
    assert body_excerpt(b"") is None


def test_a_secret_cut_by_the_limit_is_still_masked() -> None:
    body = b" " * (EXCERPT_BYTES - 20) + b'"password": "' + b"A" * 100 + b'"'
    excerpt = body_excerpt(body)
    assert excerpt is not None and "AAAA" not in excerpt
    jwt = b"eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ0cmFkZWNsb3VkIn0.c2lnbmF0dXJlLXNpZ25hdHVyZQ"
    excerpt = body_excerpt(b" " * (EXCERPT_BYTES - 30) + jwt)  # cut inside the token
    assert excerpt is not None and "eyJ" not in excerpt


SECRET = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-",
                 min_size=8, max_size=40)  # fmt: skip
KEYS = st.sampled_from(["password", "client_secret", "access_token", "apiKey", "Authorization",
                        "passwd", "X-Api-Key", "credential"])  # fmt: skip


FORMS = ['"{k}": "{s}"', "{k}={s}", "{k}: {s}", "'{k}': '{s}'", "Bearer {s}", "Basic {s}"]


@settings(max_examples=200, deadline=None)
@given(
    before=st.binary(max_size=300),
    after=st.binary(max_size=300),
    key=KEYS,
    secret=SECRET,
    form=st.sampled_from(FORMS),
)
def test_no_credential_survives_in_any_body(
    before: bytes, after: bytes, key: str, secret: str, form: str
) -> None:
    # The separators keep the secret from fusing with random neighbours into a longer word.
    pair = form.format(k=key, s=secret).encode()
    body = before + b"\n" + pair + b"\n" + after
    excerpt = body_excerpt(body, limit=2048) or ""
    assert secret not in excerpt
    assert not CONTROLS.search(excerpt)
    assert len(excerpt.encode()) <= 4 * 2048 + 40


@given(st.text(max_size=300))
def test_masking_never_grows_a_text_without_secrets_beyond_the_masks(text: str) -> None:
    masked = mask_credentials(text)
    assert len(masked) <= len(text) + 3 * masked.count(MASK)


def test_masking_holds_where_lower_case_changes_the_length() -> None:
    # "İ" lowers to two characters: positions in the lowered text would be off by one each.
    text = "İ" * 40 + ' {"PassWord": "hunter2", "x": "TOKEN=abcdef"} Bearer eyJx'
    masked = mask_credentials(text)
    assert "hunter2" not in masked and "abcdef" not in masked
    assert masked.endswith('{"PassWord": "***", "x": "TOKEN=***"} Bearer ***')


def test_masking_finds_keys_after_a_masked_token() -> None:
    # The Bearer value is masked first and the text shrinks: later keys are still found.
    text = "Authorization: Bearer " + "A" * 60 + ' {"password": "hunter2", "k": "token=abcdef"}'
    masked = mask_credentials(text)
    assert "hunter2" not in masked and "abcdef" not in masked


def test_a_body_made_of_secrets_is_masked_whole_past_a_point() -> None:
    body = b"&".join(b"token%d=secret%d" % (index, index) for index in range(100))
    excerpt = body_excerpt(body) or ""
    assert "secret" not in excerpt
    assert excerpt.startswith("token0=***&token1=***")
    assert "***…" in excerpt  # the rest in one mask, then the size


def test_a_hostile_body_costs_linear_time() -> None:
    # Patterns that made a naive masker backtrack for seconds on a single 768-byte excerpt.
    bodies = [b"password" * 20_000, b'password: "' * 10_000, b"a" * 100_000, b"eyJ" * 30_000,
              b"-" * 100_000, b'"token": "' + b"\\" * 100_000, b"pwd." * 300, b"token: " * 200,
              bytes(range(256)) * 40]  # fmt: skip
    started = time.perf_counter()
    for body in bodies * 5:
        body_excerpt(body)
    assert time.perf_counter() - started < 2.0  # about 10 ms here; was minutes


@given(st.text(max_size=200))
def test_the_excerpt_escapes_controls_exactly_as_the_console_does(text: str) -> None:
    assert escape_controls(text) == printable(text, limit=None)
