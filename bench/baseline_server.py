"""The ceiling: a bare aiohttp HTTPS server that reads the body, checks the token, answers 200.

Same stack and TLS settings as ``tcwebhook serve``, none of its work (no parsing, no storing).
"""

from __future__ import annotations

import argparse
import hmac
import ssl
from pathlib import Path

from aiohttp import web


def make_app(token: str) -> web.Application:
    expected = f"Bearer {token}".encode()

    async def receive(request: web.Request) -> web.Response:
        given = (request.headers.get("Authorization") or "").encode()
        if not hmac.compare_digest(given, expected):
            return web.json_response({"error": "unauthorized"}, status=401)
        await request.read()
        return web.json_response({"status": "stored", "id": 0})

    app = web.Application(client_max_size=10 * 1024 * 1024)
    app.router.add_post("/tradecloud/order", receive)
    return app


def tls_context(cert: Path, key: Path) -> ssl.SSLContext:
    """The TLS settings of ``serve``: TLS 1.2 or newer, HTTP/1.1 by ALPN."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(["http/1.1"])
    context.load_cert_chain(cert, key)
    return context


def argument_parser(description: str | None) -> argparse.ArgumentParser:
    """The options of a benchmark server: its port, certificate and key, and the token file."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--cert", type=Path, required=True)
    parser.add_argument("--key", type=Path, required=True)
    parser.add_argument("--token-file", type=Path, required=True)
    return parser


def run(app: web.Application, args: argparse.Namespace) -> None:
    """Serve ``app`` over TLS on loopback until stopped, without an access log."""
    web.run_app(
        app,
        host="127.0.0.1",
        port=args.port,
        ssl_context=tls_context(args.cert, args.key),
        access_log=None,
        print=None,
        backlog=1024,
    )


def main() -> None:
    args = argument_parser(__doc__).parse_args()
    run(make_app(args.token_file.read_text().strip()), args)


if __name__ == "__main__":
    main()
