"""Serving: resolve dev-mode credentials, bind the TLS socket, stop cleanly on SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import errno
import gc
import os
import signal
import socket
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from aiohttp import web

from tcwebhook.config import ServerLimits, Settings
from tcwebhook.datadir import METRICS_DIR
from tcwebhook.delivery.routing import task_router
from tcwebhook.delivery.worker import DeliveryListener, DeliveryWorker
from tcwebhook.errors import ConfigError
from tcwebhook.metrics import (
    Metrics,
    counting_deliveries,
    create_metrics_app,
    scrape_registry,
    use_multiprocess,
    worker_stopped,
)
from tcwebhook.reconcile import ReportListener, reconcile_timer
from tcwebhook.server import errorlog, systemd, tlsproto
from tcwebhook.server.app import RequestLogger, create_app
from tcwebhook.server.guard import GuardedSite
from tcwebhook.server.plan import ServePlan
from tcwebhook.server.reload import Reloader
from tcwebhook.server.tls import server_context
from tcwebhook.store import Store, open_store

SHUTDOWN_TIMEOUT = 10.0
TLS_READ_BUFFER = 64 * 1024
GC_THRESHOLD = (20_000, 20, 20)

# Another listener started beside the receiver (the inspector): given the settings, the store
# and the receiver's bound port, it starts and returns the coroutine function that stops it.
ExtraListener = Callable[[Settings, Store, int], Awaitable[Callable[[], Awaitable[None]]]]


async def serve(
    serve_plan: ServePlan,
    *,
    request_logger: RequestLogger | None = None,
    delivery_listener: DeliveryListener | None = None,
    on_ready: Callable[[int], None] | None = None,
    on_stopping: Callable[[], None] | None = None,
    store: Store | None = None,
    sock: socket.socket | None = None,
    deliver: bool = True,
    metrics: Metrics | None = None,
    on_reload: Callable[[], None] | None = None,
    reconcile_listener: ReportListener | None = None,
    extra_listeners: Sequence[ExtraListener] = (),
) -> None:
    """Serve until SIGINT/SIGTERM; then stop accepting, finish in-flight work, close the store.

    ``sock``: an already bound listening socket (one of ``serve_processes``' workers);
    ``deliver``: run the delivery worker (and the reconcile timer, if set) in this process.
    """
    settings = serve_plan.settings
    store = store or open_store(settings.store_url)
    if sock is not None:
        store.coordinate_writers()
    if metrics is None and settings.metrics.listen:
        metrics = Metrics().activate()
    if metrics is not None:
        store.commit_observer = metrics.observe_commit
        delivery_listener = counting_deliveries(metrics, delivery_listener)
    worker = DeliveryWorker(store, settings, delivery_listener)
    app = create_app(
        settings,
        store,
        request_logger=request_logger,
        task_router=task_router(settings),
        on_tasks_stored=worker.wake if deliver else None,
        metrics=metrics,
    )
    limits = settings.server.limits
    runner = web.AppRunner(
        app,
        access_log=None,
        handle_signals=False,
        shutdown_timeout=SHUTDOWN_TIMEOUT,
        keepalive_timeout=limits.idle_timeout,
    )
    await runner.setup()
    certificates = serve_plan.certificates
    ssl_context = server_context(certificates) if certificates is not None else None
    failures = errorlog.FailureLog()
    errorlog.install(failures)
    unix_socket = settings.server.unix_socket
    site = GuardedSite(
        runner,
        ssl_context,
        limits,
        failures,
        host=settings.server.host,
        port=settings.server.port,
        sock=sock,
        path=str(unix_socket) if unix_socket is not None and sock is None else None,
    )
    try:
        await site.start()
    except (OSError, UnicodeError) as exc:
        await runner.cleanup()
        store.close()
        raise listen_error(settings.server.host, settings.server.port, exc) from None
    reloader = Reloader(serve_plan, app, ssl_context, on_reload)
    metrics_runner = None
    metrics_address = settings.metrics.address
    if metrics is not None and metrics_address is not None and deliver:
        try:
            metrics_runner = await _start_metrics(
                metrics, store, metrics_address, lambda: _certificate(reloader.plan), failures
            )
        except ConfigError:
            await runner.cleanup()
            store.close()
            raise
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    loop.add_signal_handler(signal.SIGHUP, reloader.request)
    delivering = asyncio.create_task(worker.run() if deliver else asyncio.sleep(0))
    reconciling = asyncio.create_task(
        reconcile_timer(settings, store, stop, reconcile_listener, worker.wake)
        if deliver
        else asyncio.sleep(0)
    )
    port = bound_port(site) or settings.server.port
    stop_listeners = [await start(settings, store, port) for start in extra_listeners]
    # A forked worker (given a socket, not delivering) stops when its parent is gone.
    orphan = sock is not None and not deliver
    orphan_watch = asyncio.create_task(_stop_when_orphaned(stop)) if orphan else None
    if on_ready is not None:
        on_ready(port)
    if deliver:
        systemd.ready()
    try:
        await stop.wait()
        if on_stopping is not None:
            on_stopping()
    finally:
        if deliver:
            systemd.stopping()
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            loop.remove_signal_handler(signum)
        await reloader.wait()
        for stop_listener in stop_listeners:
            await stop_listener()
        if orphan_watch is not None:
            orphan_watch.cancel()
        await runner.cleanup()  # stops accepting, waits for in-flight requests
        if metrics_runner is not None:
            await metrics_runner.cleanup()
        reconciling.cancel()  # what a run stored is stored; its cursor waits for the next run
        with contextlib.suppress(asyncio.CancelledError):
            await reconciling
        worker.stop()  # deliveries under way finish; the rest wait in the outbox
        await delivering
        store.close()
        failures.flush()


async def _start_metrics(
    metrics: Metrics,
    store: Store,
    address: tuple[str, int],
    certificate: Callable[[], Path | None],
    failures: errorlog.FailureLog,
) -> web.AppRunner:
    """Serve ``/metrics`` on ``address`` (plain HTTP, for a local scraper), under the same
    guard as the other listeners: capped, timed out, within the shared file budget."""
    app = create_metrics_app(scrape_registry(metrics, store, certificate))
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=2.0)
    await runner.setup()
    site = GuardedSite(
        runner, None, ServerLimits(), failures, host=address[0], port=address[1], role="metrics"
    )
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        raise ConfigError(
            f"cannot listen for metrics on {address[0]}:{address[1]}: {exc.strerror}; "
            "choose another metrics.listen"
        ) from None
    return runner


def tune_process() -> None:
    """Process-wide settings for a long-running receiver; call once, after imports."""
    # A webhook body parses into hundreds of containers, so with the default generation-0
    # threshold (700) the cyclic collector ran every few requests; freezing moves everything
    # loaded at start-up out of its reach. Garbage without cycles is still freed at once.
    # docs/performance-notes.md#2-the-garbage-collector-frozen-after-start-up
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLD)
    # docs/performance-notes.md#4-a-smaller-tls-read-buffer
    tlsproto.limit_read_buffer(TLS_READ_BUFFER)


def serve_processes(
    serve_plan: ServePlan,
    workers: int,
    *,
    request_logger: RequestLogger | None = None,
    delivery_listener: DeliveryListener | None = None,
    on_ready: Callable[[int], None] | None = None,
    inherited: socket.socket | None = None,
    reconcile_listener: ReportListener | None = None,
    extra_listeners: Sequence[ExtraListener] = (),
    on_stopping: Callable[[], None] | None = None,
) -> None:
    """``serve`` in ``workers`` processes sharing one port (SO_REUSEPORT) and one store.

    The kernel spreads connections over the processes; each has its own event loop and store
    writer, and a file lock hands the SQLite write lock from one writer to the next without
    SQLite's sleeping busy handler. Only this process delivers (the others' tasks are found by
    its poll). Call before any thread or event loop exists: the workers are forked.
    Measured in docs/performance-notes.md#9-serve---workers.
    """
    settings = serve_plan.settings
    open_store(settings.store_url).close()  # create and migrate once, before the workers race
    metrics = None
    if settings.metrics.listen:
        use_multiprocess(settings.data_dir / METRICS_DIR)  # every worker counts, one scrape sums
        metrics = Metrics().activate()
    if inherited is not None:  # socket activation: every worker accepts on the same socket
        sockets = [inherited, *(inherited.dup() for _ in range(workers - 1))]
    else:
        sockets = bind_sockets(settings.server.host, settings.server.port, workers)
    children = []
    for sock in sockets[1:]:
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:  # a worker: serve until signalled, never return into the caller
            code = 0
            try:
                _die_with_parent(parent)
                asyncio.run(
                    serve(
                        serve_plan,
                        request_logger=request_logger,
                        sock=sock,
                        deliver=False,
                        metrics=metrics,
                    )
                )
            except BaseException as exc:  # a worker only reports, in one line
                if not isinstance(exc, KeyboardInterrupt):
                    os.write(2, f"tcwebhook worker {os.getpid()} stopped: {exc}\n".encode())
                    code = 1
            finally:
                os._exit(code)
        children.append(pid)
    for sock in sockets[1:]:
        sock.close()
    try:
        asyncio.run(
            serve(
                serve_plan,
                request_logger=request_logger,
                delivery_listener=delivery_listener,
                on_ready=on_ready,
                on_stopping=on_stopping,
                sock=sockets[0],
                metrics=metrics,
                on_reload=lambda: _signal_all(children, signal.SIGHUP),
                reconcile_listener=reconcile_listener,
                extra_listeners=extra_listeners,
            )
        )
    finally:
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        for pid in children:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
            worker_stopped(pid)


def _certificate(serve_plan: ServePlan) -> Path | None:
    return serve_plan.certificates.cert if serve_plan.certificates is not None else None


def _signal_all(pids: list[int], signum: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)


def bind_sockets(host: str, port: int, count: int) -> list[socket.socket]:
    """``count`` listening sockets on one port with SO_REUSEPORT (port 0: the first's port)."""
    sockets: list[socket.socket] = []
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        # Bind once without SO_REUSEPORT first: another server on the port (even another
        # ``serve --workers``) makes this fail, instead of silently sharing the port with us.
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(address)
            address = probe.getsockname()
        for _ in range(count):
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind(address)
            sock.listen(1024)
            sock.setblocking(False)
            address = sock.getsockname()  # port 0 resolved: the others join the same port
    except (OSError, UnicodeError) as exc:
        for sock in sockets:
            sock.close()
        raise listen_error(host, port, exc) from None
    return sockets


def bound_port(site: web.BaseSite) -> int | None:
    server = site._server  # aiohttp exposes no public accessor for the bound socket
    sockets = getattr(server, "sockets", None) or []
    name = sockets[0].getsockname() if sockets else None
    return int(name[1]) if isinstance(name, tuple) else None  # a Unix socket has no port


def listen_error(host: str, port: int, exc: OSError | UnicodeError) -> ConfigError:
    """One line for a failed bind that blames the right flag."""
    where = f"cannot listen on {host}:{port}"
    if isinstance(exc, socket.gaierror | UnicodeError):  # the IDNA codec refuses bad names
        reason = exc.strerror if isinstance(exc, socket.gaierror) else "not a valid host name"
        return ConfigError(
            f"{where}: --host {host} is not an address or a name this machine can resolve "
            f"({reason}); use an IP address such as 127.0.0.1 or 0.0.0.0"
        )
    if exc.errno == errno.EADDRNOTAVAIL:
        return ConfigError(
            f"{where}: {host} is not an address of this machine; use 127.0.0.1, 0.0.0.0 "
            "or one of its own addresses as --host"
        )
    if exc.errno == errno.EACCES:
        return ConfigError(
            f"{where}: permission denied; ports below 1024 need privileges, choose another --port"
        )
    return ConfigError(
        f"{where}: {exc.strerror or exc}; choose another --port or stop the program using it"
    )


# ----------------------------------------------------------------------------------------------
# Workers die with their parent: a worker left behind after ``kill -9`` of the parent keeps the
# listening socket, so new connections hang and a restart finds the port in use.

_PR_SET_PDEATHSIG = 1
ORPHAN_POLL = 1.0


def _die_with_parent(parent: int) -> None:
    """In a forked worker: get SIGTERM when the parent dies (Linux); else the poll below."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != parent:  # the parent died before the line above took effect
        os._exit(0)


async def _stop_when_orphaned(stop: asyncio.Event) -> None:
    """Where PR_SET_PDEATHSIG is missing: notice that the parent is gone (we were re-parented)."""
    parent = os.getppid()
    while os.getppid() == parent:
        await asyncio.sleep(ORPHAN_POLL)
    stop.set()
