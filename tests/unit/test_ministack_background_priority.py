"""The local stack's worker priorities (vidpipe_cli/ministack_background_priority.py),
against a stand-in for ministack's Worker that starts a real child process."""

from __future__ import annotations

import os
import subprocess
import sys
import types
from collections.abc import Iterator

import pytest

from vidpipe_cli.ministack_background_priority import BACKGROUND_NICENESS, install


class StandInWorker:
    """ministack's Worker as far as the module reads it: ``_spawn`` starts ``_proc``."""

    def __init__(self, func_name: str) -> None:
        self.func_name = func_name
        self._proc: subprocess.Popen[bytes] | None = None

    def _spawn(self) -> None:
        self._proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])


@pytest.fixture
def runtime() -> Iterator[types.SimpleNamespace]:
    class Worker(StandInWorker):
        pass

    workers: list[StandInWorker] = []
    yield types.SimpleNamespace(Worker=Worker, started=workers)
    for worker in workers:
        if worker._proc is not None:
            worker._proc.kill()
            worker._proc.wait()


def niceness_of(worker: StandInWorker) -> int:
    assert worker._proc is not None
    return os.getpriority(os.PRIO_PROCESS, worker._proc.pid)


@pytest.mark.parametrize(
    ("function_name", "lowered"),
    [
        ("vidpipe-TranscodeFunction-3F2A9C", True),
        ("vidpipe-StatusFunction-3F2A9C", True),
        ("vidpipe-UploadApiFunction-3F2A9C", False),
        ("vidpipe-AuthorizerFunction-3F2A9C", False),
        ("vidpipe-OnDemandImagesFunction-3F2A9C", False),
    ],
)
def test_GIVEN_a_new_worker_WHEN_spawned_THEN_only_a_background_function_runs_below_the_api(
    runtime: types.SimpleNamespace, function_name: str, lowered: bool
) -> None:
    own = os.getpriority(os.PRIO_PROCESS, 0)
    install(runtime)
    worker = runtime.Worker(function_name)
    runtime.started.append(worker)

    worker._spawn()

    expected = max(own, BACKGROUND_NICENESS) if lowered else own
    assert niceness_of(worker) == expected


def test_GIVEN_a_worker_that_exited_at_once_WHEN_spawned_THEN_the_spawn_still_succeeds(
    runtime: types.SimpleNamespace,
) -> None:
    class ExitsAtOnce(StandInWorker):
        def _spawn(self) -> None:
            self._proc = subprocess.Popen([sys.executable, "-c", "pass"])
            self._proc.wait()

    runtime.Worker = ExitsAtOnce
    install(runtime)
    worker = runtime.Worker("vidpipe-TranscodeFunction-1")

    worker._spawn()  # the process is gone (a zombie reaped): nothing to lower, no error

    assert worker._proc is not None and worker._proc.returncode == 0
