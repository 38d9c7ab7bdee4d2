"""Open N keep-alive TLS connections, send one request on each, then hold them idle.

Prints ``ready OPEN`` once every connection has had its answer, then waits until stdin closes.
"""

from __future__ import annotations

import argparse
import asyncio
import ssl
import sys


async def open_one(port: int, context: ssl.SSLContext) -> asyncio.StreamWriter | None:
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: keep-alive\r\n\r\n")
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        if b" 200 " not in head.split(b"\r\n", 1)[0]:
            writer.close()
            return None
        await reader.readexactly(2)  # "ok"
        return writer
    except (OSError, asyncio.IncompleteReadError, ssl.SSLError):
        return None


async def main(port: int, count: int) -> None:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    writers = []
    for start in range(0, count, 100):  # in waves, so the backlog never overflows
        batch = await asyncio.gather(
            *(open_one(port, context) for _ in range(min(100, count - start)))
        )
        writers.extend(writer for writer in batch if writer is not None)
    print(f"ready {len(writers)}", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    for writer in writers:
        writer.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--count", type=int, default=1000)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.port, arguments.count))
