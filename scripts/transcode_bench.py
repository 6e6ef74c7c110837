"""Transcode benchmark (issue 5): ratios measured in one run on this machine,
printed and written to docs/PERFORMANCE.md. Asserts nothing; `make bench` runs
it (through scripts/bench.py), or alone: `python scripts/transcode_bench.py`.

Input: a generated 1080p30 clip with stereo audio and a keyframe every second
(``BENCH_SOURCE_S`` seconds, default 60; use a few seconds only to check the
script works). Measured, each by the code the functions run, without AWS:

1. single-process pipeline transcode (transcode_to_hls with the per-title
   analysis and early playback, as the transcode function calls it) ÷ one
   plain FFmpeg command for the same ladder (the CRF the analysis chose; goal
   ≤ 1.10), wall time; and the analysis's CPU ÷ that command's (goal ≤ 0.10);
2. chunked total CPU (plan + every chunk + stitch) ÷ the plain single pass's
   CPU (goal ≤ 1.05), from the children's rusage;
3. time to first playable ÷ time to READY for the single-process path (goal
   ≤ 0.35): lowest rung written ÷ whole ladder written;
4. thumbnails + sprite ÷ one full-rate decode of the same file (goal ≤ 0.1);
5. a latency model for a 60-minute 1080p source on Lambda at N parallel chunk
   functions, from the measured per-chunk, plan and stitch times (goal ≤ 60 s).
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

from scripts import cost_model  # noqa: E402
from scripts.bench_http import measure_url_probe  # noqa: E402
from scripts.bench_sources import generate_test_pattern  # noqa: E402
from thumbnails.domain_logic.seek_grab import PARALLEL_SEEKS, make_thumbnails_by_seeks  # noqa: E402
from thumbnails.domain_logic.thumbnail_set import make_thumbnails  # noqa: E402
from transcode.domain_logic.chunking import ChunkedTimings, transcode_chunked  # noqa: E402
from transcode.domain_logic.hls import DEFAULT_SEGMENT_S, build_hls_args  # noqa: E402
from transcode.domain_logic.ladder import plan_ladder  # noqa: E402
from transcode.domain_logic.title_analysis import analyse_title  # noqa: E402
from transcode.domain_logic.transcoding import transcode_to_hls  # noqa: E402
from vidpipe.adapters.ffmpeg.inputs import input_args  # noqa: E402
from vidpipe.adapters.ffmpeg.probe import probe_media  # noqa: E402
from vidpipe.adapters.ffmpeg.process import ffmpeg_environment, find_tool, run_ffmpeg  # noqa: E402
from vidpipe_cli.template import load_template  # noqa: E402

SOURCE_S = int(os.environ.get("BENCH_SOURCE_S", "60"))
CHUNK_S = int(os.environ.get("BENCH_CHUNK_S", "32" if SOURCE_S >= 64 else "8"))
RUNS = int(os.environ.get("BENCH_RUNS", "2"))
REPORT = PROJECT_ROOT / "docs" / "PERFORMANCE.md"
# From this heading on, PERFORMANCE.md is written by hand (the measurements behind constants and
# choices in the code); a new benchmark run replaces what comes before it and keeps the rest.
HAND_WRITTEN_HEADING = "## Measurements behind"
TIMEOUT_S = 3600.0

# Latency model assumptions (AWS facts and our own choices, not measurements).
LAMBDA_MB_PER_VCPU = 1769  # AWS: a function gets one vCPU per 1,769 MB
X264_SCALING = 0.8  # x264 speed-up per added core, relative to perfect scaling
MODEL_SOURCE_S = 3600
MODEL_SOURCE_MBPS = 8  # a typical 1080p upload
S3_MB_PER_S = 90  # one function's single-stream S3 GET or PUT
S3_REQUEST_S = 0.05  # one S3 request's latency (a ranged GET's first byte, a small PUT)
PUT_EVENTS_S = 0.03  # one PutEvents call
EVENT_HOP_S = 2.0  # EventBridge → SQS → Lambda (or → the status function)
COLD_START_S = 1.5
MODEL_CHUNK_S = (8, 16, 32)
MODEL_PARALLEL = (10, 120, 500)
# The chunk function's memory and the chunk length in infra/template.yaml, chosen
# from the cost and latency tables (template_choice_lines says why, with the figures).
# Read from the template, so the report explains what is deployed and cannot drift from it.
_TEMPLATE = load_template()
CHOSEN_MEMORY_MB = int(_TEMPLATE["Resources"]["ChunkEncodeFunction"]["Properties"]["MemorySize"])
CHOSEN_CHUNK_S = int(_TEMPLATE["Parameters"]["ChunkSeconds"]["Default"])
# Chunk functions one upload may take at once: AWS gives an account 1,000
# concurrent executions by default, shared by every upload and function.
SHARE_OF_CONCURRENCY = 120


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
    return generate_test_pattern(
        folder, width=1920, height=1080, seconds=SOURCE_S, video_bitrate="8M", keyframe_every=30
    )


def with_hand_written_sections(report: str, previous: str) -> str:
    """The new report followed by the previous file's hand-written sections, if it had any."""
    start = previous.find(HAND_WRITTEN_HEADING)
    if start < 0:
        return report
    return report.rstrip("\n") + "\n\n" + previous[start:]


def main(extra_sections: list[str] | None = None) -> None:
    """Measure, print and write docs/PERFORMANCE.md; ``extra_sections`` (markdown lines, the
    stack run) go after the model."""
    with tempfile.TemporaryDirectory(prefix="vidpipe-transcode-bench-") as scratch:
        root = Path(scratch)
        source_path = generate_source(root)
        source = probe_media(source_path)
        # The per-title analysis alone, then the ladder it chose: the plain FFmpeg
        # command encodes exactly that ladder, so the pipeline's ratio to it counts
        # the analysis (and the early-playback pass) as overhead.
        analysis_m, analysis = measure(lambda: analyse_title(
            source_path, source, plan_ladder(source)[0], Path(tempfile.mkdtemp(dir=root)), timeout_s=TIMEOUT_S,
            segment_s=DEFAULT_SEGMENT_S,
        ))  # fmt: skip
        ladder = plan_ladder(source, title_crf=analysis.crf)

        def plain() -> None:
            out = Path(tempfile.mkdtemp(dir=root))
            run_ffmpeg(build_hls_args(source_path, source, ladder, out), timeout_s=TIMEOUT_S)

        plain_m, _ = measure(plain)

        first_playable: list[float] = []
        started_at: list[float] = []

        def pipeline() -> None:
            started_at.append(time.perf_counter())
            transcode_to_hls(
                source_path,
                Path(tempfile.mkdtemp(dir=root)),
                timeout_s=TIMEOUT_S,
                on_lowest_rung=lambda _: first_playable.append(time.perf_counter()),
            )

        pipeline_m, _ = measure(pipeline)
        playable_s = min(playable - start for playable, start in zip(first_playable, started_at, strict=True))

        timings: list[ChunkedTimings] = []
        chunked_m, _ = measure(
            lambda: transcode_chunked(
                source_path,
                Path(tempfile.mkdtemp(dir=root)) / "hls",
                timeout_s=TIMEOUT_S,
                chunk_s=CHUNK_S,
                on_timings=timings.append,
            )
        )
        chunk_times = min(timings, key=lambda t: sum(t.chunks_s))

        probe_m = measure_url_probe(source_path, measure, TIMEOUT_S)

        thumbs_m, _ = measure(
            lambda: make_thumbnails(source_path, Path(tempfile.mkdtemp(dir=root)), timeout_s=TIMEOUT_S)
        )
        # The seeks on an hour-long file: each FFmpeg run reads the whole MP4 index
        # (108,000 samples an hour at 30 fps), which a 60 s file would hide.
        hour_path = repeated_copy(source_path, MODEL_SOURCE_S // SOURCE_S, root)
        hour_source = probe_media(hour_path)
        seeks_m, seeks_result = measure(lambda: make_thumbnails_by_seeks(
            str(hour_path), Path(tempfile.mkdtemp(dir=root)), source=hour_source, timeout_s=TIMEOUT_S))  # fmt: skip
        hour_path.unlink()
        decode_m, _ = measure(
            lambda: run_ffmpeg([*input_args(source_path, source.demuxer), "-f", "null", "-"], timeout_s=TIMEOUT_S)
        )

    startup_s = ffmpeg_startup_s()
    cores = len(os.sched_getaffinity(0))
    ratios = {
        "pipeline": pipeline_m.wall_s / plain_m.wall_s,
        "pipeline_cpu": pipeline_m.cpu_s / plain_m.cpu_s,
        "analysis_cpu": analysis_m.cpu_s / plain_m.cpu_s,
        "chunked_cpu": chunked_m.cpu_s / plain_m.cpu_s,
        "playable": playable_s / pipeline_m.wall_s,
        "thumbnails": thumbs_m.wall_s / decode_m.wall_s,
        "thumbnails_cpu": thumbs_m.cpu_s / decode_m.cpu_s,
    }
    model = latency_model(chunk_times, cores, startup_s, probe_m.wall_s)
    thumbnails_path_s = thumbnails_path_model(seeks_m.cpu_s / seeks_result.tile_count, seeks_result.tile_count)
    usage = cost_model.usage_per_minute(
        transcode_cpu_s=chunked_m.cpu_s * 60 / SOURCE_S,
        thumbnails_cpu_s=seeks_m.cpu_s * 60 / MODEL_SOURCE_S,  # the hour's seeks, per minute
        chunk_s=CHUNK_S, rungs=len(ladder), segment_s=DEFAULT_SEGMENT_S,
        output_mb=12 * 60 / 8, source_mb=MODEL_SOURCE_MBPS * 60 / 8,
    )  # fmt: skip
    costs = [cost_model.minute_cost(usage, memory_mb=mb) for mb in (1769, 3008, 10240)]
    cost_lines = cost_model.render_cost(usage, costs, CHOSEN_MEMORY_MB, [r.height for r in ladder])
    report = render(
        analysis=analysis_m,
        ladder_names=[r.name for r in ladder],
        crf=analysis.crf,
        cores=cores,
        plain=plain_m,
        pipeline=pipeline_m,
        playable_s=playable_s,
        chunked=chunked_m,
        chunk_times=chunk_times,
        thumbs=thumbs_m,
        decode=decode_m,
        ratios=ratios,
        model=model,
        startup_s=startup_s,
        url_probe_s=probe_m.wall_s,
        thumbnails_path_s=thumbnails_path_s,
    )
    choice_lines = template_choice_lines(model, costs)
    report = report.rstrip("\n") + "\n\n" + "\n".join([*cost_lines, *choice_lines, *(extra_sections or [])])
    print(report)
    previous = REPORT.read_text(encoding="utf-8") if REPORT.exists() else ""
    REPORT.write_text(with_hand_written_sections(report, previous), encoding="utf-8")
    print(f"written to {REPORT.relative_to(PROJECT_ROOT)}")


@dataclass(frozen=True)
class ModelRow:
    memory_mb: int
    parallel: int
    chunk_s: int
    chunks: int
    plan_s: float
    wave_s: float
    waves: int
    stitch_s: float
    total_s: float


def repeated_copy(source_path: Path, times: int, folder: Path) -> Path:
    """``source_path`` joined to itself ``times`` times without re-encoding (the concat
    demuxer, stream copy): a long file with a long file's index, made in seconds."""
    listing = folder / "repeat.txt"
    listing.write_text(f"file '{source_path}'\n" * times, encoding="utf-8")
    path = folder / f"repeated_{times}x_{source_path.name}"
    subprocess.run([find_tool("ffmpeg"), "-hide_banner", "-loglevel", "error", "-y", "-f", "concat", "-safe", "0",
                    "-i", str(listing), "-c", "copy", "-movflags", "+faststart", str(path)],
                   env=ffmpeg_environment(), check=True)  # fmt: skip
    return path


def ffmpeg_startup_s() -> float:
    """Wall time of an FFmpeg run that does nothing: the fixed part of every chunk's time."""
    started = time.perf_counter()
    subprocess.run([find_tool("ffmpeg"), "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i",
                    "nullsrc=d=0.04", "-f", "null", "-"], env=ffmpeg_environment(), check=True)  # fmt: skip
    return time.perf_counter() - started


def thumbnails_path_model(cpu_per_seek_s: float, tiles: int) -> float:
    """Upload-complete to "Thumbnails Completed" for the same 60-minute source:
    the thumbnails function runs beside the transcode, from the same upload
    event, and READY waits for both. It probes the URL and seeks once per tile,
    PARALLEL_SEEKS at a time, each costing the measured CPU of one seek (on an
    hour-long file's index) on the function's 1024 MB (0.58 vCPU) and two S3
    requests' latency."""
    vcpus = 1024 / LAMBDA_MB_PER_VCPU
    seeks_s = tiles * cpu_per_seek_s / vcpus + math.ceil(tiles / PARALLEL_SEEKS) * 2 * S3_REQUEST_S
    return EVENT_HOP_S + COLD_START_S + 3 * S3_REQUEST_S + seeks_s + EVENT_HOP_S


def latency_model(timings: ChunkedTimings, cores: int, startup_s: float, url_probe_s: float) -> list[ModelRow]:
    """Upload-complete to READY for a 60-minute 1080p MP4, at N chunk functions.

    The critical path, step by step (see docs/PERFORMANCE.md for the words):
    event to the transcode function; the plan (ffprobe of the URL: measured over
    HTTP on localhost, plus a few S3 requests' latency) and the orders (PutEvents, 16 at a time);
    event to the chunk functions; the waves of chunks, each reading its part of
    the source, encoding (the measured median chunk, scaled to the chunk length
    and to the function's vCPUs with X264_SCALING) and uploading its segments;
    the report and the stitch request (two hops); the stitch (one GET per chunk,
    16 at a time, plus the measured playlist writing); the completion to READY."""
    per_chunk_here = sorted(timings.chunks_s)[len(timings.chunks_s) // 2]  # the median chunk
    # Two FFmpeg runs per chunk (audio, then video): their start-up does not grow with the chunk.
    fixed_s = 2 * startup_s
    per_second_here = max(0.0, per_chunk_here - fixed_s) / CHUNK_S
    ladder_mbps = 12  # the five rungs' video and audio together (5000+2800+1400+800+400 k + audio)
    rows = []
    for memory_mb in (3008, 10240):
        vcpus = memory_mb / LAMBDA_MB_PER_VCPU
        speedup = 1 + (vcpus / cores - 1) * X264_SCALING if vcpus >= cores else vcpus / cores
        for chunk_s in MODEL_CHUNK_S:
            chunks = math.ceil(MODEL_SOURCE_S / chunk_s)
            # The probe reads the MP4's index: measured over HTTP here, plus S3's request latency.
            plan_s = url_probe_s + timings.plan_s + 3 * S3_REQUEST_S + math.ceil(chunks / 16) * PUT_EVENTS_S
            chunk_io_s = (S3_REQUEST_S + chunk_s * MODEL_SOURCE_MBPS / 8 / S3_MB_PER_S
                          + chunk_s * ladder_mbps / 8 / S3_MB_PER_S)  # fmt: skip
            wave_s = COLD_START_S + fixed_s + per_second_here * chunk_s / speedup + chunk_io_s
            stitch_s = math.ceil(chunks / 16) * S3_REQUEST_S + timings.stitch_s + S3_REQUEST_S
            for parallel in MODEL_PARALLEL:
                waves = math.ceil(chunks / parallel)
                total = (EVENT_HOP_S + COLD_START_S + plan_s + EVENT_HOP_S + waves * wave_s
                         + 2 * EVENT_HOP_S + stitch_s + EVENT_HOP_S)  # fmt: skip
                rows.append(ModelRow(memory_mb, parallel, chunk_s, chunks, plan_s, wave_s, waves, stitch_s, total))
    return rows


def template_choice_lines(model: list[ModelRow], costs: list[cost_model.MinuteCost]) -> list[str]:
    """Why the template's chunk memory and chunk length, from this run's latency and cost tables."""

    def row(memory_mb: int, chunk_s: int, parallel: int) -> ModelRow:
        return next(r for r in model if (r.memory_mb, r.chunk_s, r.parallel) == (memory_mb, chunk_s, parallel))

    shared = [r for r in model if r.parallel == SHARE_OF_CONCURRENCY]
    fastest_shared = min(shared, key=lambda r: r.total_s)
    chosen = row(CHOSEN_MEMORY_MB, CHOSEN_CHUNK_S, SHARE_OF_CONCURRENCY)
    short = row(CHOSEN_MEMORY_MB, min(MODEL_CHUNK_S), SHARE_OF_CONCURRENCY)
    widest = row(CHOSEN_MEMORY_MB, min(MODEL_CHUNK_S), max(MODEL_PARALLEL))
    by_memory = {cost.memory_mb: cost for cost in costs}
    smallest = min(by_memory)
    small_row = row(3008, CHOSEN_CHUNK_S, SHARE_OF_CONCURRENCY)
    return [
        "## Why the template's chunk memory and chunk length",
        "",
        f"`ChunkSeconds` {CHOSEN_CHUNK_S} and the chunk function's {CHOSEN_MEMORY_MB} MB, from the two tables above "
        f"(this run's figures). An upload rarely has the account to itself: AWS allows 1,000 concurrent executions "
        f"by default, so the model's middle column, {SHARE_OF_CONCURRENCY} functions for one upload, is the case "
        f"we size for. There, {CHOSEN_CHUNK_S} s chunks give {chosen.total_s:.1f} s to READY in {chosen.waves} "
        f"wave(s) against {short.total_s:.1f} s for {short.chunk_s} s chunks ({short.waves} waves), with a quarter "
        "of the chunks' fixed costs (cold starts, FFmpeg start-ups, requests, boundary overhead); "
        f"the fastest row at that width is {fastest_shared.memory_mb} MB, {fastest_shared.chunk_s} s "
        f"({fastest_shared.total_s:.1f} s). {min(MODEL_CHUNK_S)} s chunks win only when one upload may take "
        f"{max(MODEL_PARALLEL)} functions ({widest.total_s:.1f} s): set `ChunkSeconds` to "
        f"{min(MODEL_CHUNK_S)} for that.",
        "",
        f"Memory: {CHOSEN_MEMORY_MB} MB costs {by_memory[CHOSEN_MEMORY_MB].processing_usd:.5f} $ per source minute "
        f"against {by_memory[smallest].processing_usd:.5f} $ at {smallest} MB (x264 uses every vCPU, so the "
        f"GB-seconds barely grow) and finishes a wave in {chosen.wave_s:.1f} s against {small_row.wave_s:.1f} s "
        "at 3008 MB: the wait, not the bill, is what the larger size buys.",
        "",
    ]


def render(**m: Any) -> str:
    r = m["ratios"]

    def goal(value: float, limit: float) -> str:
        return f"{value:.2f} (goal ≤ {limit}: {'met' if value <= limit else 'NOT met'})"

    ct: ChunkedTimings = m["chunk_times"]
    lines = [
        "# Performance",
        "",
        f"Written by `make bench` (scripts/transcode_bench.py) on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
        f"{m['cores']} CPU cores, the Lambda layer's pinned FFmpeg 6.0. Source: generated 1080p30, stereo, "
        "keyframe every second, "
        f"{SOURCE_S} s ({', '.join(m['ladder_names'])}); chunks of {CHUNK_S} s. Best of {RUNS} runs, wall-clock and "
        "child-process CPU seconds; wall-clock ratios need a quiet machine.",
        "",
        "| Ratio | Value |",
        "| --- | --- |",
        f"| single-process pipeline ÷ one plain FFmpeg ladder (wall) | {goal(r['pipeline'], 1.10)} |",
        f"| the same in CPU seconds (the per-title analysis and the early-playback pass) | {r['pipeline_cpu']:.2f} |",
        f"| per-title analysis CPU ÷ the ladder's encode CPU (chose CRF {m['crf']:g}) "
        f"| {goal(r['analysis_cpu'], 0.10)} |",
        f"| chunked total CPU ÷ single-pass CPU | {goal(r['chunked_cpu'], 1.05)} |",
        f"| time to first playable ÷ time to READY (single-process) | {goal(r['playable'], 0.35)} |",
        f"| thumbnails + sprite ÷ full-rate decode (wall) | {goal(r['thumbnails'], 0.1)} |",
        f"| the same in FFmpeg CPU seconds (the full decode uses every core; Pillow's work not counted) "
        f"| {r['thumbnails_cpu']:.2f} |",
        "",
        "| Step | Wall s | CPU s | Peak RSS of one FFmpeg, MB |",
        "| --- | --- | --- | --- |",
    ]
    for name, key in (
        ("plain FFmpeg ladder", "plain"),
        ("per-title analysis", "analysis"),
        ("pipeline (analysis, then the lowest rung and the rest at once)", "pipeline"),
        ("chunked (plan + chunks + stitch, one after another)", "chunked"),
        ("thumbnails + sprite", "thumbs"),
        ("full-rate decode", "decode"),
    ):
        measured = m[key]
        lines.append(f"| {name} | {measured.wall_s:.2f} | {measured.cpu_s:.2f} | {measured.peak_rss_mb:.0f} |")
    lines += [
        "",
        f"First playable after {m['playable_s']:.2f} s of {m['pipeline'].wall_s:.2f} s. Chunked: plan "
        f"{ct.plan_s:.3f} s, chunks {', '.join(f'{t:.2f}' for t in ct.chunks_s)} s, stitch {ct.stitch_s:.3f} s.",
        "(Peak RSS is the largest child so far in the run, so rows after a bigger step repeat its figure.)",
        "",
        f"## Latency model: {MODEL_SOURCE_S // 60}-minute 1080p source on Lambda",
        "",
        f"Measured inputs: the median chunk's time ({sorted(ct.chunks_s)[len(ct.chunks_s) // 2]:.2f} s for "
        f"{CHUNK_S} s of 1080p on {m['cores']} cores: its audio, then all five rungs), FFmpeg's start-up "
        f"({m['startup_s']:.3f} s, twice per chunk), ffprobe of the source's URL over HTTP ({m['url_probe_s']:.3f} s), "
        f"the plan ({ct.plan_s:.3f} s) and the stitch "
        f"({ct.stitch_s:.3f} s). Assumed: one vCPU per {LAMBDA_MB_PER_VCPU} MB, x264 gains {X264_SCALING:.0%} of "
        f"each added core, an MP4 at {MODEL_SOURCE_MBPS} Mbit/s, {S3_MB_PER_S} MB/s and {S3_REQUEST_S} s per "
        f"request to S3, {PUT_EVENTS_S} s per PutEvents, {EVENT_HOP_S:.0f} s per event hop, {COLD_START_S} s "
        "cold start per wave.",
        "",
        "Critical path: event to the transcode function, cold start; the plan (ffprobe of the upload's URL, "
        "no download) and the chunk orders, 16 at a time; event to the chunk functions; the waves of chunks, each "
        "cold-starting, reading only its part of the upload by ranged GETs, encoding its audio and its five rungs, "
        "uploading its segments; two hops (chunk report to the status function, stitch request to a chunk "
        "function); the stitch (one GET per chunk, 16 at a time; playlists only); one hop to READY.",
        "",
        "| Memory MB | chunk s | chunks | N functions | plan s | per wave s | waves | stitch s | upload-to-READY s "
        "| ≤ 60 s? |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in m["model"]:
        lines.append(
            f"| {row.memory_mb} | {row.chunk_s} | {row.chunks} | {row.parallel} | {row.plan_s:.1f} | "
            f"{row.wave_s:.1f} | {row.waves} | {row.stitch_s:.1f} | {row.total_s:.1f} | "
            f"{'yes' if row.total_s <= 60 else 'no'} |"
        )
    best = min(m["model"], key=lambda row: row.total_s)
    thumbnails_s = m["thumbnails_path_s"]
    ready_s = max(best.total_s, thumbnails_s)
    lines += [
        "",
        f"Best transcode path: {best.total_s:.1f} s with {best.parallel} functions of {best.memory_mb} MB on "
        f"{best.chunk_s} s chunks ({best.chunks} chunks, {best.waves} wave(s)).",
        "",
        f"The thumbnails stage runs beside it from the same upload event, and READY waits for both. For this source "
        "seeks once per tile over the upload's URL (thumbnails/domain_logic/seek_grab.py), reading only those "
        f"keyframes: about {thumbnails_s:.1f} s (the measured CPU of one seek on an hour-long file × its tiles "
        "on 0.58 vCPU, "
        f"{PARALLEL_SEEKS} at a time, plus two hops). Upload-to-READY, thumbnails included: "
        f"{ready_s:.1f} s (goal ≤ 30 s: {'met' if ready_s <= 30 else 'NOT met'}).",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
