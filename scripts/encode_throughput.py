"""Measure the throughputs behind transcode.domain_logic.encode_cost (issue 12, part 5).

Generates a 1080p30 source like a camera's (testsrc2 with temporal grain,
H.264 at 20 Mbit/s, a keyframe every second), then, with the FFmpeg the
project finds (set FFMPEG_PATH to the layer's static 6.0):

* decodes it to nothing: source pixels per CPU-second of the decode;
* decodes it through the ladder's filter graph (fps, split, one scale per
  rung) to nothing: the CPU beyond the decode, per source pixel per rung
  (each rung's scaler reads the whole source picture), is the scaling's;
* encodes the default ladder with the pipeline's own argument list
  (x264 ``veryfast``, five rungs): the CPU beyond decode and scaling, per
  output pixel, is the encode's (x264 and the muxer).

CPU seconds are the child processes' user + system time (what a Lambda's
vCPUs are busy with), the lowest of ``RUNS`` runs. Run it on a quiet machine:
``FFMPEG_PATH=... FFPROBE_PATH=... GCONV_PATH=/nonexistent python -m scripts.encode_throughput``.
"""

from __future__ import annotations

import resource
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from transcode.domain_logic.hls import build_hls_args, ladder_filter_graph
from transcode.domain_logic.ladder import plan_ladder
from vidpipe.adapters.ffmpeg.inputs import input_args
from vidpipe.adapters.ffmpeg.probe import probe_media
from vidpipe.adapters.ffmpeg.process import ffmpeg_environment, find_tool, run_ffmpeg
from vidpipe.domain.filter_graph import FilterGraph

SOURCE_S = 10
RUNS = 2
TIMEOUT_S = 600.0


def child_cpu_s(run: Callable[[], None]) -> float:
    """The lowest CPU seconds of the children over RUNS runs of ``run``."""
    best = float("inf")
    for _ in range(RUNS):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        run()
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        best = min(best, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime))
    return best


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="vidpipe-throughput-") as scratch:
        root = Path(scratch)
        source_path = root / "source.mp4"
        subprocess.run(
            [find_tool("ffmpeg"), "-hide_banner", "-loglevel", "error", "-y",
             "-f", "lavfi", "-i", f"testsrc2=s=1920x1080:r=30:d={SOURCE_S},noise=alls=8:allf=t",
             "-c:v", "libx264", "-preset", "ultrafast", "-b:v", "20M", "-g", "30", "-pix_fmt", "yuv420p",
             str(source_path)],
            check=True, env=ffmpeg_environment(),
        )  # fmt: skip
        source = probe_media(source_path)
        ladder = plan_ladder(source)
        frames = round(source.frame_rate * SOURCE_S)
        source_pixels = frames * source.width * source.height
        output_pixels = frames * sum(rendition.width * rendition.height for rendition in ladder)

        decode_cpu = child_cpu_s(
            lambda: run_ffmpeg([*input_args(source_path, source.demuxer), "-f", "null", "-"], timeout_s=TIMEOUT_S)
        )

        graph = FilterGraph()
        video = graph.add_input(input_args(source_path, source.demuxer))["v:0"]
        compiled = graph.compile(ladder_filter_graph(video, ladder, source.frame_rate))
        outputs = [arg for rung in compiled.outputs for arg in ("-map", rung)]
        scale_cpu = (
            child_cpu_s(
                lambda: run_ffmpeg(
                    [*compiled.args, *outputs, "-f", "null", "-"],
                    timeout_s=TIMEOUT_S,
                )
            )
            - decode_cpu
        )
        scaled_pixels = source_pixels * len(ladder)

        def ladder_run() -> None:
            out = Path(tempfile.mkdtemp(dir=root))
            run_ffmpeg(build_hls_args(source_path, source, ladder, out), timeout_s=TIMEOUT_S)

        ladder_cpu = child_cpu_s(ladder_run)
        encode_cpu = ladder_cpu - decode_cpu - scale_cpu
        print(f"ffmpeg: {find_tool('ffmpeg')}")
        print(f"source: {source.width}x{source.height} {frames} frames; ladder {[r.name for r in ladder]}")
        print(f"decode: {decode_cpu:.2f} CPU-s, {source_pixels / decode_cpu / 1e6:.0f} Mpixel per CPU-second")
        print(
            f"scale: {scale_cpu:.2f} CPU-s, {scaled_pixels / scale_cpu / 1e6:.0f} Mpixel (source, per rung) per CPU-s"
        )
        print(f"ladder: {ladder_cpu:.2f} CPU-s, of which encode {encode_cpu:.2f} CPU-s")
        print(f"encode: {output_pixels / encode_cpu / 1e6:.1f} Mpixel (output) per CPU-second")


if __name__ == "__main__":
    main()
