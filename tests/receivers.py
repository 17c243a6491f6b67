"""A webhook receiver that never finishes its answer, for the lanes' tests."""

from __future__ import annotations

import socket
import threading


class Trickler:
    """A receiver on loopback that answers "HTTP/1.1 200 OK\\r\\n" at once, then one
    byte every ``every_s`` seconds, ``bytes_`` bytes in all (None: until closed):
    each read comes in time, the answer never ends."""

    def __init__(self, every_s: float = 3.0, bytes_: int | None = None) -> None:
        self.every_s, self.bytes_ = every_s, bytes_
        self.server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.server.getsockname()[1]}/slow"
        self.accepted = 0
        self.closed = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self.closed.is_set():
            try:
                connection, _ = self.server.accept()
            except OSError:
                return
            self.accepted += 1
            threading.Thread(target=self._trickle, args=(connection,), daemon=True).start()

    def _trickle(self, connection: socket.socket) -> None:
        with connection:
            try:
                connection.recv(65536)
                connection.sendall(b"HTTP/1.1 200 OK\r\n")
                sent = 0
                while (self.bytes_ is None or sent < self.bytes_) and not self.closed.wait(self.every_s):
                    connection.sendall(b"X")
                    sent += 1
            except OSError:
                pass

    def close(self) -> None:
        self.closed.set()
        self.server.close()
