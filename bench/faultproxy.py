"""A TCP proxy for any database protocol that breaks the network the way hospitals' networks break it.

    with FaultProxy(("127.0.0.1", 5432)) as proxy:   # listens on 127.0.0.1:<proxy.port>
        proxy.cut()            # reset every connection now (RST), new ones are accepted at once
        proxy.refuse()         # the server is "down": new connections refused (ECONNREFUSED), live ones reset
        proxy.accept()         # back, on the same port
        proxy.half_open()      # every live connection goes silent: nothing is forwarded either way and nothing
                               # is closed (a NAT or firewall that forgot the connection); new ones work

A half-open connection is the hard case: the client's kernel sees its bytes acknowledged (by the proxy) and
its keepalives answered, so only an answer the application waits for with its own deadline reveals it. Held
connections stay open until `cut`, `refuse` or `stop`.

Protocol-agnostic (it never looks at the bytes, never logs or keeps them: they can hold patient data). One
thread serves every connection; fault calls are carried out by that thread and return once they took effect.
The bench (bench/faults.py) and the follow tests (tests/follow/test_follow_faults.py) use it; the MySQL-aware
proxy of the fault suite (tests/faults/proxy.py) counts and matches queries, this one does not need to.
"""
from __future__ import annotations

import queue
import selectors
import socket
import struct
import threading
import time
from dataclasses import dataclass

_SELECT_SECONDS = 0.2


@dataclass(eq=False)
class _Link:
    client: socket.socket
    server: socket.socket
    held: bool = False  # half-open: no longer forwarded, never closed


def _reset(sock: socket.socket) -> None:
    """Close with RST (SO_LINGER 0), as a crashed peer or a firewall's reject looks to the other side."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    sock.close()


class FaultProxy:
    def __init__(self, upstream: tuple[str, int], *, port: int = 0, max_lifetime: float | None = None):
        self.upstream = upstream
        self.port = port
        self.max_lifetime = max_lifetime  # a forgotten proxy (a failed test) stops itself after this long
        self._sel = selectors.DefaultSelector()
        self._links: list[_Link] = []
        self._listener: socket.socket | None = None
        self._commands: queue.Queue = queue.Queue()
        self._wake_r, self._wake_w = socket.socketpair()
        self._thread: threading.Thread | None = None
        self._stopped = threading.Event()
        # what happened, for tests and the bench to check that a fault really hit something
        self.connections = 0  # accepted and connected upstream
        self.resets = 0  # connections reset by cut/refuse
        self.held = 0  # connections made half-open

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> "FaultProxy":
        self._sel.register(self._wake_r, selectors.EVENT_READ, ("wake", None))
        self._listen()
        self._thread = threading.Thread(target=self._loop, name=f"fault-proxy-{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            self._do("stop")
            self._thread.join(10)

    def __enter__(self) -> "FaultProxy":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ------------------------------------------------------------------ faults (run by the proxy's thread)

    def cut(self) -> int:
        """Reset every connection (held ones too); new connections are accepted. Returns how many were reset."""
        return self._do("cut")

    def refuse(self) -> int:
        """Stop listening (new connections: ECONNREFUSED) and reset every connection."""
        return self._do("refuse")

    def accept(self) -> None:
        """Listen again on the same port."""
        self._do("accept")

    def half_open(self) -> int:
        """Every live connection goes silent for good (see the module doc). Returns how many."""
        return self._do("half_open")

    @property
    def live(self) -> int:
        """Connections currently forwarded (not held)."""
        return self._do("count")

    def _do(self, command: str):
        if self._stopped.is_set():
            raise RuntimeError("the fault proxy is stopped")
        done: queue.Queue = queue.Queue(maxsize=1)
        self._commands.put((command, done))
        self._wake_w.send(b"x")
        result = done.get(timeout=10)
        if isinstance(result, Exception):
            raise result
        return result

    # ------------------------------------------------------------------ the proxy's thread

    def _listen(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        for _ in range(100):  # the same port right after a close can briefly be busy
            try:
                sock.bind(("127.0.0.1", self.port))
                break
            except OSError:
                time.sleep(0.05)
        else:
            sock.close()
            raise RuntimeError(f"fault proxy could not bind port {self.port}")
        sock.listen(128)
        sock.setblocking(False)
        self.port = sock.getsockname()[1]
        self._listener = sock
        self._sel.register(sock, selectors.EVENT_READ, ("listen", None))

    def _unlisten(self) -> None:
        if self._listener is not None:
            self._sel.unregister(self._listener)
            self._listener.close()
            self._listener = None

    def _close(self, link: _Link, reset: bool) -> None:
        if link in self._links:
            self._links.remove(link)
        for sock in (link.client, link.server):
            if not link.held:
                try:
                    self._sel.unregister(sock)
                except (KeyError, ValueError):
                    pass
            _reset(sock) if reset else sock.close()

    def _cut_all(self) -> int:
        links = list(self._links)
        for link in links:
            self._close(link, reset=True)
        self.resets += len(links)
        return len(links)

    def _run_command(self, command: str):
        if command == "cut":
            return self._cut_all()
        if command == "refuse":
            self._unlisten()
            return self._cut_all()
        if command == "accept":
            if self._listener is None:
                self._listen()
            return None
        if command == "half_open":
            live = [link for link in self._links if not link.held]
            for link in live:
                for sock in (link.client, link.server):
                    self._sel.unregister(sock)
                link.held = True
            self.held += len(live)
            return len(live)
        if command == "count":
            return sum(not link.held for link in self._links)
        if command == "stop":
            self._unlisten()
            for link in list(self._links):
                self._close(link, reset=False)
            self._stopped.set()
            return None
        raise ValueError(command)

    def _accept(self) -> None:
        try:
            client, _ = self._listener.accept()
        except (BlockingIOError, OSError):
            return
        try:
            server = socket.create_connection(self.upstream, timeout=5)
        except OSError:  # the server itself is down: the client sees its connection reset
            _reset(client)
            return
        link = _Link(client, server)
        for sock in (client, server):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.settimeout(5)  # a send to a peer that stopped reading cannot block the proxy for long
        self._sel.register(client, selectors.EVENT_READ, ("client", link))
        self._sel.register(server, selectors.EVENT_READ, ("server", link))
        self._links.append(link)
        self.connections += 1

    def _forward(self, side: str, link: _Link) -> None:
        src, dst = (link.client, link.server) if side == "client" else (link.server, link.client)
        try:
            data = src.recv(65536)
            if data:
                dst.sendall(data)
                return
        except OSError:
            self._close(link, reset=True)
            return
        self._close(link, reset=False)  # one side closed: close the other (as a TCP proxy does)

    def _loop(self) -> None:
        started = time.monotonic()
        while not self._stopped.is_set():
            if self.max_lifetime is not None and time.monotonic() - started > self.max_lifetime:
                self._run_command("stop")
                break
            for key, _ in self._sel.select(_SELECT_SECONDS):
                kind, link = key.data
                if kind == "wake":
                    self._wake_r.recv(4096)
                    while not self._commands.empty():
                        command, done = self._commands.get()
                        try:
                            done.put(self._run_command(command))
                        except Exception as error:  # noqa: BLE001 - handed to the caller
                            done.put(error)
                    if self._stopped.is_set():
                        break
                elif kind == "listen":
                    if self._listener is not None:
                        self._accept()
                elif link in self._links and not link.held:
                    self._forward(kind, link)
        self._sel.close()
        self._wake_r.close()
        self._wake_w.close()
