"""The check-tls command: exit codes, the --json schema, one-line errors."""

from __future__ import annotations

import json
import socket
import sys

import pytest

from tcwebhook.cli import main
from tests.helpers.pki import make_ca, make_leaf


def run_cli(monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    monkeypatch.setattr(sys, "argv", ["tcwebhook", "check-tls", *args])
    with pytest.raises(SystemExit) as exited:
        main()
    return exited.value.code or 0


def test_json_output_follows_the_documented_schema(pki, servers, closed_port, monkeypatch, capsys):
    def bearer(headers: dict[str, str]) -> int:
        return 400 if headers.get("authorization") == "Bearer t0ken-value" else 401

    server = servers.start(pki.leaf, chain=(pki.intermediate,), status=bearer)
    code = run_cli(
        monkeypatch,
        server.url,
        "--ca-file",
        str(pki.root_file),
        "--servername",
        "localhost",
        "--http-port",
        str(closed_port),
        "--token",
        "t0ken-value",
        "--json",
    )
    output = capsys.readouterr().out
    assert code == 0
    data = json.loads(output)
    assert set(data) == {"target", "verdict", "checks", "chain"}
    assert data["target"] == server.url
    assert data["verdict"] == "pass"
    assert [check["id"] for check in data["checks"]] == [
        "protocols",
        "trust",
        "chain-order",
        "expiry",
        "key-signature",
        "ciphers",
        "endpoint",
        "plain-http",
    ]
    for check in data["checks"]:
        assert set(check) == {"id", "status", "finding", "fix"}
        assert check["status"] in {"pass", "warn", "fail", "info"}
    assert set(data["chain"][0]) == {
        "subject",
        "issuer",
        "not_before",
        "not_after",
        "key",
        "signature",
        "sha256",
        "self_signed",
        "ca",
    }
    assert "t0ken-value" not in output


def test_table_output_and_exit_1_on_failure(pki, servers, closed_port, monkeypatch, capsys):
    server = servers.start(pki.leaf)  # missing intermediate
    code = run_cli(
        monkeypatch,
        server.url,
        "--ca-file",
        str(pki.root_file),
        "--servername",
        "localhost",
        "--http-port",
        str(closed_port),
    )
    output = capsys.readouterr().out
    assert code == 1
    assert "missing intermediate" in output
    assert "Certificate chain as received" in output
    assert "FAIL: 1 check failed; Tradecloud will not be able to deliver to" in output
    assert "until it is fixed" in " ".join(output.split())


def test_strict_turns_a_warning_into_exit_1(pki, servers, closed_port, monkeypatch, capsys):
    server = servers.start(pki.leaf, chain=(pki.root, pki.intermediate))  # out of order
    args = [
        server.url,
        "--ca-file",
        str(pki.root_file),
        "--servername",
        "localhost",
        "--http-port",
        str(closed_port),
        "--json",
    ]
    assert run_cli(monkeypatch, *args) == 0
    assert json.loads(capsys.readouterr().out)["verdict"] == "warn"
    assert run_cli(monkeypatch, *args, "--strict") == 1


def test_connection_refused_is_exit_2_with_one_line(closed_port, monkeypatch, capsys):
    code = run_cli(monkeypatch, f"https://127.0.0.1:{closed_port}/webhook", "--json")
    captured = capsys.readouterr()
    assert code == 2
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1
    assert f"could not check: connection refused to 127.0.0.1:{closed_port}" in lines[0]


def test_plain_http_url_is_a_usage_error(monkeypatch, capsys):
    assert run_cli(monkeypatch, "http://example.com/webhook") == 2
    assert "Tradecloud delivers only over HTTPS" in capsys.readouterr().err


def test_file_mode_from_the_command_line(pki, monkeypatch, capsys):
    cert = pki.write("cli-cert.pem", pki.leaf.pem)
    key = pki.write("cli-cert.key", pki.leaf.key_pem)
    chain = pki.write("cli-chain.pem", pki.intermediate.pem)
    code = run_cli(
        monkeypatch,
        "--cert",
        str(cert),
        "--key",
        str(key),
        "--chain",
        str(chain),
        "--ca-file",
        str(pki.root_file),
        "--servername",
        "localhost",
        "--json",
    )
    assert code == 0
    assert json.loads(capsys.readouterr().out)["verdict"] == "pass"


def test_a_port_that_never_answers_the_handshake_is_exit_2(monkeypatch, capsys):
    # The kernel completes TCP connections to a listening socket even if nobody accepts them.
    with socket.create_server(("127.0.0.1", 0)) as silent:
        port = silent.getsockname()[1]
        code = run_cli(monkeypatch, f"127.0.0.1:{port}", "--timeout", "0.5", "--no-endpoint")
    assert code == 2
    assert "did not answer the TLS handshake within 0.5 s" in capsys.readouterr().err


def test_names_from_the_server_are_shown_as_text(pki, servers, closed_port, monkeypatch, capsys):
    # A certificate's names are the server's to choose: Rich markup and terminal controls in them
    # must neither break the table nor reach the terminal.
    hostile = make_ca("[/]evil [bold]\x1b[2J", pki.keys.other)
    server = servers.start(make_leaf(hostile, pki.keys.leaf, aia=False))
    code = run_cli(
        monkeypatch, server.url, "--servername", "localhost", "--http-port", str(closed_port)
    )
    captured = capsys.readouterr()
    assert code == 1, captured.err
    assert captured.err == ""
    assert "\x1b" not in captured.out
    flat = " ".join(captured.out.split())
    assert "unknown root: the chain leads to '[/]evil [bold]\\x1b[2J'" in flat
