"""Faults on the local stack: a transcode killed mid-way is retried and
finishes; one killed on every attempt ends FAILED with the reason, its message
in the dead-letter queue, and `vidpipe redrive` sends it back. A function that
dies without a word (its whole worker killed, as Lambda does past its timeout)
has its message back within one lease, not the queue's 90-minute visibility."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import boto3
import pytest

pytestmark = [pytest.mark.stack, pytest.mark.ffmpeg]

SAMPLE = Path(__file__).resolve().parents[2] / "sample_media" / "landscape_16x9_stereo.mp4"


def ffmpeg_pids_of(job_id: str) -> list[int]:
    """FFmpeg processes encoding this job's ladder (their input path names the job)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        # The ladder's encode (it writes HLS), not the per-title analysis before it:
        # an analysis that dies only falls back to the default quality level.
        if (
            command
            and command[0].endswith(b"ffmpeg")
            and any(f"transcode-{job_id}".encode() in a for a in command)
            and b"hls" in command
        ):
            found.append(int(entry.name))
    return found


def wait_until_no_ffmpeg_of(job_id: str, *, quiet_s: float = 1.0, timeout_s: float = 30.0) -> None:
    """Until none of the job's FFmpeg processes has run for ``quiet_s``: an
    attempt with early playback runs two at once, and after one is killed the
    other stops at its next progress line. The retry comes only after the
    queue's backoff or lease (seconds), so a quiet second ends the attempt."""
    deadline = time.monotonic() + timeout_s
    quiet_since = time.monotonic()
    while time.monotonic() < deadline:
        if ffmpeg_pids_of(job_id):
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since >= quiet_s:
            return
        time.sleep(0.02)
    raise AssertionError(f"FFmpeg of job {job_id} still running after {timeout_s} s")


class FfmpegKiller(threading.Thread):
    """Kills the job's transcoding FFmpeg processes (one or two: early playback
    runs the lowest rung's pass beside the rest) on each attempt that starts
    them, up to ``times`` attempts; ``killed`` counts the attempts."""

    def __init__(self, job_id: str, times: int) -> None:
        super().__init__(daemon=True)
        self.job_id, self.times, self.killed, self.stop = job_id, times, 0, threading.Event()

    def run(self) -> None:
        while not self.stop.is_set() and self.killed < self.times:
            hit = False
            for pid in ffmpeg_pids_of(self.job_id):
                try:
                    os.kill(pid, signal.SIGKILL)
                    hit = True
                except ProcessLookupError:
                    pass
            if hit:
                self.killed += 1
                # the same attempt's other pass, if it was starting, ends on its own
                wait_until_no_ffmpeg_of(self.job_id)
            time.sleep(0.02)


def aws(stack, service: str):
    return boto3.client(
        service,
        endpoint_url=stack.aws_endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )


def parent_of(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rpartition(")")[2].split()[1])


class WorkerKiller(threading.Thread):
    """Kills the Lambda worker process running the job's transcode (FFmpeg's
    parent) and FFmpeg with it, once: the function dies without reporting
    anything, as when Lambda ends it at its timeout."""

    def __init__(self, job_id: str) -> None:
        super().__init__(daemon=True)
        self.job_id, self.killed_at, self.worker_command, self.stop = job_id, 0.0, b"", threading.Event()

    def run(self) -> None:
        while not self.stop.is_set() and not self.killed_at:
            for pid in ffmpeg_pids_of(self.job_id):
                try:
                    worker = parent_of(pid)
                    if worker == 1:
                        continue  # an FFmpeg whose worker has just been killed, about to die with it
                    self.worker_command = Path(f"/proc/{worker}/cmdline").read_bytes()
                    os.kill(worker, signal.SIGKILL)
                    os.kill(pid, signal.SIGKILL)
                except (OSError, ValueError):
                    continue
                self.killed_at = time.monotonic()
                break
            time.sleep(0.02)


def upload(local_stack) -> str:
    submitted = local_stack.vidpipe("submit", str(SAMPLE), "--json", timeout=300)
    assert submitted.returncode == 0, submitted.stderr
    return str(json.loads(submitted.stdout)[0]["job_id"])


def wait_final(local_stack, job_id: str, timeout_s: float = 300) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job = local_stack.http.get(f"{local_stack.api_url}/jobs/{job_id}", timeout=60).json()
        if job["status"] in ("READY", "FAILED", "EXPIRED"):
            return job
        time.sleep(1)
    raise AssertionError(f"job {job_id} did not finish within {timeout_s} s")


def test_a_transcode_killed_mid_way_is_retried_and_finishes(local_stack) -> None:
    job_id = upload(local_stack)
    killer = FfmpegKiller(job_id, times=1)
    killer.start()
    job = wait_final(local_stack, job_id)
    killer.stop.set()
    assert killer.killed == 1, "FFmpeg was never caught running"
    assert job["status"] == "READY", job


def test_a_transcode_whose_function_dies_without_a_word_is_retried_within_one_lease(local_stack) -> None:
    # GIVEN a job whose transcode worker is killed while FFmpeg runs
    job_id = upload(local_stack)
    killer = WorkerKiller(job_id)
    killer.start()

    # WHEN the stack carries on
    job = wait_final(local_stack, job_id)
    killer.stop.set()

    # THEN the message came back after the lease (10 s on the test stack), not
    # after the queue's 90-minute visibility timeout, and the retry finished it
    assert killer.killed_at, "the transcode was never caught running"
    assert killer.worker_command.split(b"\0")[1:3] != [b"-m", b"ministack"], "killed ministack, not a worker"
    assert job["status"] == "READY", job
    assert job["stages"]["transcode"]["status"] == "COMPLETED"


# Three attempts and their backoff (~30 s): run by `make reliability`, not `make test` (CI's
# 15 minutes). The sweep test below covers the dead-letter queue and redrive in `make test`.
@pytest.mark.long_stack
def test_a_transcode_killed_on_every_attempt_fails_the_job_and_lands_in_the_dlq(local_stack) -> None:
    job_id = upload(local_stack)
    killer = FfmpegKiller(job_id, times=3)  # maxReceiveCount of the transcode queue
    killer.start()
    job = wait_final(local_stack, job_id)
    killer.stop.set()
    assert job["status"] == "FAILED", job
    assert job["error"]["code"] == "FFMPEG_ERROR"
    assert "gave up after 3 attempts" in job["error"]["message"]
    # the message waits in the dead-letter queue, and redrive sends it back
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        counted = local_stack.vidpipe("redrive", "--queue", "transcode", "--dry-run", timeout=120)
        if "'transcode': 1" in counted.stdout:
            break
        time.sleep(1)
    assert "'transcode': 1" in counted.stdout, counted.stdout
    redriven = local_stack.vidpipe("redrive", "--queue", "transcode", timeout=120)
    assert "transcode: 1 message(s) sent back" in redriven.stdout, redriven.stdout + redriven.stderr


def test_a_transcode_that_dies_on_every_attempt_is_failed_by_the_sweep_and_redrive_finishes_it(local_stack) -> None:
    # GIVEN a job whose transcode worker is killed on each of its 3 attempts, so
    # no attempt reports anything and the message goes to the dead-letter queue
    job_id = upload(local_stack)
    killers = []
    for _ in range(3):
        killer = WorkerKiller(job_id)
        killer.start()
        killer.join(timeout=120)
        killers.append(killer)
        # the killed worker's FFmpeg processes die with it (not orphans the next killer would find)
        wait_until_no_ffmpeg_of(job_id)
    assert all(k.killed_at for k in killers), "an attempt was never caught running"
    cloudformation = aws(local_stack, "cloudformation")

    def resource(logical_id: str) -> str:
        found = cloudformation.describe_stack_resource(StackName="vidpipe", LogicalResourceId=logical_id)
        return str(found["StackResourceDetail"]["PhysicalResourceId"])

    # WHEN the message has reached the dead-letter queue and the sweep runs
    sweep = {
        "version": "0",
        "id": "test",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "000000000000",
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "region": "us-east-1",
        "resources": [],
        "detail": {},
    }
    # (the scheduled sweep, every 5 minutes, may get there first: either run's verdict counts)
    deadline, result, job = time.monotonic() + 90, {}, {}
    while time.monotonic() < deadline:
        answer = aws(local_stack, "lambda").invoke(
            FunctionName=resource("SweepFunction"), Payload=json.dumps(sweep).encode()
        )
        result = json.loads(answer["Payload"].read())
        job = local_stack.http.get(f"{local_stack.api_url}/jobs/{job_id}", timeout=60).json()
        if job["status"] == "FAILED":
            break
        time.sleep(3)

    # THEN the job is FAILED with the reason at once (not after the stall
    # limit), and the message is still in the dead-letter queue for redrive
    assert job["status"] == "FAILED", (job, result)
    assert job["error"]["code"] == "DEAD_LETTERED"
    assert "transcode stage gave up after 3 attempts" in job["error"]["message"]
    counted = local_stack.vidpipe("redrive", "--queue", "transcode", "--dry-run", timeout=120)
    assert "'transcode': 1" in counted.stdout, counted.stdout

    # AND WHEN the message is sent back once the cause is gone
    redriven = local_stack.vidpipe("redrive", "--queue", "transcode", timeout=120)
    assert "transcode: 1 message(s) sent back" in redriven.stdout, redriven.stdout + redriven.stderr

    # THEN the finished transcode overrides the sweep's verdict: the job is READY
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and job["status"] != "READY":
        time.sleep(1)
        job = local_stack.http.get(f"{local_stack.api_url}/jobs/{job_id}", timeout=60).json()
    assert job["status"] == "READY" and job["error"] is None, job
