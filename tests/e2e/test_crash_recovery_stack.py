"""The local stack killed with SIGKILL (an out-of-memory kill, a machine that
loses power) loses no job: after `vidpipe up`, every job acknowledged more than
2 s before the kill is there with its outputs, and the jobs that were being
processed finish READY.

(A clean `vidpipe down` / `up` in the middle of a batch was tested here before;
a kill in the middle of a batch is the harder case of the same promise.)"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest
import requests

# Two hard kills and restarts take about two minutes on 2 cores: run by `make reliability`
# (and `pytest -m long_stack`), not by `make test`, which must stay within CI's 15 minutes.
pytestmark = [pytest.mark.stack, pytest.mark.ffmpeg, pytest.mark.long_stack]

SAMPLE_MEDIA = Path(__file__).resolve().parents[2] / "sample_media"
# A batch of three small clips: enough to be caught mid-way by the kill.
BATCH = [SAMPLE_MEDIA / name for name in ("tiny_160x90.mp4", "no_audio.mp4", "portrait_rotated.mp4")]
ACKNOWLEDGED_BEFORE_KILL_S = 2.5


def job_of(local_stack: Any, job_id: str) -> dict[str, Any] | None:
    """The job, or None while the restarted stack is too busy to answer (a
    restart starts every function's workers at once)."""
    try:
        response = local_stack.http.get(f"{local_stack.api_url}/jobs/{job_id}", timeout=60)
    except requests.RequestException:
        return None
    return response.json() if response.status_code == 200 else {"status": f"HTTP {response.status_code}"}


def wait_until_the_api_answers(local_stack: Any, timeout_s: float = 300) -> None:
    """A (re)started stack starts its API's function workers on the first calls,
    which on a busy 2-core machine outlast the command line's 30 s per call."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if local_stack.http.get(f"{local_stack.api_url}/jobs", timeout=120).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(1)
    raise AssertionError(f"the API did not answer within {timeout_s:.0f} s")


def kill_stack(local_stack: Any) -> None:
    """SIGKILL ministack: no shutdown, no save; its Lambda workers are left running."""
    pid = int((Path(local_stack.environment["VIDPIPE_DATA_DIR"]) / "ministack.pid").read_text())
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            return  # gone and reaped
        if state == "Z":
            return  # dead, waiting for whoever adopted it to reap it
        time.sleep(0.1)
    raise AssertionError(f"ministack (pid {pid}) still runs after SIGKILL")


def up_after_kill(local_stack: Any) -> str:
    up = local_stack.vidpipe("up", "--json", timeout=600)
    assert up.returncode == 0, up.stderr
    assert "recovered from an unclean stop" in up.stderr, up.stderr
    wait_until_the_api_answers(local_stack)
    return up.stderr


def wait_for_final(local_stack: Any, job_ids: list[str], timeout_s: float = 400) -> dict[str, str]:
    deadline = time.monotonic() + timeout_s
    finals: dict[str, str] = {}
    while time.monotonic() < deadline and len(finals) < len(job_ids):
        for job_id in set(job_ids) - set(finals):
            status = (job_of(local_stack, job_id) or {}).get("status", "")
            if status in ("READY", "FAILED", "EXPIRED") or status.startswith("HTTP 4"):  # HTTP 404: lost
                finals[job_id] = status
        time.sleep(1)
    return finals


def test_GIVEN_a_job_READY_a_few_seconds_WHEN_the_stack_is_killed_and_up_again_THEN_the_job_and_its_outputs_are_there(
    local_stack,
) -> None:
    # GIVEN a job that became READY a few seconds ago
    wait_until_the_api_answers(local_stack)
    submitted = local_stack.vidpipe("submit", str(BATCH[0]), "--wait", "--json", timeout=600)
    assert submitted.returncode == 0, submitted.stderr
    job_id = json.loads(submitted.stdout)[0]["job_id"]
    time.sleep(3)
    # WHEN the stack is killed with SIGKILL and started again
    kill_stack(local_stack)
    report = up_after_kill(local_stack)
    # THEN the job is there, READY, and its outputs answer
    finals = wait_for_final(local_stack, [job_id], timeout_s=120)
    assert finals == {job_id: "READY"}, report
    outputs = job_of(local_stack, job_id)["outputs"]  # type: ignore[index]
    for url in (outputs["hls_url"], outputs["poster_url"]):
        assert requests.get(url, timeout=30).status_code == 200, url
    assert "READY" in report  # `vidpipe up` said what it found


def test_GIVEN_a_batch_being_processed_WHEN_the_stack_is_killed_and_up_again_THEN_every_job_ends_READY(
    local_stack,
) -> None:
    # GIVEN a batch uploaded more than 2 s ago, with processing under way
    wait_until_the_api_answers(local_stack)
    submitted = local_stack.vidpipe("submit", *map(str, BATCH), "--json", timeout=300)
    assert submitted.returncode == 0, submitted.stderr
    acknowledged_at = time.monotonic()
    job_ids = [job["job_id"] for job in json.loads(submitted.stdout)]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if any((job_of(local_stack, j) or {}).get("status") == "PROCESSING" for j in job_ids):
            break
        time.sleep(0.3)
    time.sleep(max(0.0, ACKNOWLEDGED_BEFORE_KILL_S - (time.monotonic() - acknowledged_at)))
    # WHEN the stack is killed with SIGKILL in the middle of it and started again
    kill_stack(local_stack)
    report = up_after_kill(local_stack)
    # THEN every job of the batch is there and finishes READY
    finals = wait_for_final(local_stack, job_ids)
    assert finals == {job_id: "READY" for job_id in job_ids}, report
