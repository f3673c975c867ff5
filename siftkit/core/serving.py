"""The one serving layer for siftkit's HTTP servers (``siftkit serve llm``, ``siftkit serve retrieval``).

* :func:`is_loopback` — is an address this machine only (127.0.0.0/8, ``::1``, ``localhost``)?
* :func:`check_api_key` and :func:`check_bind` — a blank key is refused; a public address needs a key. Both raise
  :class:`~siftkit.core.errors.InputError`, so the CLI prints one ``siftkit:`` line and exits 2, before any model
  or index loads.
* :func:`key_matches` — the one API-key check: ``Authorization: Bearer <key>`` (or ``X-API-Key: <key>`` where a
  server allows it), compared in constant time; :class:`RequireKey` applies it as ASGI middleware, *before* the
  body is read or parsed, so a caller without the key learns nothing about the body schema.
* :func:`run_server` — uvicorn in this process until SIGINT/SIGTERM; a request still running ``grace_s`` seconds
  after the signal is abandoned, so a long model call cannot hold the process.
* :class:`BackgroundServer` / :func:`start_background` — the same app in a daemon thread on a free port, ready when
  the call returns; for tests, benchmarks and notebooks.

Example:
    >>> check_bind("0.0.0.0", None)  # doctest: +SKIP
    siftkit: --host: '0.0.0.0' is not loopback: refusing to serve without an API key ...
    >>> with BackgroundServer(app) as srv:  # doctest: +SKIP
    ...     httpx.get(srv.url + "/health")
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import socket
import threading
import time
from collections.abc import Callable
from typing import Any, Self

from .errors import InputError
from .validate import cut

GRACE_S = 3.0  # [ours] seconds a running request may finish after SIGTERM before it is abandoned


# ---------------------------------------------------------------------------------------------- bind policy
def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback IPs (IPv4 127.0.0.0/8, IPv6 ``::1``, also bracketed ``[::1]``).

    ``0.0.0.0``, ``::``, private addresses and every other host name are not loopback.

    Example:
        >>> [is_loopback(h) for h in ("127.0.0.1", "127.8.9.10", "::1", "[::1]", "localhost", "0.0.0.0", "::")]
        [True, True, True, True, True, False, False]
    """
    host = host.strip()
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_api_key(api_key: str | None, field: str = "--api-key") -> str | None:
    """``api_key`` unchanged, or None for no key; an empty or whitespace-only key is refused (InputError).

    A blank key would look like protection but let anyone in who sends ``Authorization: Bearer``.
    """
    if api_key is not None and not api_key.strip():
        raise InputError(f"the API key is blank ({cut(api_key, 20)}): give a real key or none", field=field)
    return api_key


def check_bind(host: str, api_key: str | None, field: str = "--host") -> None:
    """Refuse to serve beyond this machine without an API key (InputError, before anything binds or loads).

    Args:
        host: the bind address.
        api_key: the key clients must send, or None; a blank key is refused whatever the host.
        field: the option named in the error.
    """
    check_api_key(api_key)
    if not is_loopback(host) and api_key is None:
        raise InputError(f"{cut(host)} is not loopback: refusing to serve without an API key (set one, or bind "
                         "127.0.0.1)", field=field)


# ---------------------------------------------------------------------------------------------- the key check
def _digest(s: str) -> bytes:
    return hashlib.sha256(s.encode("utf-8", "surrogateescape")).digest()


def key_matches(headers: dict[str, str], api_key: str | None, x_api_key: bool = False) -> bool:
    """True when the request carries ``api_key`` (always True when the server has no key).

    Args:
        headers: request headers with lower-case names.
        api_key: the server's key, or None.
        x_api_key: also accept ``X-API-Key: <key>`` (the retrieval server does, for Search-R1 clients).

    The comparison is constant-time over SHA-256 digests, so neither the key's content nor its length leaks
    through response timing.
    """
    if api_key is None:
        return True
    auth = headers.get("authorization", "")
    given = auth[7:] if auth[:7].lower() == "bearer " else (headers.get("x-api-key", "") if x_api_key else "")
    return bool(given) and hmac.compare_digest(_digest(given), _digest(api_key))


class RequireKey:
    """ASGI middleware: requests under ``prefixes`` without the key get ``reject()`` before the body is read.

    Args:
        app: the wrapped ASGI app.
        api_key: the key (None: every request passes).
        reject: builds the 401 response (an ASGI app), so each server keeps its own error shape.
        prefixes: paths that need the key; others (e.g. ``/health``) stay open.
        x_api_key: accept ``X-API-Key`` too.
    """

    def __init__(self, app, api_key: str | None, reject: Callable[[], Any], prefixes: tuple[str, ...] = ("/",),
                 x_api_key: bool = False):
        self.app, self.api_key, self.reject = app, check_api_key(api_key), reject
        self.prefixes, self.x_api_key = prefixes, x_api_key

    async def __call__(self, scope, receive, send):
        if (scope["type"] == "http" and self.api_key is not None and scope["path"].startswith(self.prefixes)):
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers") or []}
            if not key_matches(headers, self.api_key, self.x_api_key):
                return await self.reject()(scope, receive, send)
        return await self.app(scope, receive, send)


# ---------------------------------------------------------------------------------------------- running a server
def run_server(app, host: str, port: int, log_level: str = "info", grace_s: float = GRACE_S) -> None:
    """Serve ``app`` with uvicorn in this process until SIGINT or SIGTERM.

    On the signal the server stops accepting connections, lets running requests finish for ``grace_s`` seconds,
    then cancels them [ours: uvicorn's default waits for ever, so one long model call kept a stopped server up].
    Handlers that run model calls in threads must abandon them on cancellation (``abandon_on_cancel=True``).
    """
    import uvicorn

    uvicorn.run(app, host=host, port=port, log_level=log_level, timeout_graceful_shutdown=grace_s)


class BackgroundServer:
    """An ASGI app served by uvicorn from a daemon thread; ready when :meth:`start` returns.

    Port 0 (the default) takes a free port: the socket is bound here first and handed to uvicorn, so no other
    process can take the port in between.

    Args:
        app: the ASGI app.
        host: bind address (loopback by default; IPv6 such as ``::1`` works).
        port: TCP port, 0 for a free one.
        timeout: seconds to wait for the server to start, and for it to stop.

    Example:
        >>> with BackgroundServer(create_app(bm25)) as srv:  # doctest: +SKIP
        ...     httpx.post(srv.url + "/retrieve", json={"queries": ["q"]})
    """

    def __init__(self, app, host: str = "127.0.0.1", port: int = 0, timeout: float = 30.0):
        self.app, self.host, self.port, self.timeout = app, host, port, timeout
        self.server = None
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> Self:
        import uvicorn

        # proto IPPROTO_TCP (not 0): asyncio only sets TCP_NODELAY on such sockets; without it every response
        # waits ~40 ms for a delayed ACK
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host.strip("[]"), self.port))
        self._sock, self.port = sock, sock.getsockname()[1]
        self.server = uvicorn.Server(uvicorn.Config(self.app, log_level="warning", lifespan="off",
                                                    timeout_graceful_shutdown=1))
        self._thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]}, daemon=True,
                                        name=f"siftkit-server:{self.port}")
        self._thread.start()
        deadline = time.monotonic() + self.timeout
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                sock.close()
                raise RuntimeError(f"background server on {self.host}:{self.port} did not start")
            time.sleep(0.01)
        return self

    @property
    def url(self) -> str:
        """Base URL such as ``http://127.0.0.1:54321`` (IPv6 hosts in brackets)."""
        host = self.host.strip("[]")
        return f"http://{'[' + host + ']' if ':' in host else host}:{self.port}"

    def stop(self) -> None:
        """Shut the server down and wait (at most ``timeout`` seconds) for its thread."""
        if self.server is not None:
            self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(self.timeout)
        if self._sock is not None:
            self._sock.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def start_background(app, host: str = "127.0.0.1", timeout: float = 20.0) -> tuple[str, Callable[[], None]]:
    """:class:`BackgroundServer` as a pair ``(url, stop)``, for callers that do not use ``with``."""
    srv = BackgroundServer(app, host=host, timeout=timeout).start()
    return srv.url, srv.stop
