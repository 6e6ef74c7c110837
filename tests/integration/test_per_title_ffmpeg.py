"""Real FFmpeg (the layer's build, with libvmaf): the per-title analysis tells
easy content from hard content, and the pipeline encodes the CRF it chose on
the single-process and the chunked path alike."""

from __future__ import annotations

import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from transcode.domain_logic.chunking import transcode_chunked
from transcode.domain_logic.hls import MEDIA_PLAYLIST_NAME
from transcode.domain_logic.ladder import DEFAULT_LADDER, MAX_CRF, RateControl, plan_ladder
from transcode.domain_logic.title_analysis import analyse_title
from transcode.domain_logic.transcoding import transcode_to_hls
from vidpipe.adapters.ffmpeg.probe import probe_media
from vidpipe.adapters.ffmpeg.process import ffmpeg_environment, find_tool

pytestmark = pytest.mark.ffmpeg

TIMEOUT_S = 180.0
# The clips are 4 s at 360p, too short for the analysis to pay for itself in a
# deployment (see worth_analysing); these tests want it to run anyway.
ALWAYS_ANALYSE = replace(DEFAULT_LADDER, analysis_cost_share=float("inf"))


def make_clip(path: Path, picture: str) -> Path:
    """4 s of 640x360 at 25 fps, a keyframe a second, as a camera would write it."""
    subprocess.run(
        [find_tool("ffmpeg"), "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i", picture,
         "-t", "4", "-c:v", "libx264", "-preset", "veryfast", "-crf", "14", "-g", "25", "-pix_fmt", "yuv420p",
         str(path)],
        check=True, env=ffmpeg_environment(),
    )  # fmt: skip
    return path


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("per-title")
    return {
        # A slide: one still picture.
        "easy": make_clip(folder / "easy.mp4", "testsrc=s=640x360:r=1/4,fps=25"),
        # Fresh noise on every frame over moving colour: nothing repeats.
        "hard": make_clip(folder / "hard.mp4", "testsrc2=s=640x360:r=25,noise=alls=30:allf=t+u"),
    }


def segment_bits(folder: Path) -> int:
    return sum(segment.stat().st_size * 8 for segment in folder.glob("*.ts"))


def test_GIVEN_a_slide_and_noisy_motion_WHEN_analysed_THEN_the_slide_gets_a_far_higher_crf(
    clips: dict[str, Path], tmp_path: Path
) -> None:
    chosen = {}
    for name, path in clips.items():
        source = probe_media(path)
        analysis = analyse_title(path, source, plan_ladder(source)[0], tmp_path / name, timeout_s=TIMEOUT_S,
                                 segment_s=4)  # fmt: skip
        # Every probe was really scored, and a higher CRF never scores better by much.
        assert all(0 < probe.vmaf <= 100 for probe in analysis.probes)
        assert analysis.probes[0].kbps > analysis.probes[1].kbps
        chosen[name] = analysis.crf

    # Three CRF steps or more: the slide gets well under two thirds of the bits per quality.
    assert chosen["hard"] <= chosen["easy"] - 3


def test_GIVEN_the_slide_WHEN_transcoded_per_title_THEN_far_fewer_bits_than_the_fixed_ladder_and_the_crf_in_the_stream(
    clips: dict[str, Path], tmp_path: Path
) -> None:
    per_title = transcode_to_hls(
        clips["easy"], tmp_path / "per-title", timeout_s=TIMEOUT_S, ladder_config=ALWAYS_ANALYSE
    )
    fixed = transcode_to_hls(clips["easy"], tmp_path / "fixed", timeout_s=TIMEOUT_S,
                             ladder_config=replace(DEFAULT_LADDER, rate_control=RateControl.FIXED))  # fmt: skip

    assert fixed.analysis is None and fixed.renditions[0].crf is None

    assert per_title.analysis is not None
    top = per_title.renditions[0]
    assert top.crf == per_title.analysis.crf
    ours, theirs = (segment_bits(run / top.name) for run in (tmp_path / "per-title", tmp_path / "fixed"))
    assert ours < 0.5 * theirs
    # x264 writes its settings into the stream: the rung was encoded at the chosen CRF.
    first_segment = (tmp_path / "per-title" / top.name / "seg_00000.ts").read_bytes()
    assert f"crf={top.crf:.1f}".encode() in first_segment
    # The job's bitrate is what was measured, not the cap.
    assert per_title.measured[top.name].average_bps < top.average_bandwidth_bps


def test_GIVEN_the_noisy_clip_WHEN_transcoded_chunked_THEN_every_chunk_uses_the_one_title_crf(
    clips: dict[str, Path], tmp_path: Path
) -> None:
    result = transcode_chunked(
        clips["hard"], tmp_path / "out", timeout_s=TIMEOUT_S, chunk_s=2, segment_s=2, ladder_config=ALWAYS_ANALYSE
    )

    top = result.renditions[0]
    assert top.crf is not None and top.crf < MAX_CRF
    segments = sorted((tmp_path / "out" / top.name).glob("*.ts"))
    assert len(segments) == 2  # one per chunk
    for segment in segments:
        assert f"crf={top.crf:.1f}".encode() in segment.read_bytes()
    assert (tmp_path / "out" / top.name / MEDIA_PLAYLIST_NAME).exists()
