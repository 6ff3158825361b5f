"""A TCP proxy that adds a round-trip time, for `make bench` (the kernel here has no netem).

Every byte is delivered `one_way` seconds after the proxy read it, in both directions, and the
first bytes from the client not before accept + 3 × one_way: a client that sends right after
connect() (TLS does) sees exactly the timing of a link with RTT = 2 × one_way, the TCP handshake
included (connect would have returned after one RTT, the data then takes one way). Connections
accepted are counted (the TCP connections the IdP sees).
"""
from __future__ import annotations

import heapq
import socket
import threading
import time


class DelayProxy:
    def __init__(self, listen: tuple[str, int], upstream: tuple[str, int], one_way: float):
        self.upstream, self.one_way = upstream, one_way
        self.connections = 0
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(listen)
        self._sock.listen(128)
        self._sock.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def close(self) -> None:
        # The listening socket is closed by the accept thread, so the port is free on return.
        self._stop.set()
        self._thread.join()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._sock.accept()
            except OSError:
                continue
            if self._stop.is_set():
                client.close()
                break
            accepted = time.monotonic()
            self.connections += 1
            try:
                server = socket.create_connection(self.upstream)
            except OSError:
                client.close()
                continue
            for s in (client, server):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            Pipe(client, server, self.one_way, not_before=accepted + 3 * self.one_way)
            Pipe(server, client, self.one_way, not_before=0.0)
        self._sock.close()


class Pipe:
    """Reads from `source`, writes to `target` each chunk `delay` seconds later, in order."""

    def __init__(self, source: socket.socket, target: socket.socket, delay: float, not_before: float):
        self.source, self.target, self.delay, self.not_before = source, target, delay, not_before
        self.queue: list[tuple[float, int, bytes]] = []
        self.seq = 0
        self.cond = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._write, daemon=True).start()

    def _read(self) -> None:
        while True:
            try:
                data = self.source.recv(65536)
            except OSError:
                data = b""
            due = max(time.monotonic() + self.delay, self.not_before)
            with self.cond:
                heapq.heappush(self.queue, (due, self.seq, data))
                self.seq += 1
                self.cond.notify()
            if not data:
                return

    def _write(self) -> None:
        while True:
            with self.cond:
                while not self.queue:
                    self.cond.wait()
                due, _, data = self.queue[0]
            wait = due - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            with self.cond:
                heapq.heappop(self.queue)
            try:
                if data:
                    self.target.sendall(data)
                else:
                    self.target.shutdown(socket.SHUT_WR)
                    return
            except OSError:
                return
