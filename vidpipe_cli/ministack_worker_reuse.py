"""On the local stack, a burst of calls waits a moment for a warm Lambda worker
instead of starting more workers than the machine has cores.

Why (issue 18): the pinned ministack (1.5.33) gives every concurrent invocation
an execution environment of its own, as AWS does, and starts a new worker
process whenever all of a function's workers are busy. On AWS the new
environments start in parallel on their own vCPUs. On a 2-core machine they
queue for the same two cores: each costs about 1 s of CPU (ministack unzips the
function, the worker imports its handler), so the load's first ten
POST /uploads, which started ten API and ten authorizer workers at once, took
9-13 s, while a warm call takes about 20 ms.

What changes: when a function already has as many workers as the machine has
cores (twice as many was tried: the extra cold starts under load put the
100-job load's API p99 at 2.5 s instead of 1.1 s) and all are busy, an
invocation waits up to ``WAIT_FOR_WARM_S`` for one to come free before
ministack starts another. The SQS-driven functions are
held to the cores already (their mappings' MaximumConcurrency, see
vidpipe_cli/local_deploy.py), so this mostly shapes the HTTP API's and the
authorizer's bursts. A call that waits longer (a slow route holding every
worker) still gets a new worker, so nothing can deadlock on it.

Loaded by vidpipe_cli/ministack_launcher.py on ministack's own interpreter,
given ministack's ``core.lambda_runtime`` and ``services.lambda_svc`` modules
by :func:`install`; it replaces ``lambda_svc.acquire_worker`` and reads
``lambda_runtime._workers``, ``_lock`` and ``_worker_key``, names private to
ministack 1.5.33.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

# Longer than a cold start on a busy 2-core machine (the first one after
# `vidpipe up` takes about 5 s), or the waiters would start workers anyway.
WAIT_FOR_WARM_S = 10.0
POLL_S = 0.002


class TurnByTurn:
    """A lock taken in the order it was asked for (``threading.Lock`` lets a
    newcomer overtake: under a steady load one call waited 9.5 s)."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._next_ticket = 0
        self._serving = 0

    def __enter__(self) -> None:
        with self._changed:
            ticket = self._next_ticket
            self._next_ticket += 1
            while ticket != self._serving:
                self._changed.wait()

    def __exit__(self, *_exc: object) -> None:
        with self._changed:
            self._serving += 1
            self._changed.notify_all()


def install(lambda_runtime: Any, lambda_svc: Any, *, workers_without_waiting: int | None = None) -> None:
    acquire_worker = lambda_svc.acquire_worker
    limit = workers_without_waiting or os.cpu_count() or 1

    def all_busy_at_limit(key: str) -> bool:
        with lambda_runtime._lock:
            workers = lambda_runtime._workers.get(key, [])
            return len(workers) >= limit and all(worker.in_use for worker in workers)

    deciding: dict[str, TurnByTurn] = {}
    deciding_guard = threading.Lock()

    def acquire_warm_worker_first(func_name: str, config: dict, code_zip: bytes, *args: Any, **kwargs: Any) -> Any:
        key = lambda_runtime._worker_key(func_name, config, kwargs.get("qualifier", args[0] if args else "$LATEST"))
        with deciding_guard:
            turns = deciding.setdefault(key, TurnByTurn())
        # One call of a function at a time, in the order they came, decides
        # whether to wait or start a worker (ministack registers a new worker
        # as it is leased, before it starts), so a burst on an idle stack
        # cannot start one each, and no call waits behind later ones.
        with turns:
            deadline = time.monotonic() + WAIT_FOR_WARM_S
            while all_busy_at_limit(key) and time.monotonic() < deadline:
                time.sleep(POLL_S)
            return acquire_worker(func_name, config, code_zip, *args, **kwargs)

    lambda_svc.acquire_worker = acquire_warm_worker_first
