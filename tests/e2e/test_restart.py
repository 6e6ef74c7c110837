"""Stopping and restarting the local stack in the middle of a batch loses no
job: each one finishes."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import requests

pytestmark = [pytest.mark.stack, pytest.mark.ffmpeg]

# A batch of three small clips: enough to be caught mid-way by the restart; every
# sample of the folder made this the slowest test of the suite without proving more.
SAMPLES = [
    Path(__file__).resolve().parents[2] / "sample_media" / name
    for name in ("tiny_160x90.mp4", "no_audio.mp4", "portrait_rotated.mp4")
]


def status_of(local_stack, job_id: str) -> str | None:
    """The job's status, or None while the restarted stack is too busy to answer
    (a restart starts every function's workers at once)."""
    try:
        return local_stack.http.get(f"{local_stack.api_url}/jobs/{job_id}", timeout=60).json()["status"]
    except requests.RequestException:
        return None


def test_a_restart_in_the_middle_of_a_batch_loses_no_job(local_stack) -> None:
    # GIVEN a batch uploaded, with processing under way
    submitted = local_stack.vidpipe("submit", *map(str, SAMPLES), "--json", timeout=300)
    assert submitted.returncode == 0, submitted.stderr
    job_ids = [job["job_id"] for job in json.loads(submitted.stdout)]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        statuses = [status_of(local_stack, j) for j in job_ids]
        if "PROCESSING" in statuses:
            break
        time.sleep(0.3)
    # WHEN the stack is stopped and started again
    assert local_stack.vidpipe("down", timeout=120).returncode == 0
    up = local_stack.vidpipe("up", "--json", timeout=600)
    assert up.returncode == 0, up.stderr
    # THEN every job of the batch still finishes READY
    deadline = time.monotonic() + 400
    finals: dict[str, str] = {}
    while time.monotonic() < deadline and len(finals) < len(job_ids):
        for job_id in job_ids:
            status = status_of(local_stack, job_id)
            if status in ("READY", "FAILED", "EXPIRED"):
                finals[job_id] = status
        time.sleep(1)
    assert finals == {job_id: "READY" for job_id in job_ids}, statuses
