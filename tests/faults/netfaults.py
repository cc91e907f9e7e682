"""Network faults on loopback: a server that accepts and never answers, and a proxy that can freeze.

`HungServer` is what a wedged Redis or Postgres looks like from outside: the TCP handshake completes (the
kernel does it), then nothing ever comes back. `FreezableProxy` forwards to a real server until `freeze()`,
after which it forwards nothing (connections stay open, new ones are accepted): the dependency hangs
mid-run, with the application's pooled connections already open.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time


class HungServer:
    def __init__(self) -> None:
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(4096)
        self.port = self._sock.getsockname()[1]
        self._held: list[socket.socket] = []
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="hung-server", daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        self._sock.settimeout(0.2)
        while not self._closed.is_set():
            try:
                conn, _ = self._sock.accept()
            except (TimeoutError, OSError):
                continue
            self._held.append(conn)  # never read, never answered, never closed until the end

    @property
    def connections(self) -> int:
        return len(self._held)

    def close(self) -> None:
        self._closed.set()
        self._thread.join(timeout=2)
        for conn in self._held:
            with contextlib.suppress(OSError):
                conn.close()
        self._sock.close()

    def __enter__(self) -> HungServer:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


class FreezableProxy:
    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(4096)
        self.port = self._sock.getsockname()[1]
        self.frozen = threading.Event()
        self._closed = threading.Event()
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, name="proxy-accept", daemon=True).start()

    def freeze(self) -> None:
        self.frozen.set()

    def thaw(self) -> None:
        self.frozen.clear()

    def _accept(self) -> None:
        self._sock.settimeout(0.2)
        while not self._closed.is_set():
            try:
                client, _ = self._sock.accept()
            except (TimeoutError, OSError):
                continue
            self._sockets.append(client)
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        while self.frozen.is_set() and not self._closed.is_set():
            time.sleep(0.05)  # a new connection while frozen: accepted, never connected upstream
        try:
            upstream = socket.create_connection(self.upstream, timeout=5)
        except OSError:
            client.close()
            return
        self._sockets.append(upstream)
        for src, dst in ((client, upstream), (upstream, client)):
            threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):  # the proxy was closed under it
            self._forward(src, dst)
        for sock in (src, dst):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def _forward(self, src: socket.socket, dst: socket.socket) -> None:
        src.settimeout(0.1)
        while not self._closed.is_set():
            if self.frozen.is_set():
                time.sleep(0.05)
                continue
            try:
                data = src.recv(65536)
            except TimeoutError:
                continue
            if not data:
                return
            dst.sendall(data)

    def close(self) -> None:
        self._closed.set()
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.close()
        self._sock.close()

    def __enter__(self) -> FreezableProxy:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
