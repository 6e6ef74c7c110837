"""Transcode benchmark (issue 5): ratios measured in one run on this machine,
printed and written to docs/PERFORMANCE.md. Asserts nothing; `make bench` runs
it (through scripts/bench.py), or alone: `python scripts/transcode_bench.py`.

Input: a generated 1080p30 clip with stereo audio and a keyframe every second
(``BENCH_SOURCE_S`` seconds, default 60; use a few seconds only to check the
script works). Measured, each by the code the functions run, without AWS:

1. single-process pipeline transcode (transcode_to_hls with early playback, as
   the transcode function calls it) ÷ one plain FFmpeg command for the same
   ladder (goal ≤ 1.10), wall time;
2. chunked total CPU (split + every chunk + stitch) ÷ the plain single pass's
   CPU (goal ≤ 1.05), from the children's rusage;
3. time to first playable ÷ time to READY for the single-process path (goal
   ≤ 0.35): lowest rung written ÷ whole ladder written;
4. thumbnails + sprite ÷ one full-rate decode of the same file (goal ≤ 0.1);
5. a latency model for a 60-minute 1080p source on Lambda at N parallel chunk
   functions, from the measured per-chunk, split and stitch times (goal ≤ 60 s).
"""

from __future__ import annotations

import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT))

from thumbnails.domain_logic.thumbnail_set import make_thumbnails  # noqa: E402
from transcode.domain_logic.chunking import ChunkedTimings, transcode_chunked  # noqa: E402
from transcode.domain_logic.hls import build_hls_args  # noqa: E402
from transcode.domain_logic.ladder import plan_ladder  # noqa: E402
from transcode.domain_logic.transcoding import transcode_to_hls  # noqa: E402
from vidpipe.media import find_tool, input_args, probe_media, run_ffmpeg  # noqa: E402

SOURCE_S = int(os.environ.get("BENCH_SOURCE_S", "60"))
CHUNK_S = int(os.environ.get("BENCH_CHUNK_S", "32" if SOURCE_S >= 64 else "8"))
RUNS = int(os.environ.get("BENCH_RUNS", "2"))
REPORT = PROJECT_ROOT / "docs" / "PERFORMANCE.md"
TIMEOUT_S = 3600.0

# Latency model assumptions (AWS facts and our own choices, not measurements).
LAMBDA_MB_PER_VCPU = 1769  # AWS: a function gets one vCPU per 1,769 MB
X264_SCALING = 0.8  # x264 speed-up per added core, relative to perfect scaling
MODEL_SOURCE_S = 3600
MODEL_SOURCE_MBPS = 8  # a typical 1080p upload
S3_MB_PER_S = 250  # one function's S3 throughput with parallel ranged GETs/PUTs
EVENT_HOPS_S = 2.0  # EventBridge → SQS → Lambda, for the orders and the stitch request
COLD_START_S = 1.5


@dataclass(frozen=True)
class Measured:
    wall_s: float
    cpu_s: float
    peak_rss_mb: float


def measure(run: Callable[[], Any]) -> tuple[Measured, Any]:
    """Wall time, CPU of the child processes (FFmpeg) and the largest child's peak
    RSS: the best (lowest) of RUNS runs, as other work on the machine only ever
    adds time. The result is the last run's."""
    best: Measured | None = None
    result = None
    for _ in range(RUNS):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        result = run()
        wall = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        this = Measured(wall, cpu, after.ru_maxrss / 1024)
        best = this if best is None else Measured(min(best.wall_s, wall), min(best.cpu_s, cpu), this.peak_rss_mb)
    assert best is not None
    return best, result


def generate_source(folder: Path) -> Path:
    """1080p30, stereo, a keyframe every second, about 8 Mbit/s: what a phone or camera uploads.
    (With keyframes sparser than the storyboard's tiles, the thumbnail stage falls
    back to decoding every reference frame: see thumbnails/domain_logic/frame_grab.py.)"""
    path = folder / f"bench_1080p_{SOURCE_S}s.mp4"
    subprocess.run(
        [find_tool("ffmpeg"), "-hide_banner", "-loglevel", "error", "-y",
         "-f", "lavfi", "-i", f"testsrc2=s=1920x1080:r=30:d={SOURCE_S}",
         "-f", "lavfi", "-i", f"sine=f=440:r=48000:d={SOURCE_S}",
         "-c:v", "libx264", "-preset", "ultrafast", "-b:v", "8M", "-g", "30", "-pix_fmt", "yuv420p",
         "-c:a", "aac", "-ac", "2", "-b:a", "128k", "-movflags", "+faststart", str(path)],
        check=True,
    )  # fmt: skip
    return path


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="vidpipe-transcode-bench-") as scratch:
        root = Path(scratch)
        source_path = generate_source(root)
        source = probe_media(source_path)
        ladder = plan_ladder(source)

        def plain() -> None:
            out = Path(tempfile.mkdtemp(dir=root))
            run_ffmpeg(build_hls_args(source_path, source, ladder, out), timeout_s=TIMEOUT_S)

        plain_m, _ = measure(plain)

        first_playable: list[float] = []
        started_at: list[float] = []

        def pipeline() -> None:
            started_at.append(time.perf_counter())
            transcode_to_hls(source_path, Path(tempfile.mkdtemp(dir=root)), timeout_s=TIMEOUT_S,
                             on_lowest_rung=lambda _: first_playable.append(time.perf_counter()))

        pipeline_m, _ = measure(pipeline)
        playable_s = min(playable - start for playable, start in zip(first_playable, started_at, strict=True))

        timings: list[ChunkedTimings] = []
        chunked_m, _ = measure(lambda: transcode_chunked(
            source_path, Path(tempfile.mkdtemp(dir=root)) / "hls", timeout_s=TIMEOUT_S, chunk_s=CHUNK_S,
            on_timings=timings.append,
        ))
        chunk_times = min(timings, key=lambda t: sum(t.chunks_s))

        thumbs_m, _ = measure(
            lambda: make_thumbnails(source_path, Path(tempfile.mkdtemp(dir=root)), timeout_s=TIMEOUT_S)
        )
        decode_m, _ = measure(lambda: run_ffmpeg([*input_args(source_path, source.demuxer), "-f", "null", "-"],
                                                 timeout_s=TIMEOUT_S))

    startup_s = ffmpeg_startup_s()
    cores = len(os.sched_getaffinity(0))
    ratios = {
        "pipeline": pipeline_m.wall_s / plain_m.wall_s,
        "pipeline_cpu": pipeline_m.cpu_s / plain_m.cpu_s,
        "chunked_cpu": chunked_m.cpu_s / plain_m.cpu_s,
        "playable": playable_s / pipeline_m.wall_s,
        "thumbnails": thumbs_m.wall_s / decode_m.wall_s,
        "thumbnails_cpu": thumbs_m.cpu_s / decode_m.cpu_s,
    }
    model = latency_model(chunk_times, cores, startup_s)
    report = render(ladder_names=[r.name for r in ladder], cores=cores, plain=plain_m, pipeline=pipeline_m,
                    playable_s=playable_s, chunked=chunked_m, chunk_times=chunk_times, thumbs=thumbs_m,
                    decode=decode_m, ratios=ratios, model=model)
    print(report)
    REPORT.write_text(report, encoding="utf-8")
    print(f"written to {REPORT.relative_to(PROJECT_ROOT)}")


@dataclass(frozen=True)
class ModelRow:
    memory_mb: int
    parallel: int
    chunk_s: float
    split_s: float
    wave_s: float
    waves: int
    total_s: float


def ffmpeg_startup_s() -> float:
    """Wall time of an FFmpeg run that does nothing: the fixed part of the split's time."""
    started = time.perf_counter()
    subprocess.run([find_tool("ffmpeg"), "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i",
                    "nullsrc=d=0.04", "-f", "null", "-"], check=True)  # fmt: skip
    return time.perf_counter() - started


def latency_model(timings: ChunkedTimings, cores: int, startup_s: float) -> list[ModelRow]:
    """Upload-complete to READY for a 60-minute 1080p source, at N chunk functions.

    From the measured per-chunk encode time on this machine's cores (scaled to
    the function's vCPUs with X264_SCALING), the measured split time (per source
    second: stream copy plus the one audio encode), S3 transfer of the source
    and of the chunks at S3_MB_PER_S, event hops and a cold start per wave."""
    per_chunk_here = sorted(timings.chunks_s)[len(timings.chunks_s) // 2]  # the median chunk
    # The split's time per source second, without FFmpeg's fixed start-up cost
    # (which a longer source does not multiply).
    split_per_source_s = max(0.0, timings.split_s - startup_s) / SOURCE_S
    source_mb = MODEL_SOURCE_S * MODEL_SOURCE_MBPS / 8
    split_s = source_mb / S3_MB_PER_S + split_per_source_s * MODEL_SOURCE_S + source_mb / S3_MB_PER_S
    chunks = math.ceil(MODEL_SOURCE_S / CHUNK_S)
    rows = []
    for memory_mb in (3008, 10240):
        vcpus = memory_mb / LAMBDA_MB_PER_VCPU
        speedup = 1 + (vcpus / cores - 1) * X264_SCALING if vcpus >= cores else vcpus / cores
        chunk_io_s = 2 * (CHUNK_S * MODEL_SOURCE_MBPS / 8) / S3_MB_PER_S
        wave_s = per_chunk_here / speedup + chunk_io_s + COLD_START_S
        for parallel in (10, 50, 120, 500):
            waves = math.ceil(chunks / parallel)
            total = split_s + EVENT_HOPS_S + waves * wave_s + timings.stitch_s + EVENT_HOPS_S
            rows.append(ModelRow(memory_mb, parallel, CHUNK_S, split_s, wave_s, waves, total))
    return rows


def render(**m: Any) -> str:
    r = m["ratios"]

    def goal(value: float, limit: float) -> str:
        return f"{value:.2f} (goal ≤ {limit}: {'met' if value <= limit else 'NOT met'})"

    ct: ChunkedTimings = m["chunk_times"]
    lines = [
        "# Performance",
        "",
        f"Written by `make bench` (scripts/transcode_bench.py) on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
        f"{m['cores']} CPU cores, FFmpeg from PATH. Source: generated 1080p30, stereo, keyframe every second, "
        f"{SOURCE_S} s ({', '.join(m['ladder_names'])}); chunks of {CHUNK_S} s. Best of {RUNS} runs, wall-clock and "
        "child-process CPU seconds; wall-clock ratios need a quiet machine.",
        "",
        "| Ratio | Value |",
        "| --- | --- |",
        f"| single-process pipeline ÷ one plain FFmpeg ladder (wall) | {goal(r['pipeline'], 1.10)} |",
        f"| the same in CPU seconds (the cost of the early-playback pass) | {r['pipeline_cpu']:.2f} |",
        f"| chunked total CPU ÷ single-pass CPU | {goal(r['chunked_cpu'], 1.05)} |",
        f"| time to first playable ÷ time to READY (single-process) | {goal(r['playable'], 0.35)} |",
        f"| thumbnails + sprite ÷ full-rate decode (wall) | {goal(r['thumbnails'], 0.1)} |",
        f"| the same in FFmpeg CPU seconds (the full decode uses every core; Pillow's work not counted) "
        f"| {r['thumbnails_cpu']:.2f} |",
        "",
        "| Step | Wall s | CPU s | Peak RSS of one FFmpeg, MB |",
        "| --- | --- | --- | --- |",
    ]
    for name, key in (("plain FFmpeg ladder", "plain"), ("pipeline (lowest rung first, then the rest)", "pipeline"),
                      ("chunked (split + chunks + stitch, one after another)", "chunked"),
                      ("thumbnails + sprite", "thumbs"), ("full-rate decode", "decode")):
        measured = m[key]
        lines.append(f"| {name} | {measured.wall_s:.2f} | {measured.cpu_s:.2f} | {measured.peak_rss_mb:.0f} |")
    lines += [
        "",
        f"First playable after {m['playable_s']:.2f} s of {m['pipeline'].wall_s:.2f} s. Chunked: split "
        f"{ct.split_s:.2f} s, chunks {', '.join(f'{t:.2f}' for t in ct.chunks_s)} s, stitch {ct.stitch_s:.3f} s.",
        "(Peak RSS is the largest child so far in the run, so rows after a bigger step repeat its figure.)",
        "",
        f"## Latency model: {MODEL_SOURCE_S // 60}-minute 1080p source on Lambda",
        "",
        f"Measured inputs: the median chunk's encode time ({sorted(ct.chunks_s)[len(ct.chunks_s) // 2]:.2f} s for "
        f"{CHUNK_S} s of 1080p on {m['cores']} cores) and the split time per source second. Assumed: one vCPU "
        f"per {LAMBDA_MB_PER_VCPU} MB, x264 gains {X264_SCALING:.0%} of each added core, {MODEL_SOURCE_MBPS} Mbit/s "
        f"source, {S3_MB_PER_S} MB/s S3 per function, {EVENT_HOPS_S:.0f} s per event hop, {COLD_START_S} s cold "
        "start per wave. The split (download, stream copy, audio encode, upload of the chunks) runs on one "
        "function before any chunk starts.",
        "",
        "| Memory MB | N functions | split s | per-chunk s | waves | upload-to-READY s | ≤ 60 s? |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in m["model"]:
        lines.append(f"| {row.memory_mb} | {row.parallel} | {row.split_s:.1f} | {row.wave_s:.1f} | {row.waves} | "
                     f"{row.total_s:.1f} | {'yes' if row.total_s <= 60 else 'no'} |")
    lines += [
        "",
        "The split on one function (moving the whole source through S3 twice) is the floor of this design; "
        "below it, chunk functions would have to read their byte ranges of the source themselves.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
