"""The real command line: exit codes, one-line errors, JSON output."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import orjson
import pytest

from tcwebhook import __version__
from tcwebhook.store import open_store
from tests.helpers.cli import CliRunner, assert_one_line_error, tcwebhook
from tests.helpers.fake_tradecloud import ORDER_ID, FakeTradecloud
from tests.helpers.pg import PostgresServer, free_port
from tests.helpers.store import backend_url, new_event


def test_version_and_help() -> None:
    assert tcwebhook("--version").stdout.strip() == f"tcwebhook {__version__}"
    result = tcwebhook("--help")
    assert result.returncode == 0
    for command in ("serve", "events"):
        assert command in result.stdout


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("server:\n  port: [1\n", "invalid YAML"),
        ("sever:\n  port: 1\n", "unknown key 'sever'"),
        ("auth:\n  token: ${NOT_SET_ANYWHERE}\n", "NOT_SET_ANYWHERE"),
        ("server:\n  tls:\n    cert: missing.pem\n    key: missing-key.pem\n", "missing.pem"),
    ],
)
def test_serve_with_broken_config_exits_2_with_one_line(
    tmp_path: Path, text: str, fragment: str
) -> None:
    config = tmp_path / "broken.yaml"
    config.write_text(text)
    assert_one_line_error(tcwebhook("serve", "--config", str(config)), fragment)


def test_serve_refuses_public_address_without_auth_and_certificate() -> None:
    assert_one_line_error(tcwebhook("serve", "--host", "0.0.0.0"), "refusing to listen on 0.0.0.0")


def test_serve_reports_a_busy_port(tmp_path: Path) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        assert_one_line_error(
            tcwebhook("serve", "--port", str(port)), f"cannot listen on 127.0.0.1:{port}"
        )


@pytest.mark.usefixtures("store_backend")
def test_events_list_and_show_json(tmp_path: Path) -> None:
    store = open_store(backend_url(tmp_path))
    first = store.append_sync(new_event(1))
    store.append_sync(new_event(2))
    store.close()
    listed = orjson.loads(tcwebhook("events", "list", "--json").stdout)
    assert [item["id"] for item in listed] == [first.id + 1, first.id]
    for key in ("id", "received_at", "kind", "event_name", "message_id", "resource_id"):
        assert key in listed[0]
    assert listed[1]["message_id"] == "m-1" and listed[1]["kind"] == "order"
    shown = orjson.loads(tcwebhook("events", "show", str(first.id), "--json").stdout)
    assert shown["body"] == {"eventName": "OrderIssuedByBuyer"}
    assert shown["changed_lines"] == ["0001"]
    table = tcwebhook("events", "list")
    assert "PO1" in table.stdout and "OrderIssuedByBuyer" in table.stdout


@pytest.mark.usefixtures("store_backend")
def test_events_show_unknown_id_exits_1(tmp_path: Path) -> None:
    open_store(backend_url(tmp_path)).close()
    result = tcwebhook("events", "show", "42")
    assert result.returncode == 1
    assert "no event with id 42" in result.stderr


def test_serve_with_unwritable_data_dir_exits_2(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    result = tcwebhook("serve", "--data-dir", str(blocker / "data"))
    assert_one_line_error(result, "cannot write to the data directory")


def test_unusable_postgres_urls_are_one_line_without_the_password(
    postgres: PostgresServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    cases = {
        postgres.url(password="wrong-pw-123"): "password authentication failed",
        postgres.url(database="missing"): 'database "missing" does not exist',
        f"postgresql://u:wrong-pw-123@127.0.0.1:{free_port()}/db": "refused",
        "postgresql://u:wrong-pw-123@127.0.0.1/": "the database name is required",
    }
    for n, (url, fragment) in enumerate(cases.items()):
        monkeypatch.setenv("TCWEBHOOK_STORE_URL", url)
        command = ("serve", "--port", "0") if n == 0 else ("events", "list")
        result = tcwebhook(*command)
        assert_one_line_error(result, fragment)
        assert "wrong-pw-123" not in result.stderr + result.stdout


def test_inspect_on_a_busy_port_gives_its_own_advice(tmp_path: Path) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        result = tcwebhook(
            "inspect", "--listen", f"127.0.0.1:{port}", "--data-dir", str(tmp_path / "data")
        )
    assert_one_line_error(result, f"cannot serve the inspector on 127.0.0.1:{port}")
    assert "--listen HOST:PORT" in result.stderr
    assert "--inspector" not in result.stderr and "--no-inspector" not in result.stderr


def _serve_banner(tmp_path: Path, config: Path, env: dict[str, str]) -> tuple[Any, str]:
    """Start the real serve (rich output) and return it with its "Try it" curl line."""
    import os
    import subprocess
    import sys
    import time

    from tests.helpers.paths import REPOSITORY

    output = tmp_path / "serve.out"
    with output.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "tcwebhook", "serve", "--port", "0", "--no-inspector",
             "-c", str(config), "--data-dir", str(tmp_path / "data")],
            stdout=sink, stderr=subprocess.STDOUT,
            env={**os.environ, **env, "PYTHONPATH": str(REPOSITORY), "COLUMNS": "400"},
        )  # fmt: skip
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and "Stop with" not in output.read_text():
        assert process.poll() is None, output.read_text()
        time.sleep(0.05)
    lines = [line for line in output.read_text().splitlines() if line.startswith("curl ")]
    assert len(lines) == 1, output.read_text()
    return process, lines[0]


def _run_curl(line: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    import os
    import subprocess

    clean = {k: v for k, v in os.environ.items() if k not in ("TCWEBHOOK_TOKEN", "ERP_HOOK")}
    return subprocess.run(
        ["bash", "-c", line + " -s -o /dev/null -w '%{http_code}'"],
        cwd=cwd, env={**clean, **env}, capture_output=True, text=True, timeout=30,
    )  # fmt: skip


@pytest.mark.parametrize("written", ["literally", "as a variable"])
def test_the_banner_curl_line_works_as_printed_without_the_token(
    tmp_path: Path, written: str
) -> None:
    token = "configured-token-0123456789abcdef"
    config = tmp_path / "tcwebhook.yaml"
    literal = written == "literally"
    config.write_text(f"auth:\n  token: {token if literal else '${ERP_HOOK}'}\n")
    serve_env = {} if literal else {"ERP_HOOK": token}
    (tmp_path / "order-event.json").write_text(
        tcwebhook("samples", "show", "order-issued", "--json").stdout
    )
    process, line = _serve_banner(tmp_path, config, serve_env)
    try:
        assert token not in line and token not in (tmp_path / "serve.out").read_text()
        if literal:
            # the variable it names is not set: the shell stops with the advice, sends nothing
            unset = _run_curl(line, tmp_path, {})
            assert unset.returncode != 0 and unset.stdout == ""
            assert f"set TCWEBHOOK_TOKEN to auth.token of {config}" in unset.stderr
            sent = _run_curl(line, tmp_path, {"TCWEBHOOK_TOKEN": token})
        else:
            assert "$ERP_HOOK" in line  # the variable the file names, set where serve runs
            sent = _run_curl(line, tmp_path, serve_env)
        assert sent.stdout == "200", sent
    finally:
        process.terminate()
        process.wait(timeout=15)


def test_store_copy_shows_where_a_relative_sqlite_url_writes(tmp_path: Path) -> None:
    source = open_store(f"sqlite:///{tmp_path / 'live' / 'events.db'}")
    source.append_sync(new_event(1))
    source.close()
    work = tmp_path / "work"
    work.mkdir()
    result = tcwebhook(
        "store", "copy", f"sqlite:///{tmp_path / 'live' / 'events.db'}",
        "sqlite:///backup/events.db", cwd=work,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    written = work / "backup" / "events.db"
    assert written.is_file()
    assert f"into sqlite:///{written} " in result.stdout
    assert "(sqlite:///backup/events.db is relative to the working directory)" in result.stdout
    # an absolute URL (four slashes) is shown as it is, without the note
    again = tcwebhook("store", "copy", f"sqlite:///{written}", f"sqlite:///{tmp_path / 'b.db'}")
    assert f"into sqlite:///{tmp_path / 'b.db'}" in again.stdout
    assert "relative" not in again.stdout


def test_documented_sqlite_urls_mean_what_they_show() -> None:
    """``sqlite:///var/lib/x.db`` is var/lib/x.db under the working directory: an example of an
    absolute path needs four slashes."""
    import re

    root = Path(__file__).parent.parent
    pages = [
        root / "README.md",
        root / "config.example.yaml",
        *sorted((root / "docs").glob("*.md")),
    ]
    wrong = [
        f"{page.name}: {match.group()}"
        for page in pages
        for match in re.finditer(
            r"sqlite:///(var|backup|srv|home|etc|tmp|opt|mnt|data|root|run)/\S*", page.read_text()
        )
    ]
    assert wrong == []


async def test_logout_leaves_no_token_file(
    cli: CliRunner, fake_api: FakeTradecloud, tmp_path: Path
) -> None:
    cache = tmp_path / "data" / "tradecloud-tokens.json"
    assert (await cli("fetch", "order", ORDER_ID)).code == 0
    assert cache.is_file()
    result = await cli("logout")
    assert result.code == 0 and "Logged out" in result.stdout
    assert not cache.exists()
    assert [path.name for path in cache.parent.iterdir() if "token" in path.name] == []
    again = await cli("logout")  # nothing to end: still fine, still no file
    assert again.code == 0 and not cache.exists()
