"""Benchmark: prints ratios, asserts nothing. `make bench` runs it.

1. `vidpipe up` from cold (fresh data folder, ministack not running), and
   again when it is already up.
2. Upload-to-READY time of the longest sample through the local stack's HTTP
   API, divided by the time of ONE plain FFmpeg command making the same ladder
   (the same argument list the transcode function runs, without Lambda, S3 or
   events around it).
3. Upload throughput of a 1 GiB file through the API's multipart plan
   (4 parts in parallel, as `vidpipe submit` does), divided by boto3's own
   `upload_file` of the same file to the same endpoint.

Runs on a stack of its own (free port, temporary data folder). Then the
long-video stack run (scripts/stack_bench.py: 10-minute 720p, upload to READY ÷
one plain FFmpeg ladder) and the transcode benchmark (scripts/transcode_bench.py: single-process vs plain
FFmpeg, chunked CPU, early playback, thumbnails, the latency model), which
writes docs/PERFORMANCE.md, and the API and page benchmark
(scripts/api_bench.py: GET /jobs/{id}, GET /jobs, POST /uploads and the page's
first load in Chromium, idle and under a 30-job load)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT))

from scripts import api_bench, stack_bench, transcode_bench  # noqa: E402
from scripts.throwaway_stack import throwaway_stack  # noqa: E402
from transcode.domain_logic.hls import build_hls_args  # noqa: E402
from transcode.domain_logic.ladder import plan_ladder  # noqa: E402
from vidpipe.adapters.ffmpeg.probe import probe_media  # noqa: E402
from vidpipe.adapters.ffmpeg.process import ffmpeg_environment, find_tool  # noqa: E402
from vidpipe_cli.api_client import VidpipeClient  # noqa: E402

RUNS = int(os.environ.get("BENCH_RUNS", "3"))


def longest_sample() -> Path:
    samples = sorted((PROJECT_ROOT / "sample_media").glob("*.mp4"))
    return max(samples, key=lambda path: probe_media(path).duration_s)


def plain_ffmpeg_seconds(sample: Path) -> float:
    source = probe_media(sample)
    with tempfile.TemporaryDirectory() as output:
        args = build_hls_args(sample, source, plan_ladder(source), Path(output))
        started = time.perf_counter()
        command = [find_tool("ffmpeg"), "-hide_banner", "-loglevel", "error", "-y", *args]
        subprocess.run(command, env=ffmpeg_environment(), check=True)
        return time.perf_counter() - started


def multipart_vs_boto3(endpoints: dict, data_dir: str) -> tuple[float, float]:
    """Seconds for 1 GiB through our multipart upload, and through boto3's upload_file."""
    from vidpipe_cli.api_client import UploadJournal
    from vidpipe_cli.local_stack_settings import aws_client

    path = Path(data_dir) / "bench-1gib.mp4"
    with path.open("wb") as handle:
        for _ in range(64):
            handle.write(os.urandom(16 * 1024 * 1024))
    client = VidpipeClient(
        endpoints["api_url"],
        journal=UploadJournal(Path(data_dir) / "journal"),
        concurrency=4,
        token=endpoints["api_token"],
    )
    started = time.perf_counter()
    job_id = client.submit(path)
    ours = time.perf_counter() - started
    s3 = aws_client("s3", endpoints["aws_endpoint_url"])
    bucket = f"bench-{hashlib.sha256(job_id.encode()).hexdigest()[:12]}"
    s3.create_bucket(Bucket=bucket)
    started = time.perf_counter()
    s3.upload_file(str(path), bucket, "boto3-upload")
    theirs = time.perf_counter() - started
    # Let the pipeline fail the random bytes before the stack stops.
    client.wait(job_id, timeout_s=600)
    path.unlink()
    return ours, theirs


def main() -> None:
    sample = longest_sample()
    started = time.perf_counter()
    with throwaway_stack("vidpipe-bench-") as stack:
        cold_up = time.perf_counter() - started  # ministack not running, a fresh data folder
        started = time.perf_counter()
        stack.vidpipe("up", "--json")
        warm_up = time.perf_counter() - started
        endpoints = stack.endpoints
        client = VidpipeClient(endpoints["api_url"], token=endpoints["api_token"])
        # One job first so every function is warm, as in steady use.
        client.wait(client.submit(sample), timeout_s=600)
        pipeline = []
        for _ in range(RUNS):
            started = time.perf_counter()
            job = client.wait(client.submit(sample), timeout_s=600, poll_s=0.2)
            pipeline.append(time.perf_counter() - started)
            assert job["status"] == "READY", job
        ours, theirs = multipart_vs_boto3(endpoints, str(stack.data_dir))
    plain = [plain_ffmpeg_seconds(sample) for _ in range(RUNS)]
    duration = probe_media(sample).duration_s
    best_pipeline, best_plain = min(pipeline), min(plain)
    print(f"sample: {sample.name} ({duration:.1f} s), best of {RUNS} runs")
    print(f"vidpipe up from cold:             {cold_up:6.1f} s")
    print(f"vidpipe up when already up:       {warm_up:6.1f} s")
    print(f"upload to READY (local stack):    {best_pipeline:6.2f} s")
    print(f"one plain FFmpeg command, ladder: {best_plain:6.2f} s")
    print(f"ratio upload-to-READY / plain FFmpeg: {best_pipeline / best_plain:.2f}")
    print(f"1 GiB multipart, 4 parallel parts:  {ours:6.1f} s ({1024 / ours:5.0f} MiB/s)")
    print(f"1 GiB boto3 upload_file:            {theirs:6.1f} s ({1024 / theirs:5.0f} MiB/s)")
    print(f"ratio multipart throughput / boto3 upload_file: {theirs / ours:.2f}")
    # A 10-minute 720p source through a stack of its own, chunked, thumbnails included.
    stack_lines = stack_bench.run()
    transcode_bench.main(extra_sections=stack_lines)
    api_bench.main([])


if __name__ == "__main__":
    main()
