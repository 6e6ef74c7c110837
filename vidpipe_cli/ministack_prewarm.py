"""On the local stack, ``vidpipe up`` can have the functions every upload runs
start their workers before the first upload arrives, as AWS's provisioned
concurrency initialises execution environments ahead of the first invocation.

Why (issue 18): the first uploads of a batch started the transcode, thumbnails
and status functions' first workers (about 1 s of CPU each: a process, the
handler's imports) on the same two cores and the same ministack process as the
API, so the batch's first POST /uploads took up to 1.3 s. Run a second time on
the same stack, the same 100-job load had an API p99 of 0.33 s.

What it adds: ``POST /_vidpipe/prewarm`` with ``{"functions": [logical ids],
"workers": N}`` starts up to N workers of each of the stack's functions with
those logical ids (ministack names them "<stack>-<logical id>-<suffix>") and
answers with how many it started. Starting a worker runs the function's init
(the handler module's imports) and no invocation: no handler sees any event.
The workers then wait in ministack's pool for the first real invocation.

Loaded by vidpipe_cli/ministack_launcher.py on ministack's own interpreter. It
reads ``lambda_svc._functions`` and calls ``lambda_runtime.acquire_worker``,
``release_worker`` and ``Worker._spawn`` with ``Worker._lock``, names of
ministack 1.5.33 (the first and the last two private).
"""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

PREWARM_PATH = "/_vidpipe/prewarm"
MAX_WORKERS_EACH = 8


def functions_named(lambda_svc: Any, logical_ids: list[str]) -> list[tuple[str, Any]]:
    """(function name, ministack's record) of every function with one of these logical ids."""
    return [
        (name, record)
        for (_account, _region, name), record in lambda_svc._functions.all_items()
        if any(f"-{logical_id}-" in name for logical_id in logical_ids)
    ]


def prewarm(lambda_svc: Any, lambda_runtime: Any, logical_ids: list[str], workers_each: int) -> int:
    """Start workers until each named function has ``workers_each`` of them
    (counting those it has); returns how many were started."""
    leases: list[Any] = []
    to_start: list[Any] = []
    for name, record in functions_named(lambda_svc, logical_ids):
        config = record.get("config") or record
        for _ in range(workers_each):
            # Leasing them all at once gives distinct workers: a free one is
            # leased first, a new one only when every worker is leased.
            worker, how = lambda_runtime.acquire_worker(
                name, config, record.get("code_zip"), qualifier=config.get("Version", "$LATEST")
            )
            if worker is None:  # ministack's ceiling on workers per function
                break
            leases.append(worker)
            if how == "spawn":
                to_start.append(worker)
    try:
        with ThreadPoolExecutor(max_workers=max(1, len(to_start))) as pool:
            list(pool.map(_start, to_start))
    finally:
        for worker in leases:
            lambda_runtime.release_worker(worker)
    return len(to_start)


def _start(worker: Any) -> None:
    with worker._lock:
        if worker._proc is None:
            worker._spawn()
            worker._cold = False


def with_prewarm(app: Any, lambda_svc: Any, lambda_runtime: Any) -> Any:
    """ministack's ASGI app, answering ``POST /_vidpipe/prewarm`` itself."""

    async def wrapped(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if not (scope["type"] == "http" and scope["path"] == PREWARM_PATH and scope["method"] == "POST"):
            await app(scope, receive, send)
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        try:
            asked = json.loads(body or b"{}")
            logical_ids = [str(name) for name in asked["functions"]]
            workers_each = min(max(1, int(asked.get("workers", 1))), MAX_WORKERS_EACH)
        except (ValueError, KeyError, TypeError) as exc:
            await _answer(send, 400, {"error": f"send {{'functions': [...], 'workers': N}}: {exc}"})
            return
        # Off the event loop: starting workers takes seconds, and ministack keeps serving.
        started = await asyncio.to_thread(prewarm, lambda_svc, lambda_runtime, logical_ids, workers_each)
        await _answer(send, 200, {"started": started})

    return wrapped


async def _answer(send: Any, status: int, document: dict[str, Any]) -> None:
    await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": json.dumps(document).encode()})
