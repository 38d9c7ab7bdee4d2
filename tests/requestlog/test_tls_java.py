"""What a real Java client, as Tradecloud's sender is, makes of our certificate: one alert,
``certificate_unknown``, for an untrusted chain and for a wrong name alike.

Skipped without a Java runtime."""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import threading
from pathlib import Path

import pytest
import trustme

from tcwebhook.requestlog import explain_handshake

pytestmark = pytest.mark.skipif(shutil.which("java") is None, reason="no Java runtime")

CERT_NAMES = ("localhost", "127.0.0.1")

# Each connection: a trust store ("-": the JDK's own CAs, or a PEM file of CAs), the name the
# client asks for, the port. Endpoint identification as an HTTPS client does it.
JAVA_CLIENT = """
import java.io.FileInputStream;
import java.net.Socket;
import java.security.KeyStore;
import java.security.cert.CertificateFactory;
import javax.net.ssl.*;

public class Client {
    public static void main(String[] args) throws Exception {
        for (int i = 0; i < args.length; i += 3) {
            SSLContext context = SSLContext.getDefault();
            if (!args[i].equals("-")) {
                KeyStore store = KeyStore.getInstance(KeyStore.getDefaultType());
                store.load(null, null);
                try (FileInputStream pem = new FileInputStream(args[i])) {
                    store.setCertificateEntry("ca",
                        CertificateFactory.getInstance("X.509").generateCertificate(pem));
                }
                TrustManagerFactory trust =
                    TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
                trust.init(store);
                context = SSLContext.getInstance("TLS");
                context.init(null, trust.getTrustManagers(), null);
            }
            int port = Integer.parseInt(args[i + 2]);
            Socket raw = new Socket("127.0.0.1", port);
            try (SSLSocket tls = (SSLSocket) context.getSocketFactory()
                    .createSocket(raw, args[i + 1], port, true)) {
                SSLParameters parameters = tls.getSSLParameters();
                parameters.setEndpointIdentificationAlgorithm("HTTPS");
                tls.setSSLParameters(parameters);
                tls.startHandshake();
                System.out.println("accepted");
            } catch (Exception e) {
                System.out.println("refused: " + e.getClass().getSimpleName());
            }
        }
    }
}
"""


class OneHandshake:
    """A server for one connection; what its side of the handshake saw."""

    def __init__(self, cert_file: Path, key_file: Path) -> None:
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.minimum_version = ssl.TLSVersion.TLSv1_2
        self.context.load_cert_chain(cert_file, key_file)
        self.context.sni_callback = self._remember  # type: ignore[assignment]
        self.server_name: str | None = None
        self.error: BaseException | None = None
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _remember(self, _sock: ssl.SSLObject, name: str | None, _ctx: ssl.SSLContext) -> None:
        self.server_name = name

    def _serve(self) -> None:
        connection, _ = self.listener.accept()
        connection.settimeout(60)
        try:
            self.context.wrap_socket(connection, server_side=True).close()
        except BaseException as exc:
            self.error = exc
            connection.close()
        finally:
            self.listener.close()


def test_java_says_certificate_unknown_for_an_untrusted_chain_and_for_a_wrong_name(
    tmp_path: Path,
) -> None:
    ca = trustme.CA()
    leaf = ca.issue_cert(*CERT_NAMES)
    cert_file, key_file, ca_file = tmp_path / "c.pem", tmp_path / "k.pem", tmp_path / "ca.pem"
    cert_file.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
    key_file.write_bytes(leaf.private_key_pem.bytes())
    ca.cert_pem.write_to_path(str(ca_file))
    (tmp_path / "Client.java").write_text(JAVA_CLIENT)
    untrusted, wrong_name = OneHandshake(cert_file, key_file), OneHandshake(cert_file, key_file)
    result = subprocess.run(
        ["java", str(tmp_path / "Client.java"),
         "-", "127.0.0.1", str(untrusted.port),
         str(ca_file), "erp.example.com", str(wrong_name.port)],
        capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    assert result.stdout.split("\n")[:2] == ["refused: SSLHandshakeException"] * 2, result.stderr
    for server in (untrusted, wrong_name):
        server.thread.join(timeout=30)

    assert untrusted.server_name is None  # Java sends no SNI for an address
    assert untrusted.error is not None and wrong_name.error is not None
    chain = explain_handshake(untrusted.error, server_name=None, certificate_names=CERT_NAMES)
    assert chain.code == "certificate_unknown"
    assert "Java" in chain.reason and "no server name (SNI)" in chain.reason

    assert wrong_name.server_name == "erp.example.com"
    name = explain_handshake(
        wrong_name.error, server_name=wrong_name.server_name, certificate_names=CERT_NAMES
    )
    assert name.code == "name_mismatch"
    assert "erp.example.com" in name.reason and "certificate_unknown" in name.reason
