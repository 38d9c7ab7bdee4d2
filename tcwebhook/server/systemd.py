"""The service manager's protocols without libsystemd: readiness and socket activation.

``sd_notify``: datagrams such as ``READY=1`` to the Unix socket named by ``$NOTIFY_SOCKET``
(``@`` at the start names an abstract socket). Socket activation: listening sockets handed over as
file descriptors 3, 4, ... when ``$LISTEN_PID`` is our pid and ``$LISTEN_FDS`` counts them.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time

LISTEN_FDS_START = 3
_ACTIVATION_VARIABLES = ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES")


def notify(*fields: str) -> bool:
    """Send ``fields`` (e.g. ``READY=1``) to the service manager; False when not run by one."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]
    with (
        contextlib.suppress(OSError),
        socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock,
    ):
        sock.connect(address)
        sock.sendall("\n".join(fields).encode())
        return True
    return False


def ready() -> bool:
    return notify("READY=1", f"MAINPID={os.getpid()}")


def reloading() -> bool:
    return notify(
        "RELOADING=1", f"MONOTONIC_USEC={time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000}"
    )


def stopping() -> bool:
    return notify("STOPPING=1")


def activated_sockets() -> list[socket.socket]:
    """The listening sockets systemd passed to this process (taken once: the variables go)."""
    try:
        if int(os.environ.get("LISTEN_PID", "0")) != os.getpid():
            return []
        count = int(os.environ.get("LISTEN_FDS", "0"))
    except ValueError:
        return []
    finally:
        for name in _ACTIVATION_VARIABLES:  # not for our children
            os.environ.pop(name, None)
    sockets = []
    for descriptor in range(LISTEN_FDS_START, LISTEN_FDS_START + count):
        os.set_inheritable(descriptor, False)
        sock = socket.socket(fileno=descriptor)
        sock.setblocking(False)
        sockets.append(sock)
    return sockets
