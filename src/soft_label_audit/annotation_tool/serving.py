"""``serve --workers N``: N server processes sharing one listening socket (POSIX only).

One Python process serves votes on one core at most (the GIL), whatever its thread count;
a campaign on a machine with more cores runs several. The parent binds the socket, forks
the workers, and from then on only supervises: each worker opens its own database engine
and runs waitress on the inherited socket, so the kernel spreads connections over them.
On SQLite the workers' writers take turns through :class:`.db._FileWriteLock`; on
PostgreSQL the database orders them. Token, settings and image caches are per process and
stay correct: a revocation is re-checked in every write transaction, settings are re-read
within ``store.SETTINGS_TTL_S``.

* SIGTERM or SIGINT to the parent stops the workers (SIGTERM each, then waits) and exits.
* A worker that dies is started again, unless it dies within :data:`MIN_UPTIME_S` of its
  start (a configuration or database error): then every worker is stopped and the parent
  exits with an error, rather than restart in a loop.
* On Linux each worker asks the kernel for SIGKILL when the parent dies, so a ``kill -9``
  of the parent takes the whole server down (no orphan keeps answering on the port).
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import sys
import time
from collections.abc import Callable

#: a worker that ends sooner than this after its start is a failure, not a crash to mend
MIN_UPTIME_S = 2.0
_PR_SET_PDEATHSIG = 1


class WorkerFailed(RuntimeError):
    """A worker ended right after its start; the message says how."""


def bind(host: str, port: int, backlog: int = 1024) -> socket.socket:
    """A listening TCP socket on ``host`` (a name, IPv4 or IPv6 address) and ``port``."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host.strip("[]"), port, type=socket.SOCK_STREAM
    )[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(address)
    sock.listen(backlog)
    sock.setblocking(False)
    return sock


def _die_with_parent(parent: int) -> None:
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)


def _start(run_worker: Callable[[int], None], index: int) -> int:
    parent = os.getpid()
    pid = os.fork()
    if pid:
        return pid
    code = 0
    try:  # the child: never return into the parent's code
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl+C reaches the parent, which stops us
        _die_with_parent(parent)
        run_worker(index)
    except BaseException as exc:  # noqa: BLE001 - reported, then the process ends
        print(f"worker {index}: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        code = 1
    finally:
        os._exit(code)


def _describe(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"killed by signal {os.WTERMSIG(status)}"
    return f"exited with status {os.waitstatus_to_exitcode(status)}"


class _Stop(Exception):
    pass


def _raise_stop(_signum, _frame) -> None:
    raise _Stop


def supervise(
    run_worker: Callable[[int], None], n_workers: int, log: Callable[[str], None]
) -> None:
    """Fork ``n_workers`` processes running ``run_worker(index)`` and keep them running until
    SIGTERM/SIGINT; raises :class:`WorkerFailed` when one ends right after its start."""
    previous = {sig: signal.signal(sig, _raise_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    workers: dict[int, tuple[int, float]] = {}  # pid -> (index, started at)
    failure = None
    try:
        for index in range(n_workers):
            workers[_start(run_worker, index)] = (index, time.monotonic())
        while failure is None:
            pid, status = os.waitpid(-1, 0)  # a signal raises _Stop out of the wait
            if pid not in workers:
                continue
            index, started = workers.pop(pid)
            if time.monotonic() - started < MIN_UPTIME_S:
                failure = f"worker {index} {_describe(status)} right after its start"
            else:
                log(f"worker {index} {_describe(status)}; starting it again")
                workers[_start(run_worker, index)] = (index, time.monotonic())
    except (_Stop, ChildProcessError):
        pass
    finally:
        for sig in previous:  # a second Ctrl+C must not interrupt the shutdown
            signal.signal(sig, signal.SIG_IGN)
        for pid in workers:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for pid in workers:
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if failure is not None:
        raise WorkerFailed(failure)
