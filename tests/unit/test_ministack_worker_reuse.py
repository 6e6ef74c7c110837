"""The local stack's choice between a warm Lambda worker and a new one
(vidpipe_cli/ministack_worker_reuse.py), against a stand-in for ministack's pool."""

from __future__ import annotations

import threading
import time
import types
from typing import Any

from vidpipe_cli import ministack_worker_reuse
from vidpipe_cli.ministack_worker_reuse import TurnByTurn, install


class FakeWorker:
    def __init__(self) -> None:
        self.in_use = True


def fake_ministack() -> tuple[Any, Any, list[FakeWorker]]:
    """ministack's pool as far as the module reads it: a worker is leased free
    if one is, otherwise a new one is registered, leased, and counted."""
    pool: list[FakeWorker] = []
    lock = threading.Lock()
    runtime = types.SimpleNamespace(_workers={"key": pool}, _lock=lock, _worker_key=lambda *_: "key")

    def acquire_worker(*_args: Any, **_kwargs: Any) -> tuple[FakeWorker, str]:
        with lock:
            for worker in pool:
                if not worker.in_use:
                    worker.in_use = True
                    return worker, "reused"
            worker = FakeWorker()
            pool.append(worker)
            return worker, "spawn"

    return runtime, types.SimpleNamespace(acquire_worker=acquire_worker), pool


def call_and_release(service: Any, hold_s: float) -> str:
    worker, how = service.acquire_worker("api", {}, b"")
    time.sleep(hold_s)
    worker.in_use = False
    return how


def test_a_burst_reuses_warm_workers_instead_of_starting_one_per_call() -> None:
    runtime, service, pool = fake_ministack()
    install(runtime, service, workers_without_waiting=2)
    # WHEN twelve calls of 20 ms arrive at once
    results: list[str] = []
    threads = [threading.Thread(target=lambda: results.append(call_and_release(service, 0.02))) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # THEN two workers were started and the other ten calls reused them
    assert len(pool) == 2
    assert sorted(results).count("spawn") == 2


def test_a_call_that_waits_too_long_gets_a_worker_of_its_own(monkeypatch: Any) -> None:
    monkeypatch.setattr(ministack_worker_reuse, "WAIT_FOR_WARM_S", 0.05)
    runtime, service, pool = fake_ministack()
    install(runtime, service, workers_without_waiting=1)
    # GIVEN the only worker busy with a slow call
    slow = threading.Thread(target=call_and_release, args=(service, 1.0))
    slow.start()
    time.sleep(0.01)
    # WHEN another call comes, THEN it is not held behind the slow one for long
    started = time.monotonic()
    assert call_and_release(service, 0) == "spawn"
    assert time.monotonic() - started < 0.5
    slow.join()
    assert len(pool) == 2


def test_turns_are_taken_in_the_order_they_were_asked_for() -> None:
    turns = TurnByTurn()
    order: list[int] = []
    turns.__enter__()  # held while the others line up
    threads = []
    for number in range(5):
        thread = threading.Thread(target=lambda n=number: (turns.__enter__(), order.append(n), turns.__exit__()))
        thread.start()
        threads.append(thread)
        time.sleep(0.02)  # each one asks after the previous one
    turns.__exit__()
    for thread in threads:
        thread.join()
    assert order == [0, 1, 2, 3, 4]
