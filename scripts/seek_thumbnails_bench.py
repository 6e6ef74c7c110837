"""What the thumbnails stage's two ways cost (thumbnails/domain_logic/seek_grab.py):
one seek per tile (``PARALLEL_SEEKS`` FFmpeg runs at once) against downloading
and reading the file in one pass, on generated sources of a few lengths; and the
peak memory of the parallel seeks on a 4K source, summed over the FFmpeg runs
alive at each moment (what the 1024 MB function must hold). Prints figures;
asserts nothing. Local files stand for the upload's URL: the decode and memory
are the same, the network's share is not counted.

    .venv/bin/python -m scripts.seek_thumbnails_bench
"""

from __future__ import annotations

import functools
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from scripts.bench_sources import generate_test_pattern
from thumbnails.domain_logic.seek_grab import PARALLEL_SEEKS, make_thumbnails_by_seeks
from thumbnails.domain_logic.thumbnail_set import make_thumbnails
from vidpipe.adapters.ffmpeg.probe import probe_media

PAGE_BYTES = 4096


def ffmpeg_rss_bytes() -> int:
    """Resident memory of every FFmpeg process on the machine right now."""
    total = 0
    for status in Path("/proc").glob("[0-9]*/statm"):
        try:
            if (status.parent / "comm").read_text().strip() != "ffmpeg":
                continue
            total += int(status.read_text().split()[1]) * PAGE_BYTES
        except (OSError, IndexError, ValueError):
            continue  # the process ended while it was read
    return total


def peak_ffmpeg_memory(work: Callable[[], object]) -> tuple[float, int]:
    """Seconds ``work`` took and the highest summed FFmpeg memory while it ran."""
    peak, done = 0, threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, ffmpeg_rss_bytes())
            time.sleep(0.01)

    sampler = threading.Thread(target=sample)
    sampler.start()
    started = time.perf_counter()
    try:
        work()
    finally:
        elapsed = time.perf_counter() - started
        done.set()
        sampler.join()
    return elapsed, peak


def main() -> None:
    print(f"thumbnails by seeks ({PARALLEL_SEEKS} at once) against one pass over the file")
    print("| Source | One pass s | Seeks s | Seeks' peak FFmpeg memory MB |")
    print("| --- | --- | --- | --- |")
    cases = [(1280, 720, 20), (1280, 720, 120), (1920, 1080, 120), (3840, 2160, 60)]
    with tempfile.TemporaryDirectory(prefix="vidpipe-seek-bench-") as scratch:
        folder = Path(scratch)
        for width, height, seconds in cases:
            source_path = generate_test_pattern(
                folder, width=width, height=height, seconds=seconds, video_bitrate="6M", keyframe_every=60
            )
            source = probe_media(source_path)
            one_pass_s, _ = peak_ffmpeg_memory(
                functools.partial(make_thumbnails, source_path, folder / "one-pass", timeout_s=600, source=source)
            )
            seeks_s, peak = peak_ffmpeg_memory(
                functools.partial(
                    make_thumbnails_by_seeks, str(source_path), folder / "seeks", source=source, timeout_s=600
                )
            )
            print(f"| {height}p, {seconds} s | {one_pass_s:.2f} | {seeks_s:.2f} | {peak / 1e6:.0f} |")
            source_path.unlink()


if __name__ == "__main__":
    main()
