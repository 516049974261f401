"""A small threaded TCP proxy between the pipeline and MariaDB that injects real network faults.

    with FaultProxy() as proxy:            # listens on 127.0.0.1:<proxy.port>, forwards to 127.0.0.1:3306
        proxy.refuse()                     # "Khanza is down": listener closed (ECONNREFUSED), live links reset
        proxy.accept()                     # back up, on the same port
        proxy.drop_all()                   # reset every live connection now (mid-transaction if one is open)
        proxy.drop_at_query(40)            # reset the connection carrying the 40th query from now
        proxy.drop_at_query(1, match=b"COMMIT", lose_response=True)
                                           # let the next COMMIT run on the server, swallow the answer, reset
        proxy.stall(5)                     # hold every byte in both directions for 5 s (new connections too)
        proxy.stall_at_query(10, 5)        # start that stall when the 10th query from now passes
        proxy.call_before_query(1, fn, match=b"INSERT INTO reg_periksa")
                                           # run fn() (e.g. a desk insert) just before that query goes on

The proxy understands just enough of the MySQL wire protocol (4-byte packet headers, COM_QUERY = 0x03 with
sequence id 0) to count queries and match their first bytes. It never logs or stores query text: bound
values are interpolated client-side by PyMySQL, so a query can contain patient data.

Bounded: every socket has a timeout, a stall lasts at most `MAX_STALL_SECONDS`, and the proxy shuts itself
down after `max_lifetime` seconds even if a test forgets to stop it. Threads are daemons.
"""
from __future__ import annotations

import itertools
import selectors
import socket
import struct
import threading
import time
from dataclasses import dataclass, field

COM_QUERY = 0x03
MAX_STALL_SECONDS = 60.0
POLL_SECONDS = 0.05


@dataclass
class _Trigger:
    remaining: int  # matching queries still to pass before it fires (1 = the next one)
    match: bytes | None  # case-insensitive prefix of the SQL text; None = any query
    action: str  # "drop" | "lose_response" | "stall" | "drop_all" | "call"
    stall_seconds: float = 0.0
    callback: object = None  # for "call": run (in the proxy thread) before the query is forwarded


@dataclass
class _Link:
    client: socket.socket
    server: socket.socket
    ident: int
    inbuf: bytearray = field(default_factory=bytearray)  # client bytes not yet cut into packets
    to_server: bytearray = field(default_factory=bytearray)  # held during a stall
    to_client: bytearray = field(default_factory=bytearray)
    kill: bool = False
    swallow_then_kill: bool = False  # lose_response: wait for the server's answer, discard it, reset


class FaultProxy:
    def __init__(self, upstream: tuple[str, int] = ("127.0.0.1", 3306), *, port: int = 0,
                 max_lifetime: float = 300.0):
        self.upstream = upstream
        self.port = port
        self.max_lifetime = max_lifetime
        self._lock = threading.Lock()
        self._links: dict[int, _Link] = {}
        self._ids = itertools.count(1)
        self._listener: socket.socket | None = None
        self._stop = threading.Event()
        self._accepting = False
        self._stalled_until = 0.0
        self._triggers: list[_Trigger] = []
        self._threads: list[threading.Thread] = []
        self._deadline = 0.0
        # counters (tests assert on them to prove a fault really happened)
        self.connections = 0
        self.queries = 0
        self.drops = 0
        self.stalls = 0
        self.calls = 0

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> "FaultProxy":
        self._deadline = time.monotonic() + self.max_lifetime
        self._open_listener()
        thread = threading.Thread(target=self._accept_loop, name="fault-proxy-accept", daemon=True)
        thread.start()
        self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._stop.set()
        self._close_listener()
        self.drop_all(count=False)
        for thread in list(self._threads):
            thread.join(timeout=2)

    def __enter__(self) -> "FaultProxy":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ------------------------------------------------------------------ faults

    def refuse(self) -> None:
        """Khanza is down: new connections are refused by the OS, live ones are reset."""
        self._close_listener()
        self.drop_all()

    def accept(self) -> None:
        """Khanza is back (same port)."""
        if not self._accepting:
            self._open_listener()

    @property
    def is_accepting(self) -> bool:
        return self._accepting

    def drop_all(self, count: bool = True) -> int:
        with self._lock:
            links = list(self._links.values())
            for link in links:
                link.kill = True
            if count and links:
                self.drops += 1
        return len(links)

    def drop_at_query(self, nth: int = 1, *, match: bytes | None = None, lose_response: bool = False) -> None:
        """Reset the connection that carries the nth matching query from now.

        lose_response=False: the query never reaches the server (an open transaction is rolled back).
        lose_response=True: the server runs it, the answer is swallowed, then the connection is reset -
        e.g. a COMMIT that happened although the client only sees 'Lost connection'."""
        self._arm(_Trigger(nth, match, "lose_response" if lose_response else "drop"))

    def drop_all_at_query(self, nth: int = 1, *, match: bytes | None = None) -> None:
        """Reset every live connection when the nth matching query from now arrives (not forwarded)."""
        self._arm(_Trigger(nth, match, "drop_all"))

    def stall(self, seconds: float) -> None:
        """Hold every byte, both directions, for `seconds` (at most MAX_STALL_SECONDS)."""
        with self._lock:
            self._stalled_until = time.monotonic() + min(seconds, MAX_STALL_SECONDS)
            self.stalls += 1

    def stall_at_query(self, nth: int, seconds: float, *, match: bytes | None = None) -> None:
        self._arm(_Trigger(nth, match, "stall", seconds))

    def call_before_query(self, nth: int, callback, *, match: bytes | None = None) -> None:
        """Run `callback()` just before the nth matching query reaches the server (the query waits for it):
        e.g. a desk clerk committing a walk-in in the gap between the pipeline's max() read and its INSERT."""
        self._arm(_Trigger(nth, match, "call", callback=callback))

    def unstall(self) -> None:
        with self._lock:
            self._stalled_until = 0.0

    def clear_triggers(self) -> None:
        with self._lock:
            self._triggers.clear()

    @property
    def pending_triggers(self) -> int:
        with self._lock:
            return len(self._triggers)

    @property
    def live_connections(self) -> int:
        with self._lock:
            return len(self._links)

    def _arm(self, trigger: _Trigger) -> None:
        if trigger.remaining < 1:
            raise ValueError("nth must be >= 1")
        if trigger.match is not None:
            trigger.match = trigger.match.upper()
        with self._lock:
            self._triggers.append(trigger)

    def _stalled(self) -> bool:
        return time.monotonic() < self._stalled_until

    # ------------------------------------------------------------------ listener

    def _open_listener(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        for _ in range(50):  # re-binding the same port right after a close can briefly fail
            try:
                sock.bind(("127.0.0.1", self.port))
                break
            except OSError:
                time.sleep(0.05)
        else:
            sock.close()
            raise RuntimeError("fault proxy could not bind its port")
        sock.listen(64)
        sock.settimeout(POLL_SECONDS)
        self.port = sock.getsockname()[1]
        with self._lock:
            self._listener = sock
            self._accepting = True

    def _close_listener(self) -> None:
        with self._lock:
            sock, self._listener, self._accepting = self._listener, None, False
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)  # stop listening now, even while accept() is polling
            except OSError:
                pass
            sock.close()

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            if time.monotonic() > self._deadline:  # bounded: a forgotten proxy stops itself
                self._stop.set()
                self._close_listener()
                self.drop_all(count=False)
                return
            with self._lock:
                listener = self._listener
            if listener is None:
                time.sleep(POLL_SECONDS)
                continue
            try:
                client, _ = listener.accept()
            except (socket.timeout, OSError):
                continue
            try:
                server = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                _reset(client)
                continue
            for sock in (client, server):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                sock.settimeout(5)
            link = _Link(client=client, server=server, ident=next(self._ids))
            with self._lock:
                self._links[link.ident] = link
                self.connections += 1
            thread = threading.Thread(target=self._serve, args=(link,), name=f"fault-proxy-{link.ident}",
                                      daemon=True)
            thread.start()
            self._threads = [t for t in self._threads if t.is_alive()] + [thread]

    # ------------------------------------------------------------------ one connection

    def _serve(self, link: _Link) -> None:
        sel = selectors.DefaultSelector()
        sel.register(link.client, selectors.EVENT_READ, "client")
        sel.register(link.server, selectors.EVENT_READ, "server")
        try:
            while not self._stop.is_set() and not link.kill:
                if not self._stalled():
                    if link.to_server:
                        link.server.sendall(bytes(link.to_server))
                        link.to_server.clear()
                    if link.to_client:
                        link.client.sendall(bytes(link.to_client))
                        link.to_client.clear()
                for key, _ in sel.select(POLL_SECONDS):
                    data = key.fileobj.recv(65536)
                    if not data:
                        return  # one side closed: close the other (the server then releases locks)
                    if key.data == "client":
                        self._from_client(link, data)
                    elif link.swallow_then_kill:
                        link.kill = True  # the answer arrived: discard it and reset
                    elif self._stalled():
                        link.to_client += data
                    else:
                        link.client.sendall(data)
                    if link.kill:
                        break
        except OSError:
            pass
        finally:
            sel.close()
            with self._lock:
                self._links.pop(link.ident, None)
            _reset(link.client)
            _reset(link.server)

    def _from_client(self, link: _Link, data: bytes) -> None:
        link.inbuf += data
        while len(link.inbuf) >= 4:
            length = struct.unpack("<I", bytes(link.inbuf[:3]) + b"\0")[0]
            if len(link.inbuf) < 4 + length:
                return
            packet = bytes(link.inbuf[:4 + length])
            del link.inbuf[:4 + length]
            action = self._inspect(packet)
            if action in ("drop", "drop_all"):
                link.kill = True
                if action == "drop_all":
                    self.drop_all(count=False)
                return
            self._hold_or_forward(link, packet)
            if action == "lose_response":
                link.swallow_then_kill = True
                return

    def _hold_or_forward(self, link: _Link, data: bytes) -> None:
        """While stalled, `data` waits with what is already held; otherwise the held bytes, then `data`, go
        on to the server, in order."""
        if self._stalled():
            link.to_server += data
            return
        if link.to_server:
            link.server.sendall(bytes(link.to_server))
            link.to_server.clear()
        link.server.sendall(data)

    def _inspect(self, packet: bytes) -> str | None:
        """Count COM_QUERY packets and fire the first trigger whose countdown reaches zero."""
        if len(packet) < 5 or packet[3] != 0 or packet[4] != COM_QUERY:
            return None
        head = packet[5:69].lstrip().upper()  # first bytes of the SQL only; never stored or logged
        with self._lock:
            self.queries += 1
            fired = []
            for trigger in self._triggers:
                if trigger.match is not None and not head.startswith(trigger.match):
                    continue
                trigger.remaining -= 1
                if trigger.remaining <= 0:
                    fired.append(trigger)
            action = None
            calls = []
            for trigger in fired:
                self._triggers.remove(trigger)
                if trigger.action == "call":
                    calls.append(trigger.callback)
                elif trigger.action == "stall":
                    self._stalled_until = time.monotonic() + min(trigger.stall_seconds, MAX_STALL_SECONDS)
                    self.stalls += 1
                elif action is None:
                    self.drops += 1
                    action = trigger.action
        for callback in calls:  # outside the lock: the callback may take a while
            self.calls += 1
            callback()
        return action


def _reset(sock: socket.socket) -> None:
    """Close with RST (SO_LINGER 0), like a cable pulled or a server killed, not a polite FIN."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass
