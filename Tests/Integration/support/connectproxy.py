"""A small HTTP CONNECT proxy for the proxy tests, loopback only and bounded.

    proxy = ConnectProxy({("127.0.0.1", 8443): ("127.0.0.2", 8443)})
    ... config: proxy = http://127.0.0.1:{proxy.port} ...
    proxy.tunnels      # ["127.0.0.1:8443", ...]: every CONNECT it carried
    proxy.refused      # CONNECT targets it had no route for (answered 403)
    proxy.close()

It listens on 127.0.0.1 and carries only the CONNECT targets in its route table, to the
upstream address the table names (which must be a loopback address): it never resolves a name
and never connects anywhere else. A proxy with an empty table refuses everything and only
records what it was asked for (the "caller's own proxy" of the tests). Bounded: at most
MAX_CONNECTIONS at a time, a request head of at most 8 KiB read within HEAD_TIMEOUT seconds,
tunnels closed after IDLE_TIMEOUT seconds without traffic.
"""
from __future__ import annotations

import ipaddress
import select
import socket
import threading

MAX_CONNECTIONS = 32
HEAD_LIMIT = 8192
HEAD_TIMEOUT = 5.0
IDLE_TIMEOUT = 30.0


class ConnectProxy:
    def __init__(self, routes: dict[tuple[str, int], tuple[str, int]] | None = None):
        self.routes = dict(routes or {})
        for host, _ in self.routes.values():
            if not ipaddress.ip_address(host).is_loopback:
                raise ValueError(f"upstream {host} is not a loopback address")
        self.tunnels: list[str] = []
        self.refused: list[str] = []
        self._lock = threading.Lock()
        self._active = 0
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        self._sock.settimeout(0.2)
        self.port = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, name=f"connect-proxy-{self.port}", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def __enter__(self) -> "ConnectProxy":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def mark(self) -> tuple[int, int]:
        with self._lock:
            return len(self.tunnels), len(self.refused)

    def since(self, mark: tuple[int, int]) -> tuple[list[str], list[str]]:
        """(tunnels, refused) since mark()."""
        with self._lock:
            return self.tunnels[mark[0]:], self.refused[mark[1]:]

    # ------------------------------------------------------------------------------------

    def _accept(self) -> None:
        try:
            while not self._stop.is_set():
                try:
                    client, _ = self._sock.accept()
                except OSError:
                    continue
                with self._lock:
                    full = self._active >= MAX_CONNECTIONS
                    if not full:
                        self._active += 1
                if full:
                    client.close()
                    continue
                threading.Thread(target=self._serve, args=(client,), daemon=True).start()
        finally:
            self._sock.close()

    def _serve(self, client: socket.socket) -> None:
        upstream = None
        try:
            client.settimeout(HEAD_TIMEOUT)
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = client.recv(1024)
                if not chunk:
                    return
                head += chunk
                if len(head) > HEAD_LIMIT:
                    client.sendall(b"HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\n\r\n")
                    return
            head, _, early = head.partition(b"\r\n\r\n")
            parts = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ")
            if len(parts) != 3 or parts[0] != "CONNECT":
                client.sendall(b"HTTP/1.1 405 Method Not Allowed\r\nConnection: close\r\n\r\n")
                return
            target = parts[1]
            host, _, port = target.rpartition(":")
            route = self.routes.get((host.strip("[]"), int(port))) if port.isdigit() else None
            if route is None:
                with self._lock:
                    self.refused.append(target)
                client.sendall(b"HTTP/1.1 403 Forbidden\r\nConnection: close\r\n\r\n")
                return
            upstream = socket.create_connection(route, timeout=HEAD_TIMEOUT)
            with self._lock:
                self.tunnels.append(target)
            client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            if early:
                upstream.sendall(early)
            self._relay(client, upstream)
        except OSError:
            pass
        finally:
            for s in (client, upstream):
                if s is not None:
                    s.close()
            with self._lock:
                self._active -= 1

    def _relay(self, a: socket.socket, b: socket.socket) -> None:
        peers = {a: b, b: a}
        open_ = {a, b}
        while open_ and not self._stop.is_set():
            ready, _, _ = select.select(list(open_), [], [], IDLE_TIMEOUT)
            if not ready:
                return  # idle
            for s in ready:
                data = s.recv(65536)
                if not data:
                    open_.discard(s)
                    try:
                        peers[s].shutdown(socket.SHUT_WR)
                    except OSError:
                        pass
                    continue
                peers[s].sendall(data)
