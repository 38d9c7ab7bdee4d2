"""Run every probe concurrently under one deadline, then apply the rules."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_for_futures
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from tcwebhook.errors import TlsCheckError
from tcwebhook.tlscheck import certs, probes, rules
from tcwebhook.tlscheck.probes import Address, Credentials, Deadline, HandshakeResult, HttpResult
from tcwebhook.tlscheck.report import Check, Report, Status
from tcwebhook.tlscheck.target import parse_target
from tcwebhook.tlscheck.trust import load_trust_store

T = TypeVar("T")

FORWARD_SECRET_SUITES = "ECDHE:DHE:!aNULL:!eNULL:@SECLEVEL=0"
STATIC_RSA_SUITES = "kRSA:!eNULL:@SECLEVEL=0"
# RC4, 3DES and EXPORT are only tested when the local OpenSSL still has them.
WEAK_SUITES = "RC4:3DES:EXP:eNULL:aNULL:@SECLEVEL=0"


@dataclass(frozen=True)
class CheckOptions:
    """Everything ``check-tls`` can be told; the defaults are the command's defaults."""

    ca_file: Path | None = None
    servername: str | None = None
    timeout: float = 10.0
    warn_days: int = 30
    endpoint: bool = True
    credentials: Credentials = field(default_factory=Credentials)
    http_port: int = 80
    use_system_trust: bool = True
    now: datetime | None = None


def check_tls(target: str, options: CheckOptions | None = None) -> Report:
    """Check a live endpoint against Tradecloud's TLS requirements."""
    options = options or CheckOptions()
    started = time.monotonic()
    parsed = parse_target(target, options.servername)
    store = load_trust_store(options.ca_file, options.use_system_trust)
    verifying = probes.verifying_context(options.ca_file)
    deadline = Deadline(options.timeout)
    address = probes.resolve(parsed.host, parsed.port, deadline)
    sni = parsed.sni
    host_header = parsed.servername if parsed.port == 443 else f"{parsed.servername}:{parsed.port}"
    authorization = options.credentials.header()

    # Not a with-block: on the deadline we must not wait for probes that are still blocked.
    pool = ThreadPoolExecutor(max_workers=12, thread_name_prefix="check-tls")
    try:
        protocol_futures = {
            name: pool.submit(
                probes.handshake, address, sni, probes.probe_context(version), deadline
            )
            for name, version in probes.TLS_VERSIONS.items()
        }
        trust_future = pool.submit(probes.handshake, address, sni, verifying, deadline)
        cipher_futures = {
            label: _submit_cipher_probe(pool, address, sni, suites, deadline)
            for label, suites in (
                ("fs", FORWARD_SECRET_SUITES),
                ("rsa", STATIC_RSA_SUITES),
                ("weak", WEAK_SUITES),
            )
        }
        anonymous_future = authenticated_future = None
        if options.endpoint:
            anonymous_future = pool.submit(
                probes.post_empty_json,
                address,
                host_header,
                parsed.path,
                deadline,
                probes.probe_context(),
                sni,
            )
            if authorization:
                authenticated_future = pool.submit(
                    probes.post_empty_json,
                    address,
                    host_header,
                    parsed.path,
                    deadline,
                    verifying,
                    sni,
                    authorization,
                )
        http_future = pool.submit(
            probes.post_empty_json,
            address.with_port(options.http_port),
            parsed.servername,
            parsed.path,
            deadline,
            None,
        )
        everything: list[Future[Any]] = [
            *protocol_futures.values(),
            trust_future,
            *(f for f in cipher_futures.values() if f is not None),
            http_future,
            *(f for f in (anonymous_future, authenticated_future) if f is not None),
        ]
        wait_for_futures(everything, timeout=deadline.remaining() + 0.5)
        protocol_results = {
            name: _result(future, _timed_out_handshake) for name, future in protocol_futures.items()
        }
        trust_result = _result(trust_future, _timed_out_handshake)
        cipher_results = {
            label: _result(future, _timed_out_handshake) if future is not None else None
            for label, future in cipher_futures.items()
        }
        anonymous = _result(anonymous_future, _timed_out_http) if anonymous_future else None
        authenticated = (
            _result(authenticated_future, _timed_out_http) if authenticated_future else None
        )
        plain_http = _result(http_future, _timed_out_http)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)

    _raise_if_unreachable(address, deadline, [*protocol_results.values(), trust_result])

    chain = _received_chain(protocol_results)
    now = options.now or certs.utcnow()
    checks: list[Check] = [
        rules.protocols_check(protocol_results),
        rules.trust_check(chain, store, parsed.servername, now, trust_result),
        rules.chain_order_check(chain, store),
        rules.expiry_check(chain, now, options.warn_days),
        rules.key_signature_check(chain),
        rules.cipher_check(
            protocol_results, cipher_results["fs"], cipher_results["rsa"], cipher_results["weak"]
        ),
        _endpoint_row(
            options, parsed.path, protocol_results, anonymous, authenticated, authorization
        ),
        rules.plain_http_check(plain_http, options.http_port),
    ]
    return Report(
        target=parsed.display,
        checks=tuple(checks),
        chain=certs.describe_chain(chain),
        elapsed_seconds=time.monotonic() - started,
        notes=_unchecked_endpoint_note(options, checks),
    )


def check_files(
    cert: Path,
    key: Path | None = None,
    chain: Path | None = None,
    options: CheckOptions | None = None,
) -> Report:
    """Check PEM files before deployment, without any network: what the server would send."""
    options = options or CheckOptions()
    started = time.monotonic()
    store = load_trust_store(options.ca_file, options.use_system_trust)
    certificates = _read_certificates(cert, "--cert")
    if chain is not None:
        certificates += _read_certificates(chain, "--chain")
    private_key = _read_private_key(key) if key is not None else None
    now = options.now or certs.utcnow()
    checks = [
        rules.key_match_check(certificates[0], private_key),
        rules.trust_check(certificates, store, options.servername, now, files=True),
        rules.chain_order_check(certificates, store),
        rules.expiry_check(certificates, now, options.warn_days),
        rules.key_signature_check(certificates),
    ]
    if options.servername is None:
        checks.append(
            Check("hostname", "Hostname", Status.INFO, "not checked: give --servername NAME")
        )
    label = str(cert) if chain is None else f"{cert} + {chain}"
    return Report(
        target=label,
        checks=tuple(checks),
        chain=certs.describe_chain(certificates),
        elapsed_seconds=time.monotonic() - started,
        from_files=True,
    )


def _submit_cipher_probe(
    pool: ThreadPoolExecutor, address: Address, sni: str | None, suites: str, deadline: Deadline
) -> Future[HandshakeResult] | None:
    try:
        context = probes.probe_context(probes.TLS_VERSIONS["TLS 1.2"], suites)
    except Exception:  # ssl.SSLError: this OpenSSL has none of these suites, so nothing to test
        return None
    return pool.submit(probes.handshake, address, sni, context, deadline)


def _result(future: Future[T], on_timeout: Callable[[], T]) -> T:
    if not future.done():
        return on_timeout()
    return future.result()


def _timed_out_handshake() -> HandshakeResult:
    return HandshakeResult(connected=True, accepted=False, error="timed out", timed_out=True)


def _timed_out_http() -> HttpResult:
    return HttpResult(timed_out=True, error="timed out")


def _raise_if_unreachable(
    address: Address, deadline: Deadline, results: list[HandshakeResult]
) -> None:
    """Nothing could connect, or nothing answered the handshake in time: 'could not check'."""
    if results and all(result.connected and result.timed_out for result in results):
        raise TlsCheckError(
            f"could not check: {address.host}:{address.port} accepted the connection but did "
            f"not answer the TLS handshake within {deadline.seconds:g} s; is this the HTTPS "
            "port? (raise --timeout for a slow server)"
        )
    if any(result.connected for result in results):
        return
    first = next((result for result in results if result.error), None)
    if first is not None and first.error:
        raise TlsCheckError(first.error)
    raise TlsCheckError(
        f"could not check: no answer from {address.host}:{address.port} within "
        f"{deadline.seconds:g} s; check the host and port, or raise --timeout"
    )


def _received_chain(protocol_results: dict[str, HandshakeResult]) -> list[x509.Certificate]:
    """The chain from the newest protocol that worked (servers may vary it by protocol)."""
    for name in ("TLS 1.3", "TLS 1.2", "TLS 1.1", "TLS 1.0"):
        result = protocol_results.get(name)
        if result is not None and result.accepted and result.chain:
            return [x509.load_der_x509_certificate(der) for der in result.chain]
    return []


def _endpoint_row(
    options: CheckOptions,
    path: str,
    protocol_results: dict[str, HandshakeResult],
    anonymous: HttpResult | None,
    authenticated: HttpResult | None,
    authorization: str | None,
) -> Check:
    if not options.endpoint:
        return rules.endpoint_check(None, None, False, skip_reason="--no-endpoint given")
    if not any(protocol_results[name].accepted for name in ("TLS 1.2", "TLS 1.3")):
        return rules.endpoint_check(None, None, False, skip_reason="no TLS 1.2 or 1.3 handshake")
    return rules.endpoint_check(anonymous, authenticated, authorization is not None, path=path)


def _unchecked_endpoint_note(options: CheckOptions, checks: list[Check]) -> tuple[str, ...]:
    """Said under the verdict line, lest a PASS of the TLS rows read as a proven endpoint."""
    endpoint = next(check for check in checks if check.id == "endpoint")
    if not options.endpoint or options.credentials.header() or endpoint.status is not Status.INFO:
        return ()
    return (
        "the endpoint's path and authentication were not checked: pass --token or "
        "--user/--password to check them",
    )


def _read_certificates(path: Path, option: str) -> list[x509.Certificate]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise TlsCheckError(
            f"cannot read {path} ({exc.strerror or exc}); pass an existing PEM file to {option}"
        ) from exc
    try:
        found = certs.load_pem_certificates(data)
    except ValueError as exc:
        raise TlsCheckError(f"{path} is not a valid PEM certificate file: {exc}") from exc
    if not found:
        raise TlsCheckError(
            f"{path} holds no PEM certificate (-----BEGIN CERTIFICATE-----); pass the "
            f"certificate file to {option}"
        )
    return found


def _read_private_key(path: Path) -> object:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise TlsCheckError(
            f"cannot read {path} ({exc.strerror or exc}); pass an existing PEM key to --key"
        ) from exc
    try:
        return serialization.load_pem_private_key(data, password=None)
    except TypeError as exc:
        raise TlsCheckError(
            f"the key {path} is encrypted; decrypt a copy (openssl pkey -in KEY -out PLAIN) "
            "to check it"
        ) from exc
    except ValueError as exc:
        raise TlsCheckError(f"{path} is not a PEM private key; pass the key file to --key") from exc
