"""``tcwebhook init``: the file it writes works at once with ``serve`` and ``replay``, the portal's
entries match it, and no secret leaks into --json."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest
import trustme

from tcwebhook.config import load_settings
from tests.helpers.cli import one_error_line
from tests.helpers.paths import REPOSITORY


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The real command in ``cwd``, without any TCWEBHOOK_* of the test environment."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("TCWEBHOOK_")}
    environment.update(PYTHONPATH=str(REPOSITORY), COLUMNS="200")
    return subprocess.run(
        [sys.executable, "-m", "tcwebhook", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
        env=environment,
        stdin=subprocess.DEVNULL,
    )


def init(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run("init", "--non-interactive", *args, cwd=folder)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_the_written_config_serves_and_replays_at_once(tmp_path: Path) -> None:
    port = free_port()
    result = init(tmp_path, "--public-url", f"https://localhost:{port}", "--tls", "development")
    assert result.returncode == 0, result.stderr
    config = tmp_path / "tcwebhook.yaml"
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    token = load_settings(config).auth.token
    assert token and len(token) >= 40 and token in result.stdout  # shown once, on stdout
    assert f"https://localhost:{port}/tradecloud/order" in result.stdout

    environment = {k: v for k, v in os.environ.items() if not k.startswith("TCWEBHOOK_")}
    environment["PYTHONPATH"] = str(REPOSITORY)
    log = (tmp_path / "serve.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "tcwebhook", "serve", "--no-inspector", "--log-format", "json"],
        cwd=tmp_path,
        env=environment,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while b"\n" not in (tmp_path / "serve.log").read_bytes():
            assert server.poll() is None and time.monotonic() < deadline, (
                tmp_path / "serve.log"
            ).read_text()
            time.sleep(0.05)
        for sample in ("order-issued", "shipment-issued"):
            replayed = run("replay", sample, cwd=tmp_path)
            assert replayed.returncode == 0, replayed.stdout + replayed.stderr
        listed = run("events", "list", "--json", cwd=tmp_path)
        assert listed.returncode == 0, listed.stderr
        assert sorted(event["kind"] for event in orjson.loads(listed.stdout)) == [
            "order",
            "shipment",
        ]
    finally:
        server.terminate()
        server.wait(timeout=15)
        log.close()


def test_json_names_where_the_secret_is_but_never_shows_it(tmp_path: Path) -> None:
    result = init(
        tmp_path,
        "--public-url",
        "https://erp.example.com/hooks",
        "--tls",
        "proxy",
        "--auth",
        "basic",
        "--orders",
        "get",
        "--no-documents",
        "--no-check",
        "--json",
    )
    assert result.returncode == 0, result.stderr
    settings = load_settings(tmp_path / "tcwebhook.yaml")
    assert settings.auth.password and settings.auth.password not in result.stdout
    report = orjson.loads(result.stdout)
    assert report["secret_in"].endswith("auth.password")
    portal = [(entry["integration"], entry["method"], entry["url"]) for entry in report["portal"]]
    assert portal == [
        ("Orders", "GET", "https://erp.example.com/hooks/tradecloud/order/{orderId}"),
        ("Shipments", "POST", "https://erp.example.com/hooks/tradecloud/shipment"),
    ]
    # Behind the proxy: plain HTTP on loopback, the prefix routed, the proxy trusted.
    assert not settings.server.tls.enabled and settings.server.host == "127.0.0.1"
    assert settings.server.paths.order == "/hooks/tradecloud/order"
    assert "127.0.0.1" in settings.server.proxy.trusted


def test_entra_guards_the_order_path_and_shipments_keep_a_token(tmp_path: Path) -> None:
    result = init(
        tmp_path,
        "--public-url",
        "https://erp.example.com",
        "--tls",
        "proxy",
        "--auth",
        "entra",
        "--entra-tenant",
        "11111111-2222-3333-4444-555555555555",
        "--entra-audience",
        "api://tcwebhook",
        "--entra-client-id",
        "22222222-3333-4444-5555-666666666666",
        "--no-check",
        "--json",
    )
    assert result.returncode == 0, result.stderr
    settings = load_settings(tmp_path / "tcwebhook.yaml")
    order_auth = settings.server.paths.order_auth
    assert order_auth is not None and order_auth.type == "entra"
    assert order_auth.audiences == ("api://tcwebhook",)
    assert settings.auth.type == "bearer" and settings.auth.token
    portal = orjson.loads(result.stdout)["portal"]
    assert "api://tcwebhook/.default" in portal[0]["authentication"]
    assert portal[-1]["authentication"].startswith("Bearer")  # shipments cannot use Entra


def test_an_existing_config_is_kept_without_force(tmp_path: Path) -> None:
    config = tmp_path / "tcwebhook.yaml"
    config.write_text("server:\n  port: 9443\n")
    result = init(tmp_path, "--public-url", "https://erp.example.com", "--tls", "proxy")
    assert result.returncode == 2
    assert "--force" in one_error_line(result.stderr)
    assert config.read_text() == "server:\n  port: 9443\n"


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--public-url", "http://erp.example.com", "--tls", "proxy"], "https://"),
        (["--public-url", "https://erp.example.com", "--tls", "files"], "--cert"),
        (
            [
                *("--public-url", "https://x.example", "--tls", "proxy", "--orders", "get"),
                *("--delivery-mode", "single-delivery"),
            ],
            "single-delivery",
        ),
        (["--tls", "proxy"], "--public-url"),
    ],
)
def test_usage_errors_are_one_line_and_write_nothing(
    tmp_path: Path, args: list[str], fragment: str
) -> None:
    result = init(tmp_path, *args)
    assert result.returncode == 2
    assert fragment in one_error_line(result.stderr)
    assert not (tmp_path / "tcwebhook.yaml").exists()


def test_without_a_terminal_a_missing_answer_names_its_flag(tmp_path: Path) -> None:
    result = run("init", cwd=tmp_path)  # stdin is not a terminal: never wait on a prompt
    assert result.returncode == 2
    assert "--public-url" in one_error_line(result.stderr)


def test_certificate_files_are_checked_and_a_wrong_key_fails(tmp_path: Path) -> None:
    authority = trustme.CA()
    leaf = authority.issue_cert("localhost")
    other = authority.issue_cert("localhost")
    cert, key, wrong_key = tmp_path / "cert.pem", tmp_path / "key.pem", tmp_path / "other.pem"
    cert.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
    key.write_bytes(leaf.private_key_pem.bytes())
    wrong_key.write_bytes(other.private_key_pem.bytes())
    closed = f"https://localhost:{free_port()}"  # nothing listens: the URL check is left to do

    good = init(tmp_path, "--public-url", closed, "--cert", str(cert), "--key", str(key), "--json")
    checks = orjson.loads(good.stdout)["checks"]
    key_match = {check["id"]: check for check in checks["files"]["checks"]}["key-match"]
    assert key_match["status"] == "pass"
    assert checks["url"] is None and "connection refused" in checks["unreachable"]
    assert any("tcwebhook serve" in step for step in checks["left_to_do"])

    bad = init(
        tmp_path,
        *("--public-url", closed, "--cert", str(cert), "--key", str(wrong_key)),
        *("--force", "--json"),
    )
    assert bad.returncode == 1, bad.stderr
    checks = orjson.loads(bad.stdout)["checks"]
    assert {check["id"]: check for check in checks["files"]["checks"]}["key-match"][
        "status"
    ] == "fail"
    settings = load_settings(tmp_path / "tcwebhook.yaml")
    assert settings.server.tls.cert == cert and settings.server.host == "0.0.0.0"


def test_the_questions_on_a_terminal(tmp_path: Path) -> None:
    """Answered on a real pseudo-terminal, as a person would, including one wrong answer."""
    primary, secondary = os.openpty()
    environment = {k: v for k, v in os.environ.items() if not k.startswith("TCWEBHOOK_")}
    environment.update(PYTHONPATH=str(REPOSITORY), COLUMNS="200")
    process = subprocess.Popen(
        [sys.executable, "-m", "tcwebhook", "init", "--no-check"],
        cwd=tmp_path,
        env=environment,
        stdin=secondary,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    os.close(secondary)
    os.write(primary, b"https://erp.example.com\nnonsense\nproxy\nbasic\n")
    stdout, stderr = process.communicate(timeout=60)
    os.close(primary)
    assert process.returncode == 0, stderr
    assert b"Please answer one of: files, proxy, development" in stdout
    settings = load_settings(tmp_path / "tcwebhook.yaml")
    assert settings.auth.type == "basic" and not settings.server.tls.enabled
