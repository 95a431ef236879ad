"""A controllable TCP proxy on 127.0.0.1, for simulating outages of shared services.

The fault tests never stop the real PostgreSQL or Redis (other processes use them): they point
the code under test at this proxy and break the proxy instead.

    proxy = TcpProxy(6379).start()      # forwards 127.0.0.1:<proxy.port> -> 127.0.0.1:6379
    proxy.down()     # refuse new connections and cut every open one (a crashed server)
    proxy.pause()    # accept and hold connections but relay nothing (a network partition)
    proxy.up()       # forward again (from either state)
    proxy.stop()
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading

_CHUNK = 65536


class TcpProxy:
    def __init__(self, target_port: int, target_host: str = "127.0.0.1", port: int = 0):
        self.target = (target_host, target_port)
        self.port = port
        self._listener: socket.socket | None = None
        self._lock = threading.Lock()
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._held: list[socket.socket] = []
        self._relaying = threading.Event()
        self._stopped = False
        self.accepted = 0

    # --- lifecycle ----------------------------------------------------------------------------------
    def start(self) -> TcpProxy:
        self._relaying.set()
        self._listen()
        return self

    def stop(self) -> None:
        self._stopped = True
        self._relaying.set()
        self._close_listener()
        self._cut_all()

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def url_host_port(self) -> str:
        return f"127.0.0.1:{self.port}"

    # --- faults -------------------------------------------------------------------------------------
    def down(self) -> None:
        """Connections are refused and open ones are reset, like a dead server."""
        self._close_listener()
        self._cut_all()

    def pause(self) -> None:
        """Connections are accepted but no byte moves either way, like a black-holed network."""
        self._relaying.clear()
        if self._listener is None:
            self._listen()

    def up(self) -> None:
        """Forward again; connections held while paused are cut (their peers timed out anyway)."""
        with self._lock:
            held, self._held = self._held, []
        for sock in held:
            _close(sock)
        self._relaying.set()
        if self._listener is None:
            self._listen()

    # --- internals ----------------------------------------------------------------------------------
    def _listen(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(128)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept_loop, args=(listener,), daemon=True).start()

    def _close_listener(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            _close(listener)

    def _cut_all(self) -> None:
        with self._lock:
            pairs, self._pairs = self._pairs, []
            held, self._held = self._held, []
        for client, upstream in pairs:
            _reset(client)
            _close(upstream)
        for sock in held:
            _reset(sock)

    def _accept_loop(self, listener: socket.socket) -> None:
        while not self._stopped:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # the listener was closed: down() or stop()
            self.accepted += 1
            if not self._relaying.is_set():
                with self._lock:
                    self._held.append(client)
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                _reset(client)
                continue
            with self._lock:
                self._pairs.append((client, upstream))
            threading.Thread(target=self._relay, args=(client, upstream), daemon=True).start()

    def _relay(self, client: socket.socket, upstream: socket.socket) -> None:
        peers = {client: upstream, upstream: client}
        try:
            while not self._stopped:
                if not self._relaying.is_set():
                    # Paused: hold the bytes (the kernel buffers them) until up() or down().
                    self._relaying.wait(0.1)
                    continue
                readable, _, _ = select.select(list(peers), [], [], 0.2)
                for sock in readable:
                    data = sock.recv(_CHUNK)
                    if not data:
                        return
                    peers[sock].sendall(data)
        except (OSError, ValueError):
            return
        finally:
            _close(client)
            _close(upstream)
            with self._lock:
                if (client, upstream) in self._pairs:
                    self._pairs.remove((client, upstream))


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.close()


def _reset(sock: socket.socket) -> None:
    """Close with RST (SO_LINGER 0), so the peer sees a reset, as when a server process dies."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    _close(sock)
