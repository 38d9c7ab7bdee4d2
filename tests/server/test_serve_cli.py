"""``serve`` start-up errors: one line that blames the right setting, exit code 2."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest
import trustme

from tcwebhook.errors import ConfigError
from tcwebhook.server.run import bind_sockets
from tests.helpers.cli import assert_one_line_error, tcwebhook


def write_config(tmp_path: Path, certificate: trustme.LeafCert, host: str, key: Path) -> Path:
    cert = tmp_path / "cert.pem"
    cert.write_bytes(b"".join(blob.bytes() for blob in certificate.cert_chain_pems))
    if not key.exists():
        certificate.private_key_pem.write_to_path(str(key))
    config = tmp_path / "tcwebhook.yaml"
    config.write_text(
        f"data_dir: {tmp_path / 'data'}\n"
        f"server:\n  host: {host}\n  port: 0\n  tls:\n    cert: {cert}\n    key: {key}\n"
        "auth:\n  token: a-token-for-this-test\n"
    )
    return config


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_host_that_is_no_name_blames_host_not_port(
    tmp_path: Path, tls_certificate: trustme.LeafCert, workers: str
) -> None:
    # An empty label fails in the IDNA codec, before any name server is asked.
    config = write_config(tmp_path, tls_certificate, "bad..name", tmp_path / "key.pem")
    result = tcwebhook("serve", "--config", str(config), "--workers", workers)
    assert_one_line_error(result, "--host bad..name is not an address or a name")
    assert "--port" not in result.stderr


def test_an_unresolvable_host_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_such_name(*args: Any, **kwargs: Any) -> Any:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_such_name)  # the resolver, not our code
    with pytest.raises(ConfigError, match=r"--host no-such-host\.invalid is not an address"):
        bind_sockets("no-such-host.invalid", 0, 2)


def test_a_tls_key_that_is_a_directory_says_so(
    tmp_path: Path, tls_certificate: trustme.LeafCert
) -> None:
    key = tmp_path / "keys"
    key.mkdir()
    config = write_config(tmp_path, tls_certificate, "127.0.0.1", key)
    result = tcwebhook("serve", "--config", str(config))
    assert_one_line_error(result, f"cannot read {key}: a directory, not a file")
