"""Commands that read the store: odd stored events, missing or read-only stores, lazy ${VAR}s."""

from __future__ import annotations

import json
import sqlite3
import sys
from pathlib import Path
from typing import Any

import pytest

from tcwebhook.cli import main
from tcwebhook.errors import StoreUnavailable
from tcwebhook.store import open_store
from tests.helpers.store import backend_url, new_event

ESCAPE_NAME = "Order\x1b[2J\x1b[31mForged\nINFO forged log line"
DEEP = b'{"eventName": "OrderIssuedByBuyer", "x": ' + b"[" * 600 + b"]" * 600 + b"}"
ODD_EVENTS: dict[str, tuple[str | None, str | None, bytes, str, str]] = {
    # name: (event_name, message_id, body, changed_lines, headers)
    "deep": ("OrderIssuedByBuyer", "m-deep", DEEP, '["1"]', "{}"),
    "deeper than any parser": (None, "m-deeper", b"[" * 1500 + b"]" * 1500, "[]", "{}"),
    "huge message id": ("OrderIssuedByBuyer", "m" * 2_000_000, b"{}", "[]", "{}"),
    "not an object": ("OrderIssuedByBuyer", "m-list", b"[1, 2, 3]", "[]", "{}"),
    "a string": (None, "m-string", b'"text"', "[]", "{}"),
    "invalid UTF-8": (None, "m-utf8", b'\xff\xfe{"a": 1}', "[]", "{}"),
    "escape sequences": (ESCAPE_NAME, "m-escape", b"{}", "[]", "{}"),
    "broken columns": ("OrderIssuedByBuyer", "m-columns", b"{}", "not json", "[1]"),
}


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """The real command line, in this process (fast): exit code, stdout, stderr."""
    argv = sys.argv
    sys.argv = ["tcwebhook", *args]
    try:
        with pytest.raises(SystemExit) as exited:
            main()
    finally:
        sys.argv = argv
    captured = capsys.readouterr()
    return int(exited.value.code or 0), captured.out, captured.err


def write_config(tmp_path: Path) -> Path:
    """A config whose serve-only parts need variables that are not set."""
    config = tmp_path / "tcwebhook.yaml"
    config.write_text(
        f"data_dir: {tmp_path / 'data'}\n"
        "auth: {token: '${ONLY_SERVE_NEEDS_THIS}'}\n"
        "sinks:\n"
        "  - {name: erp, type: http, url: 'https://127.0.0.1:1/x', "
        "headers: {Authorization: 'Bearer ${NOR_THIS}'}}\n"
    )
    return config


def store_odd_events(tmp_path: Path) -> dict[str, int]:
    """The store of the current backend with one normal event and the ``ODD_EVENTS``, written
    past the store's own checks (by another tool, or an older version)."""
    url = backend_url(tmp_path)
    store = open_store(url)
    store.append_sync(new_event(1, tasks=("erp",)))
    store.close()
    if url.startswith("sqlite:///"):
        connection: Any = sqlite3.connect(url.removeprefix("sqlite:///"))
        mark = "?"
    else:
        import psycopg

        connection, mark = psycopg.connect(url), "%s"
    ids = {}
    with connection:
        for name, (event_name, message_id, body, lines, headers) in ODD_EVENTS.items():
            if name == "huge message id" and mark == "%s":
                continue  # beyond an index entry: the PostgreSQL store cuts it (test_store.py)
            ids[name] = connection.execute(
                "INSERT INTO events (received_at, kind, event_name, message_id, changed_lines, "
                "method, path, headers, body) VALUES ('2026-11-30T10:00:00.000Z', 'order', "
                "?, ?, ?, 'POST', '/tradecloud/order', ?, ?) RETURNING id".replace("?", mark),
                (event_name, message_id, lines, headers, body),
            ).fetchone()[0]
    connection.close()
    return ids


@pytest.mark.usefixtures("store_backend")
def test_no_stored_event_breaks_show_list_or_export(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = str(write_config(tmp_path))
    ids = store_odd_events(tmp_path)
    for name, event_id in ids.items():
        code, out, err = run_cli(capsys, "events", "show", str(event_id), "--json", "-c", config)
        assert code == 0, (name, err)
        shown = json.loads(out)
        assert shown["id"] == event_id
        code, out, err = run_cli(capsys, "events", "show", str(event_id), "-c", config)
        assert code == 0 and "Traceback" not in err, (name, err)
        assert "\x1b" not in out and "\nINFO forged" not in out, name
        assert len(out) < 20_000 + len(ODD_EVENTS[name][2]) * 2, name  # long values are cut
    code, out, err = run_cli(capsys, "events", "export", "-c", config)
    assert code == 0, err
    exported = [json.loads(line) for line in out.splitlines()]
    assert len(exported) == len(ids) + 1  # nothing after an odd event is left out
    by_id = {envelope["id"]: envelope for envelope in exported}
    assert by_id[ids["not an object"]]["payload"] == [1, 2, 3]
    assert by_id[ids["invalid UTF-8"]]["payload"] == '\ufffd\ufffd{"a": 1}'
    assert by_id[ids["deep"]]["payload"]["eventName"] == "OrderIssuedByBuyer"
    code, out, err = run_cli(capsys, "events", "list", "-c", config)
    assert code == 0 and "\x1b" not in out and "\nINFO forged" not in out
    assert "\\x1b[31mForged\\x0aINFO" in out  # shown escaped, on its own line
    assert max(len(line) for line in out.splitlines()) < 400


@pytest.mark.usefixtures("store_backend")
def test_read_commands_need_no_variables_only_serve_uses(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = str(write_config(tmp_path))
    store_odd_events(tmp_path)
    for args in (("status", "--json"), ("events", "list"), ("events", "show", "1")):
        code, _, err = run_cli(capsys, *args, "-c", config)
        assert code in (0, 1) and "not set" not in err, (args, err)


@pytest.mark.usefixtures("store_backend")
def test_read_commands_never_create_a_missing_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = str(write_config(tmp_path))
    for args in (
        ("status",),
        ("events", "list"),
        ("events", "show", "1"),
        ("events", "export"),
        ("events", "retry", "--dead"),
    ):
        code, out, err = run_cli(capsys, *args, "-c", config)
        assert code == 2, (args, out, err)
        assert err.count("\n") == 1 and "there is no event store " in err, (args, err)
    assert not (tmp_path / "data" / "events.db").exists()
    with pytest.raises(StoreUnavailable, match="there is no event store"):
        open_store(backend_url(tmp_path), read_only=True)


def test_unknown_values_are_rejected_with_the_valid_ones(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = str(write_config(tmp_path))
    store_odd_events(tmp_path)
    code, _, err = run_cli(capsys, "events", "list", "--kind", "bogus", "-c", config)
    assert code == 2 and "--kind must be one of" in err and "shipment_notification" in err
    assert "(got 'bogus')" in err and len(err.strip().splitlines()) == 1
    code, _, err = run_cli(capsys, "events", "list", "--state", "bogus", "-c", config)
    assert code == 2 and "--state must be one of" in err and "dead" in err
    code, _, err = run_cli(capsys, "events", "retry", "--dead", "--sink", "nosuch", "-c", config)
    assert code == 2 and "--sink nosuch" in err and "erp" in err
    big = "1180591620717411303424"
    code, _, err = run_cli(capsys, "events", "show", big, "-c", config)
    assert code == 1 and err.strip() == f"error: no event with id {big} in " + str(
        tmp_path / "data" / "events.db"
    )
    code, out, _ = run_cli(capsys, "events", "replay", "--help")
    assert code == 0 and "--url" in out and "--token" in out and "events replay ID" in out


def test_read_commands_work_on_a_read_only_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = str(write_config(tmp_path))
    ids = store_odd_events(tmp_path)
    path = tmp_path / "data" / "events.db"
    before = path.read_bytes()
    # Another process keeps the database open read-only, as a backup tool might.
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True):
        code, out, _ = run_cli(capsys, "events", "list", "--json", "-c", config)
    assert code == 0 and len(json.loads(out)) == len(ids) + 1
    assert path.read_bytes() == before
