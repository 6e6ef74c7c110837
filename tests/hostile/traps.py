"""Traps that tell, without strace, whether FFmpeg opened a file or a URL it
must never touch.

:class:`CanaryPipe` is a named pipe standing in for a secret file: opening a
FIFO for reading is the one thing that releases the writer blocked on its
other end, so ``opened`` counts exactly the times something opened it (a
stat, or a directory listing, does not count; reading the content needs the
open). :class:`TrapListener` is a TCP listener on 127.0.0.1 that counts
connections, for the SSRF cases.

Both are context managers; use them in tests only.
"""

from __future__ import annotations

import os
import socket
import threading
from pathlib import Path
from types import TracebackType

CANARY_CONTENT = b"CANARY-SECRET-7f3a: if this reaches an output, FFmpeg read a file it must not open\n"


class CanaryPipe:
    def __init__(self, path: Path, content: bytes = CANARY_CONTENT) -> None:
        self.path = path
        self.content = content
        self.opened = 0
        self._stopping = threading.Event()
        os.mkfifo(path)
        self._thread = threading.Thread(target=self._serve, name=f"canary:{path.name}", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            descriptor = os.open(self.path, os.O_WRONLY)  # blocks until a reader opens the pipe
            if self._stopping.is_set():
                os.close(descriptor)
                return
            self.opened += 1
            try:
                os.write(descriptor, self.content)
            except BrokenPipeError:
                pass
            finally:
                os.close(descriptor)

    def close(self) -> None:
        self._stopping.set()
        # Our own non-blocking reader releases the writer's blocking open.
        reader = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK)
        try:
            self._thread.join(timeout=5)
        finally:
            os.close(reader)
        self.path.unlink(missing_ok=True)

    def __enter__(self) -> CanaryPipe:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()


class TrapListener:
    def __init__(self) -> None:
        self.connections: list[tuple[str, int]] = []
        self._server = socket.create_server(("127.0.0.1", 0))
        self._server.settimeout(0.2)
        self.port = int(self._server.getsockname()[1])
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._serve, name=f"trap:{self.port}", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/segment.ts"

    def _serve(self) -> None:
        while not self._stopping.is_set():
            try:
                connection, peer = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections.append(peer)
            connection.close()

    def close(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=5)
        self._server.close()

    def __enter__(self) -> TrapListener:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()
