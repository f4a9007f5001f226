"""A TCP proxy for fault tests: pass, blackhole or reset the link to a server.

``TcpProxy(host, port)`` listens on a free local port and forwards every connection to
``host:port``. :meth:`TcpProxy.blackhole` stops moving bytes in both directions: what
either side sends stays in flight (unread socket buffers), connections stay open and new
ones get no answer — a partitioned link, as a process behind it sees it (or only the
server's answers are lost). :meth:`heal`
lets the bytes flow again (what the server said or closed meanwhile reaches the client),
and :meth:`reset` ends every connection with a TCP RST. Threads and sockets only.
"""

from __future__ import annotations

import contextlib
import select
import socket
import struct
import threading

from kith_dev.infra.processes import free_port

POLL_S = 0.1
CHUNK = 65536


class TcpProxy:
    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.port = free_port()
        self._up = threading.Event()  # client → server bytes move
        self._down = threading.Event()  # server → client bytes move
        self._up.set()
        self._down.set()
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._listener = socket.create_server(("127.0.0.1", self.port))
        self._listener.settimeout(POLL_S)
        threading.Thread(target=self._accept, name="tcp-proxy-accept", daemon=True).start()

    def blackhole(self, replies_only: bool = False) -> None:
        """Nothing moves either way (``replies_only``: requests still reach the server, its
        answers are lost on the way back) until :meth:`heal`; connections stay open."""
        self._down.clear()
        if not replies_only:
            self._up.clear()

    def heal(self) -> None:
        self._up.set()
        self._down.set()

    def reset(self) -> None:
        """End every open connection with a TCP RST (the link stays up for new ones)."""
        with self._lock:
            doomed, self._sockets = self._sockets, []
        for sock in doomed:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                sock.close()

    def close(self) -> None:
        self._closed.set()
        self.heal()
        self.reset()
        self._listener.close()

    def __enter__(self) -> TcpProxy:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets += [client, upstream]
            for source, sink, flowing in ((client, upstream, self._up),
                                          (upstream, client, self._down)):
                threading.Thread(target=self._pump, args=(source, sink, flowing), daemon=True,
                                 name="tcp-proxy-pump").start()

    def _pump(self, source: socket.socket, sink: socket.socket,
              flowing: threading.Event) -> None:
        try:
            while not self._closed.is_set():
                if not flowing.wait(POLL_S):
                    continue  # blackholed: leave the bytes where they are
                readable, _, _ = select.select([source], [], [], POLL_S)
                if not readable or not flowing.is_set():
                    continue
                data = source.recv(CHUNK)
                if not data:
                    sink.shutdown(socket.SHUT_WR)
                    return
                sink.sendall(data)
        except (OSError, ValueError):
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.close()
