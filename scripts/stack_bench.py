"""The long-video run of `make bench` (issue 16): a generated 720p source of
``BENCH_STACK_SOURCE_S`` seconds (default 600) through the real local stack,
chunked path and thumbnails included, upload to READY, beside ONE plain FFmpeg
command making the same ladder of the same file in the same run (goal: ≤ 1.15).
Use a shorter source to check the script works. Asserts nothing."""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from pathlib import Path

from scripts.bench_sources import generate_test_pattern
from scripts.throwaway_stack import throwaway_stack
from transcode.domain_logic.hls import build_hls_args
from transcode.domain_logic.ladder import plan_ladder
from vidpipe.adapters.ffmpeg.probe import probe_media
from vidpipe.adapters.ffmpeg.process import ffmpeg_environment, find_tool
from vidpipe_cli.api_client import VidpipeClient

SOURCE_S = int(os.environ.get("BENCH_STACK_SOURCE_S", "600"))
GOAL = 1.15


def generate_720p(folder: Path) -> Path:
    """720p30 at 4 Mbit/s, stereo, a keyframe every two seconds: a screen or phone recording."""
    return generate_test_pattern(
        folder, width=1280, height=720, seconds=SOURCE_S, video_bitrate="4M", keyframe_every=60
    )


def plain_ladder_command(source_path: Path, output: Path) -> list[str]:
    source = probe_media(source_path)
    args = build_hls_args(source_path, source, plan_ladder(source), output)
    return [find_tool("ffmpeg"), "-hide_banner", "-loglevel", "error", "-y", *args]


def run() -> list[str]:
    """Run both, print and return the report's section (markdown lines)."""
    with tempfile.TemporaryDirectory(prefix="vidpipe-stack-bench-") as scratch:
        source_path = generate_720p(Path(scratch))
        with throwaway_stack("vidpipe-stack-bench-") as stack:
            endpoints = stack.endpoints
            client = VidpipeClient(endpoints["api_url"], token=endpoints["api_token"])
            started = time.perf_counter()
            job = client.wait(client.submit(source_path), timeout_s=3 * SOURCE_S + 600, poll_s=0.5)
            stack_s = time.perf_counter() - started
        command = plain_ladder_command(source_path, Path(scratch) / "plain")
        (Path(scratch) / "plain").mkdir()
        started = time.perf_counter()
        subprocess.run(command, env=ffmpeg_environment(), check=True)
        plain_s = time.perf_counter() - started
    ratio = stack_s / plain_s
    chunks = job.get("stages", {}).get("transcode", {}).get("chunks", {})
    shown = " ".join(arg if " " not in arg else repr(arg) for arg in command[:8]) + " ..."
    lines = [
        f"## {SOURCE_S // 60}-minute 720p through the local stack",
        "",
        f"Measured by `make bench` (scripts/stack_bench.py): `vidpipe submit` of a generated {SOURCE_S} s 720p30 "
        "file to a throwaway local stack (ministack, every function a local process on these cores), chunked "
        f"path ({chunks.get('total', '?')} chunks) and thumbnails included, until READY; then one plain FFmpeg "
        f"command making the same ladder of the same file (`{shown}`, the transcode function's own arguments).",
        "",
        "| Run | Wall s |",
        "| --- | --- |",
        f"| upload to READY, local stack (job {job.get('status')}) | {stack_s:.1f} |",
        f"| one plain FFmpeg ladder command | {plain_s:.1f} |",
        f"| ratio | {ratio:.2f} (goal ≤ {GOAL}: {'met' if ratio <= GOAL else 'NOT met'}) |",
        "",
    ]
    if job.get("status") != "READY":
        lines += [f"The job did not become READY: {job.get('error')}", ""]
    print("\n".join(lines))
    return lines


if __name__ == "__main__":
    # Alone: prints the section; `make bench` also writes it to docs/PERFORMANCE.md.
    run()
