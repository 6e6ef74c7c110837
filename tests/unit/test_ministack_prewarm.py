"""Starting the workers of named functions ahead of their first invocation
(vidpipe_cli/ministack_prewarm.py), against a stand-in for ministack's pool."""

from __future__ import annotations

import threading
import types
from typing import Any

from vidpipe_cli.ministack_prewarm import prewarm


class StandInWorker:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._proc: object | None = None
        self._cold = True
        self.in_use = False
        self.spawns = 0

    def _spawn(self) -> None:
        self.spawns += 1
        self._proc = object()


def stand_in_ministack(*names: str) -> tuple[Any, Any, dict[str, list[StandInWorker]]]:
    """ministack's functions and pool as far as the module reads them."""
    pools: dict[str, list[StandInWorker]] = {name: [] for name in names}

    def acquire_worker(name: str, _config: dict, _code: bytes, qualifier: str) -> tuple[StandInWorker, str]:
        assert qualifier == "$LATEST"
        for worker in pools[name]:
            if not worker.in_use:
                worker.in_use = True
                return worker, "reused"
        worker = StandInWorker()
        worker.in_use = True
        pools[name].append(worker)
        return worker, "spawn"

    def release_worker(worker: StandInWorker) -> None:
        worker.in_use = False

    functions = types.SimpleNamespace(
        all_items=lambda: [
            (("000000000000", "us-east-1", name), {"config": {"FunctionName": name}, "code_zip": b"zip"})
            for name in names
        ]
    )
    lambda_svc = types.SimpleNamespace(_functions=functions)
    lambda_runtime = types.SimpleNamespace(acquire_worker=acquire_worker, release_worker=release_worker)
    return lambda_svc, lambda_runtime, pools


def test_GIVEN_named_functions_WHEN_prewarmed_THEN_each_gets_that_many_started_workers_and_others_none() -> None:
    svc, runtime, pools = stand_in_ministack("vp-TranscodeFunction-A1", "vp-StatusFunction-B2", "vp-SweepFunction-C3")

    started = prewarm(svc, runtime, ["TranscodeFunction", "StatusFunction"], workers_each=2)

    assert started == 4
    for name in ("vp-TranscodeFunction-A1", "vp-StatusFunction-B2"):
        assert [worker.spawns for worker in pools[name]] == [1, 1]
        assert all(not worker.in_use and not worker._cold for worker in pools[name])
    assert pools["vp-SweepFunction-C3"] == []


def test_GIVEN_workers_running_already_WHEN_prewarmed_again_THEN_only_the_missing_ones_start() -> None:
    svc, runtime, pools = stand_in_ministack("vp-StatusFunction-B2")
    prewarm(svc, runtime, ["StatusFunction"], workers_each=1)

    started = prewarm(svc, runtime, ["StatusFunction"], workers_each=3)

    assert started == 2
    assert [worker.spawns for worker in pools["vp-StatusFunction-B2"]] == [1, 1, 1]
