"""What `vidpipe up` repairs and reports after the local stack stopped
(vidpipe_cli.crash_recovery): messages in flight come back, leftover Lambda
workers of a killed stack are ended (only those), and the report says what was found."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from vidpipe_cli.crash_recovery import (
    UncleanStop,
    describe_recovery,
    end_leftover_workers,
    last_snapshot_at,
    release_messages_in_flight,
)


def sqs_state(queues: dict[str, list[dict]]) -> dict:
    data = {f"000000000000\x00us-east-1\x00'{name}'": {"name": name, "messages": msgs} for name, msgs in queues.items()}
    return {"__ministack_format__": 2, "payload": {"queues": {"__account_region_scoped__": True, "data": data}}}


def test_GIVEN_messages_in_flight_in_two_queues_WHEN_released_THEN_visible_now_and_counted_by_queue(
    tmp_path: Path,
) -> None:
    later = time.time() + 5400
    state = sqs_state(
        {
            "transcode": [{"receipt_handle": "r1", "visible_at": later}, {"receipt_handle": None, "visible_at": 0}],
            "status": [{"receipt_handle": "r2", "visible_at": later}],
        }
    )
    (tmp_path / "sqs.json").write_text(json.dumps(state))

    released = release_messages_in_flight(tmp_path)

    assert released == {"transcode": 1, "status": 1}
    saved = json.loads((tmp_path / "sqs.json").read_text())
    messages = [m for q in saved["payload"]["queues"]["data"].values() for m in q["messages"]]
    assert all(m["receipt_handle"] is None and m["visible_at"] <= time.time() for m in messages)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sqs.json"]  # no temporary file left


def test_GIVEN_a_state_format_it_does_not_know_WHEN_released_THEN_nothing_changes(tmp_path: Path) -> None:
    text = json.dumps({"__ministack_format__": 3, "payload": {}})
    (tmp_path / "sqs.json").write_text(text)

    assert release_messages_in_flight(tmp_path) == {}
    assert (tmp_path / "sqs.json").read_text() == text


def test_GIVEN_a_snapshot_marker_WHEN_read_THEN_its_time_and_none_without_one(tmp_path: Path) -> None:
    assert last_snapshot_at(tmp_path) is None
    (tmp_path / "snapshot.json").write_text(json.dumps({"at": 1234.5}))
    assert last_snapshot_at(tmp_path) == 1234.5


def test_GIVEN_an_unclean_stop_WHEN_described_THEN_it_says_what_came_back_and_what_resumes() -> None:
    stop = UncleanStop(pid=4242, last_snapshot_at=time.time(), released={"transcode": 2}, workers_ended=3)

    lines = describe_recovery(stop, {"READY": 4, "PROCESSING": 2, "UPLOADED": 1}, {"PROCESSING", "UPLOADED"})

    assert lines[0].startswith("recovered from an unclean stop: ministack (pid 4242) ended without saving")
    assert "last snapshot" in lines[0]
    assert "ended 3 Lambda worker(s)" in lines[1]
    assert "transcode 2" in lines[2]
    assert "2 PROCESSING, 4 READY, 1 UPLOADED; 3 unfinished resume" in lines[3]


def test_GIVEN_no_snapshot_and_no_jobs_WHEN_described_THEN_it_says_so() -> None:
    lines = describe_recovery(UncleanStop(pid=7, last_snapshot_at=None), {}, set())

    assert "no snapshot was taken" in lines[0]
    assert lines[-1] == "  no jobs found"


def test_GIVEN_leftover_processes_of_a_killed_stack_WHEN_ended_THEN_only_its_workers_in_its_folder(
    tmp_path: Path,
) -> None:
    # GIVEN a process group led by a "worker" running from the stack's temporary
    # folder, and a process of another group that names the folder too
    ours = tmp_path / "tmp"
    sleeper = "import time, sys; time.sleep(60)"
    worker = subprocess.Popen([sys.executable, "-c", sleeper, str(ours / "worker.py")], start_new_session=True)
    stranger = subprocess.Popen([sys.executable, "-c", sleeper, str(ours / "other.py")], start_new_session=True)
    try:
        time.sleep(0.2)  # both have exec'd, their command lines are readable
        # WHEN the leftovers of the worker's group are ended
        ended = end_leftover_workers(worker.pid, ours)
        # THEN the worker is gone and the other group's process lives on
        assert ended == 1
        assert worker.wait(timeout=10) == -9
        assert stranger.poll() is None
    finally:
        for process in (worker, stranger):
            process.kill()
            process.wait()


def test_GIVEN_a_dead_runs_worker_folders_WHEN_discarded_THEN_moved_aside_at_once_and_deleted_in_the_background(
    tmp_path: Path,
) -> None:
    from vidpipe_cli.local_stack import _discard_in_background

    (tmp_path / "tmp" / "run-1" / "worker").mkdir(parents=True)
    (tmp_path / "tmp" / "run-1" / "worker" / "ffmpeg").write_bytes(b"x" * 1000)
    (tmp_path / "tmp-discarded-1").mkdir()  # what an interrupted deletion left

    _discard_in_background(tmp_path / "tmp")

    assert not (tmp_path / "tmp").exists()  # the new run's folder can be made at once
    deadline = time.monotonic() + 30
    while any(tmp_path.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert list(tmp_path.iterdir()) == []
