"""ministack, launched so that the local stack's data survives a hard kill.

Why (issue 17): the pinned ministack (1.5.33) writes the state of every service
but S3 only on a clean shutdown, so a ``kill -9``, an out-of-memory kill or a
machine that loses power forgot every job since the last ``vidpipe down``.
This module is the whole workaround, in one visible place. It runs the
emulator unchanged (the functions and their handlers see exactly what they saw
before) and wraps its ASGI app to add:

* runtime snapshots: shortly after a request that may have changed something
  (at most ``SNAPSHOT_DELAY_S`` later) and every ``IDLE_SWEEP_S`` without one
  (ministack's own pollers delete SQS messages without a request), the state of
  the services that change while jobs run is written to ministack's state
  folder in ministack's own file format, atomically (temporary file, fsync,
  rename, as its own save does), and only when it changed. SQS is captured
  before DynamoDB: a message whose deletion is captured had its effects written
  to DynamoDB earlier, so they are captured too, and anything newer than the
  last snapshot is redelivered, never lost (every consumer is idempotent);
* ``POST /_vidpipe/save``: everything ministack saves on shutdown, at once.
  ``vidpipe up`` calls it after a deploy, the one time the other services
  (CloudFormation, Lambda, IAM, EventBridge, API Gateway, ...) change;
* ``<state>/snapshot.json``: when the last snapshot was taken, so ``vidpipe up``
  can say what a crash cost.

Not kept through a hard kill: CloudWatch Logs lines written since the last
clean stop (``vidpipe logs`` then misses them; the jobs are unaffected).

It runs on ministack's own interpreter (``.venv-ministack``), loaded by
vidpipe_cli/ministack_launcher.py, and imports only the standard library and
ministack. It uses two names private to
ministack 1.5.33 (``app.app`` and ``persistence._json_default``); a ministack
that saves on its own (upstream pull request #1032 proposes
``/_ministack/state/save``) makes it unnecessary.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import threading
import time
import traceback
from typing import Any

import ministack.app as ministack_app  # type: ignore[import-not-found]  # ministack's own venv
from ministack.core import persistence  # type: ignore[import-not-found]

# What a job changes while it runs, in the order they are captured (see above).
RUNTIME_SERVICES = ("sqs", "dynamodb")
# The longest a change waits before it is on disk: well under the 2 s after
# which an acknowledged job must survive a crash.
SNAPSHOT_DELAY_S = 0.5
IDLE_SWEEP_S = 5.0
SAVE_PATH = "/_vidpipe/save"
MARKER_FILE = "snapshot.json"
# Methods that read only: a GET through the HTTP API runs a function whose own
# writes come back as requests of their own.
READ_ONLY_METHODS = {"GET", "HEAD", "OPTIONS"}


class RuntimeSnapshots:
    """Writes the runtime services' state shortly after it changes."""

    def __init__(self, state_dir: str) -> None:
        self.state_dir = state_dir
        self.changed = True  # the first pass records what was loaded at start
        self._written: dict[str, bytes] = {}
        self._last_pass = 0.0
        # What the snapshots cost, kept in the marker file (scripts/snapshot_cost.py reads it).
        self.snapshots = 0
        self.bytes_written = 0
        self.cpu_s = 0.0
        # Held while files are written (in a worker thread); `close` waits for it
        # so no snapshot lands after ministack's own save at shutdown.
        self._write_lock = threading.Lock()
        self._closed = False

    async def run(self) -> None:
        while True:
            await asyncio.sleep(SNAPSHOT_DELAY_S)
            if self.changed or time.monotonic() - self._last_pass >= IDLE_SWEEP_S:
                try:
                    await self.snapshot_now()
                except Exception:  # noqa: BLE001 - a failed pass must not end the snapshots
                    # The previous files stand; say why in ministack's log and try again.
                    self.changed = True
                    traceback.print_exc(file=sys.stderr)

    async def snapshot_now(self) -> None:
        self.changed, self._last_pass = False, time.monotonic()
        started = time.thread_time()
        try:
            # On the event loop, between two requests: no handler is half-way.
            captured = {name: self._serialize(name) for name in RUNTIME_SERVICES}
        except RuntimeError:
            # One of ministack's threads (an SQS poller) changed a dict while it
            # was copied: the previous files stand, the next pass tries again.
            self.changed = True
            return
        finally:
            self.cpu_s += time.thread_time() - started
        await asyncio.to_thread(self._write_changed, captured)

    def _serialize(self, service: str) -> bytes | None:
        module = sys.modules.get(f"ministack.services.{service}")
        if module is None:  # never used since the start: its file is still right
            return None
        wrapped = {"__ministack_format__": persistence._state_format_version(service), "payload": module.get_state()}
        return json.dumps(wrapped, default=persistence._json_default).encode()

    def close(self) -> None:
        with self._write_lock:
            self._closed = True

    def _write_changed(self, captured: dict[str, bytes | None]) -> None:
        with self._write_lock:
            if not self._closed:
                self._write_changed_locked(captured)

    def _write_changed_locked(self, captured: dict[str, bytes | None]) -> None:
        started, wrote = time.thread_time(), False
        for service, content in captured.items():
            if content is None or self._written.get(service) == content:
                continue
            write_atomically(os.path.join(self.state_dir, f"{service}.json"), content)
            self._written[service] = content
            self.bytes_written += len(content)
            wrote = True
        if wrote:
            self.snapshots += 1
            self.cpu_s += time.thread_time() - started
            marker = {
                "at": time.time(),
                "snapshots": self.snapshots,
                "bytes_written": self.bytes_written,
                "cpu_s": round(self.cpu_s, 3),
            }
            write_atomically(os.path.join(self.state_dir, MARKER_FILE), json.dumps(marker).encode())


def write_atomically(path: str, content: bytes) -> None:
    """Old file or new file, never half of one, even if the machine stops."""
    temporary = f"{path}.vidpipe-tmp"
    with open(temporary, "wb") as handle:
        handle.write(content)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def with_snapshots(app: Any, snapshots: RuntimeSnapshots) -> Any:
    """ministack's ASGI app, with the snapshot task running beside it."""
    task: asyncio.Task[None] | None = None

    async def wrapped(scope: dict[str, Any], receive: Any, send: Any) -> None:
        nonlocal task
        if scope["type"] == "lifespan":

            async def receive_lifespan() -> dict[str, Any]:
                message = await receive()
                if message["type"] == "lifespan.shutdown" and task is not None:
                    # ministack saves everything now: our last write must not land after it.
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
                    await asyncio.to_thread(snapshots.close)
                return message

            async def send_lifespan(message: dict[str, Any]) -> None:
                nonlocal task
                if message["type"] == "lifespan.startup.complete":
                    task = asyncio.get_running_loop().create_task(snapshots.run())
                await send(message)

            await app(scope, receive_lifespan, send_lifespan)
            return
        if scope["type"] == "http" and scope["path"] == SAVE_PATH and scope["method"] == "POST":
            await _save_everything(send)
            return
        if scope["type"] == "http" and scope["method"] not in READ_ONLY_METHODS:
            snapshots.changed = True
        await app(scope, receive, send)

    return wrapped


async def _save_everything(send: Any) -> None:
    # ministack's own shutdown save, on the event loop as at shutdown.
    ministack_app.save_all(ministack_app._build_persistence_save_dict())
    await send({"type": "http.response.start", "status": 204, "headers": []})
    await send({"type": "http.response.body", "body": b""})
