"""A loopback TCP proxy that injects network faults between one desktop and the upstream.

One proxy per replica, run in threads inside the campaign process and controlled by methods:

- ``cut()``: close every open connection and refuse new ones (the link is down);
- ``heal()``: accept connections again;
- ``drop_replies(p)``: with probability ``p``, when the server's answer to a client request
  arrives (server→client bytes after client→server bytes), close the client's connection
  without forwarding it: the transaction committed on the server but the reply is lost.

Only the "answer to a request" moments count for ``drop_replies``: the startup/auth exchange of
a fresh connection is forwarded as is (dropping it would only look like a cut) — replies become
droppable once the server has said ReadyForQuery (``Z`` message) the first time. A reply is "a new
answer" when the client sent bytes since the last server→client chunk; PostgreSQL flushes its
answer at ReadyForQuery/Sync, i.e. after the commit of an autocommit statement.
"""

from __future__ import annotations

import random
import select
import socket
import threading
from dataclasses import dataclass, field

_CHUNK = 65536
_READY = b"Z\x00\x00\x00\x05"  # ReadyForQuery: type 'Z', length 5 (then the status byte)


@dataclass
class ProxyStats:
    accepted: int = 0
    refused: int = 0
    cut_connections: int = 0
    dropped_replies: int = 0
    forwarded_replies: int = 0


@dataclass(eq=False)
class _Pair:
    client: socket.socket
    server: socket.socket
    ready: bool = False  # the server sent ReadyForQuery once: startup and authentication are over
    tail: bytes = b""
    awaiting_reply: bool = False
    closed: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)


class FaultProxy:
    """``127.0.0.1:<port>`` → ``upstream_host:upstream_port`` with cut/heal/drop-replies."""

    def __init__(self, upstream_port: int, *, upstream_host: str = "127.0.0.1", port: int = 0,
                 seed: int | None = None) -> None:  # fmt: skip
        self.upstream = (upstream_host, upstream_port)
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", port))
        self._listener.listen(64)
        self.port: int = self._listener.getsockname()[1]
        self._rng = random.Random(seed)
        self._rng_lock = threading.Lock()
        self._pairs: set[_Pair] = set()
        self._lock = threading.Lock()
        self._cut = False
        self._drop_p = 0.0
        self._stopping = False
        self.stats = ProxyStats()
        self._thread = threading.Thread(target=self._accept_loop, name=f"faultproxy-{self.port}", daemon=True)
        self._thread.start()

    # -- control ----------------------------------------------------------------------------
    @property
    def is_cut(self) -> bool:
        return self._cut

    def cut(self) -> None:
        """Close every open connection and refuse new ones until :meth:`heal`."""
        with self._lock:
            self._cut = True
            pairs = list(self._pairs)
        for pair in pairs:
            self._shutdown(pair)
            self.stats.cut_connections += 1

    def heal(self) -> None:
        with self._lock:
            self._cut = False

    def drop_replies(self, p: float) -> None:
        """From now on lose each server answer with probability ``p`` (0 turns it off)."""
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"probability must be within 0..1, not {p!r}")
        self._drop_p = p

    def dsn(self, base_dsn: str) -> str:
        """``base_dsn`` (libpq key=value form) pointed at this proxy."""
        parts = [kv for kv in base_dsn.split() if not kv.startswith(("host=", "port=", "hostaddr="))]
        return " ".join(["host=127.0.0.1", f"port={self.port}", *parts])

    def close(self) -> None:
        self._stopping = True
        self.cut()
        try:
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the thread blocked in accept()
        except OSError:
            pass
        try:
            self._listener.close()
        except OSError:
            pass
        self._thread.join(timeout=2)

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals ----------------------------------------------------------------------------
    def _accept_loop(self) -> None:
        while not self._stopping:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self._cut or self._stopping:
                self.stats.refused += 1
                _hard_close(client)
                continue
            try:
                server = socket.create_connection(self.upstream, timeout=5)
                server.settimeout(None)
            except OSError:
                self.stats.refused += 1
                _hard_close(client)
                continue
            for s in (client, server):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            pair = _Pair(client, server)
            with self._lock:
                if self._cut:
                    self.stats.refused += 1
                    _hard_close(client)
                    _hard_close(server)
                    continue
                self._pairs.add(pair)
            self.stats.accepted += 1
            threading.Thread(target=self._pump, args=(pair,), daemon=True, name=f"faultproxy-{self.port}-pair").start()

    def _pump(self, pair: _Pair) -> None:
        """One thread per connection: select over both sockets and copy bytes."""
        socks = [pair.client, pair.server]
        try:
            while not pair.closed:
                try:
                    ready, _, _ = select.select(socks, [], [], 0.5)
                except (OSError, ValueError):
                    break
                for s in ready:
                    try:
                        data = s.recv(_CHUNK)
                    except OSError:
                        data = b""
                    if not data:
                        raise _Closed
                    if s is pair.client:
                        pair.awaiting_reply = True
                        pair.server.sendall(data)
                        continue
                    if pair.ready and pair.awaiting_reply:
                        pair.awaiting_reply = False
                        if self._drop_p and self._roll() < self._drop_p:
                            self.stats.dropped_replies += 1
                            raise _Closed
                        self.stats.forwarded_replies += 1
                    elif not pair.ready:
                        seen = pair.tail + data
                        pair.ready = _READY in seen
                        pair.tail = seen[-8:]
                        pair.awaiting_reply = False
                    pair.client.sendall(data)
        except (_Closed, OSError):
            pass
        finally:
            self._shutdown(pair)
            for sock in socks:
                try:
                    sock.close()
                except OSError:
                    pass
            with self._lock:
                self._pairs.discard(pair)

    def _roll(self) -> float:
        with self._rng_lock:
            return self._rng.random()

    def _shutdown(self, pair: _Pair) -> None:
        """Shut both sockets down; the pair's pump thread wakes up and closes them."""
        with pair.lock:
            if pair.closed:
                return
            pair.closed = True
        for sock in (pair.client, pair.server):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class _Closed(Exception):
    pass


def _hard_close(s: socket.socket) -> None:
    try:
        s.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        s.close()
    except OSError:
        pass
