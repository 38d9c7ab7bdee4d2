"""Whatever a user types into a flag or the config file ends in one line and exit code 2.

The commands run in-process through the real entry point (``tcwebhook.cli.main``), which turns
errors into one line, so a traceback shows up here as an exception.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tcwebhook.cli import main
from tcwebhook.config import load_settings
from tcwebhook.store import open_store
from tests.helpers.store import new_event

EXAMPLE = Path(__file__).parent.parent / "config.example.yaml"
BAD_URLS = ["https://[::1", "https://127.0.0.1:99999", "https://127.0.0.1:abc", "https:///x"]


def run(monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    monkeypatch.setattr(sys, "argv", ["tcwebhook", *args])
    monkeypatch.setenv("COLUMNS", "200")
    try:
        main()
    except SystemExit as exited:
        return int(exited.code or 0)
    return 0


def error_line(capsys: pytest.CaptureFixture[str], code: int) -> str:
    """The single stderr line of a usage error."""
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    return lines[0]


NOWHERE = "https://127.0.0.1:9/hook"
FLAG_MISTAKES = [
    *((["replay", "order-issued", "--url", url], f"--url {url!r}") for url in BAD_URLS),
    *((["check-tls", url], f"TARGET {url!r}") for url in BAD_URLS),
    *((["fetch", "order", "X", "--base-url", url], f"--base-url {url!r}") for url in BAD_URLS),
    *(
        (["replay", "order-issued", "--url", NOWHERE, *flags], fragment)
        for flags, fragment in [
            (["--timeout", "nan"], "--timeout must be a number of seconds above 0 (got nan)"),
            (["--timeout", "inf"], "--timeout must be a number of seconds above 0 (got inf)"),
            (["--retry", "--max-delay", "nan"], "--max-delay must be a number of seconds"),
            (["--token", "abc\r\nX-Injected: 1"], "--token holds a control character"),
            (["--user", "a:b", "--password", "c"], "--user must not contain ':'"),
        ]
    ),
]


@pytest.mark.parametrize(("args", "fragment"), FLAG_MISTAKES)
def test_flag_mistakes_are_one_line(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    fragment: str,
) -> None:
    monkeypatch.setenv("TRADECLOUD_USERNAME", "integration@example.com")
    monkeypatch.setenv("TRADECLOUD_PASSWORD", "not-used")
    assert fragment in error_line(capsys, run(monkeypatch, *args))


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("sinks:\n  - type: directory\n    path: out\n", 2, "sinks[0] needs 'name'"),
        ("server:\n  port: 1\na: &a [*a]\n", 3, "refers to itself"),
        ("server:\n  port: 8443.7\n", 2, "server.port must be a whole number (got '8443.7')"),
        ("server:\n  port: .inf\n", 2, "server.port must be a whole number"),
        ('server:\n  port: "8443"\n', 2, "without quotes"),
        ("server:\n  port: 1\n  port: 2\n", 3, "duplicate key 'port' (first on line 2)"),
        ("tradecloud:\n  base_url: https://[::1\n", 2, "tradecloud.base_url 'https://[::1'"),
        *(
            (f"sinks:\n  - name: s\n    type: command\n    run: [x]\n    {key}\n", 5, message)
            for key, message in [
                ("timeout: .nan", "sinks[0].timeout must be a finite number (got '.nan')"),
                ("timeout: .inf", "sinks[0].timeout must be a finite number"),
                ("timeout: -1", "sinks[0].timeout must be greater than 0"),
                ("timeout: true", "sinks[0].timeout must be a finite number"),
                ("concurrency: 0", "sinks[0].concurrency must be at least 1"),
                ("kinds: [order, bogus]", "kinds[1] must be one of order, single_delivery_order"),
                ("url: https://h:99999", "sinks[0].url 'https://h:99999' has an invalid port"),
                ("retry: {base_delay: -1}", "sinks[0].retry.base_delay must be greater than 0"),
            ]
        ),
    ],
)
def test_config_mistakes_name_the_key_and_line(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    text: str,
    line: int,
    fragment: str,
) -> None:
    config = tmp_path / "odd.yaml"
    config.write_text(text)
    message = error_line(
        capsys, run(monkeypatch, "replay", "order-issued", "--url", NOWHERE, "-c", str(config))
    )
    assert f"{config}:{line}" in message and fragment in message


@pytest.mark.parametrize(
    "text",
    [
        "x: " + "[" * 1000 + "]" * 1000 + "\n",
        "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
        + "".join(
            f"a{i}: &a{i} [{', '.join([f'*a{i - 1}' if i > 1 else '*a'] * 10)}]\n"
            for i in range(1, 8)
        ),
        "x: !!python/object:os.system echo\n",
    ],
    ids=["deep-nesting", "alias-bomb", "python-tag"],
)
def test_yaml_oddities_are_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path, text: str
) -> None:
    config = tmp_path / "odd.yaml"
    config.write_text(text)
    message = error_line(capsys, run(monkeypatch, "replay", "order-issued", "-c", str(config)))
    assert str(config) in message


def test_a_flag_error_names_the_flag_not_the_file(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    config = tmp_path / "tcwebhook.yaml"
    config.write_text("server:\n  port: 8443\n")
    message = error_line(capsys, run(monkeypatch, "serve", "-c", str(config), "--port", "-1"))
    assert "--port" in message and "between 0 and 65535" in message
    assert str(config) not in message
    monkeypatch.setenv("TCWEBHOOK_SERVER_PORT", "8443.5")
    message = error_line(capsys, run(monkeypatch, "serve", "-c", str(config)))
    assert "TCWEBHOOK_SERVER_PORT must be a whole number" in message


def test_replay_before_the_first_serve_says_so(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    message = error_line(capsys, run(monkeypatch, "replay", "order-issued"))
    assert "'tcwebhook serve' has not created its development CA yet" in message
    assert "(--ca-file)" not in message


@pytest.mark.parametrize("command", [["replay"], ["fetch", "order"], ["check-tls"], []])
def test_help_shows_flags_without_a_value_placeholder(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    assert run(monkeypatch, *command, "--help") == 0
    out = capsys.readouterr().out
    assert "--help" in out and "<bool>" not in out
    assert "<int>" in out or "<str>" in out or "Commands" in out  # typed options keep their type


def test_relative_data_dir_flag_is_relative_to_the_working_directory(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    etc = tmp_path / "etc"
    etc.mkdir()
    config = etc / "tcwebhook.yaml"
    config.write_text("data_dir: ./from-file\n")
    store = open_store(f"sqlite:///{tmp_path / 'here' / 'events.db'}")
    store.append_sync(new_event(1))
    store.close()
    monkeypatch.delenv("TCWEBHOOK_DATA_DIR")
    assert (
        run(monkeypatch, "events", "list", "--json", "-c", str(config), "--data-dir", "here") == 0
    )
    assert '"m-1"' in capsys.readouterr().out
    assert not (etc / "here").exists()
    # the same flag everywhere; in the file, relative to the file; in the environment, to cwd
    assert load_settings(config, {"data_dir": "here"}, environ={}).data_dir == tmp_path / "here"
    assert load_settings(config, environ={}).data_dir == etc / "from-file"
    environ = {"TCWEBHOOK_DATA_DIR": "env-dir"}
    assert load_settings(config, environ=environ).data_dir == tmp_path / "env-dir"


def test_example_config_works_as_it_is_and_the_store_follows_data_dir(tmp_path: Path) -> None:
    settings = load_settings(EXAMPLE, environ={})
    assert settings.auth.type == "bearer" and settings.server.tls.cert is None
    assert settings.store_url == f"sqlite:///{settings.data_dir / 'events.db'}"
    basic = {"TCWEBHOOK_AUTH_TYPE": "basic", "TCWEBHOOK_PASSWORD": "pw"}
    assert load_settings(EXAMPLE, environ=basic).auth.password == "pw"
    moved = load_settings(EXAMPLE, {"data_dir": str(tmp_path / "moved")}, environ={})
    assert moved.store_url == f"sqlite:///{tmp_path / 'moved' / 'events.db'}"
    explicit = {"TCWEBHOOK_STORE_URL": "postgresql://db.example/tcwebhook"}
    assert load_settings(EXAMPLE, environ=explicit).store_url == explicit["TCWEBHOOK_STORE_URL"]


def test_numbers_written_for_text_keys_stay_as_written(tmp_path: Path) -> None:
    config = tmp_path / "tcwebhook.yaml"
    config.write_text("auth:\n  type: basic\n  username: 1e3\n  password: 0123\n")
    auth = load_settings(config, environ={}).auth
    assert (auth.username, auth.password) == ("1e3", "0123")  # YAML 1.1 reads 0123 as 83


def test_sink_header_with_a_line_break_is_refused(tmp_path: Path) -> None:
    from tcwebhook.errors import ConfigError

    config = tmp_path / "tcwebhook.yaml"
    config.write_text(
        "sinks:\n  - name: s\n    type: http\n    url: https://h/\n"
        '    headers: {X-A: "a\\r\\nb: c"}\n'
    )
    with pytest.raises(ConfigError, match="not a valid HTTP header"):
        load_settings(config, environ={})


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["serve", "--bogus"], "unknown option --bogus (did you mean --host?); see 'tcwebhook se"),
        (
            ["events", "list", "--state", "orders"],
            "--state must be one of pending, running, failed, dead, done (got 'orders')",
        ),
        (["serve", "--port", "abc"], "--port must be a whole number (got 'abc')"),
        (["events", "list", "--limit", "1.5"], "--limit must be a whole number (got '1.5')"),
        (["replay", "x", "--max-delay", "soon"], "--max-delay must be a number (got 'soon')"),
        (["serve", "--workers", "99"], "--workers must be at most 64 (got '99')"),
        (["serve", "--log-format", "xml"], "--log-format must be one of rich, json (got 'xml')"),
        (["events", "show"], "missing argument EVENT_ID; see 'tcwebhook events show --help'"),
        (["serve", "--port"], "--port needs a value"),
        (["nosuch"], "unknown command 'nosuch'; see 'tcwebhook --help'"),
    ],
)
def test_usage_errors_are_one_line_in_our_words(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    fragment: str,
) -> None:
    line = error_line(capsys, run(monkeypatch, *args))
    assert fragment in line
    for validator_wording in ("Value error", "Input should", "Invalid value", "No such", "│"):
        assert validator_wording not in line


def test_exit_codes_of_commands_survive_the_error_handling(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    import trustme

    assert run(monkeypatch, "--version") == 0
    assert run(monkeypatch, "serve", "--help") == 0
    assert run(monkeypatch, "events") == 2  # a group without a command shows its help
    assert "list" in capsys.readouterr().out
    # typer.Exit(1) from a command: a failed check, not a usage error
    leaf = tmp_path / "leaf.pem"
    trustme.CA().issue_cert("erp.example.com").cert_chain_pems[0].write_to_path(str(leaf))
    assert run(monkeypatch, "check-tls", "--cert", str(leaf)) == 1


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("sinks:\n  - type: directory\n    path: out\n", 2, "sinks[0] needs 'name'"),
        ("sinks:\n  - {name: '', type: directory, path: out}\n", 2, "a sink needs a name"),
        ("metrics:\n  listen: nowhere\n", 2, "metrics.listen must be HOST:PORT"),
        # a section with a variable only serve needs is still checked for its keys
        (
            "auth: {token: '${ONLY_SERVE_NEEDS_THIS}'}\nsinks:\n"
            "  - {type: http, url: 'https://h/x', headers: {A: '${NOR_THIS}'}}\n",
            3,
            "sinks[0] needs 'name'",
        ),
        ("sinks:\n  - {name: a, type: http, pth: '${NOR_THIS}'}\n", 2, "unknown key 'sinks[0].pth"),
    ],
)
@pytest.mark.parametrize("command", [["status"], ["events", "list"]])
def test_every_command_checks_the_whole_config(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    text: str,
    line: int,
    fragment: str,
    command: list[str],
) -> None:
    config = tmp_path / "tcwebhook.yaml"
    config.write_text(f"data_dir: {tmp_path / 'data'}\n{text}")
    monkeypatch.delenv("ONLY_SERVE_NEEDS_THIS", raising=False)
    monkeypatch.delenv("NOR_THIS", raising=False)
    message = error_line(capsys, run(monkeypatch, *command, "-c", str(config)))
    assert f"{config}:{line + 1}" in message and fragment in message
    # serve refuses the same file: the same words, or first the variable it needs
    serve_message = error_line(capsys, run(monkeypatch, "serve", "-c", str(config)))
    assert fragment in serve_message or "which is not set" in serve_message
