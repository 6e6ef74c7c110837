"""Real FFmpeg: a 120 fps source comes out at 60 fps on the single-process and
the chunked path, and an encode too costly for its stage is refused before
FFmpeg encodes anything."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests import media_checks
from transcode.domain_logic import transcoding
from transcode.domain_logic.chunking import ChunkedTimings, transcode_chunked
from transcode.domain_logic.encode_cost import StageBudget
from transcode.domain_logic.hls import MEDIA_PLAYLIST_NAME
from transcode.domain_logic.transcoding import TranscodeResult, transcode_to_hls
from vidpipe.adapters.ffmpeg.process import ffmpeg_environment, find_tool
from vidpipe.domain.errors import EncodeTooCostly

pytestmark = pytest.mark.ffmpeg

TIMEOUT_S = 120.0
SEGMENT_S = 1  # two 1 s chunks of the 2 s clip, one segment each


@pytest.fixture(scope="module")
def clip_120fps(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2 s of 320x180 at 120 fps with stereo sound: 240 frames."""
    path = tmp_path_factory.mktemp("fps") / "fast.mp4"
    subprocess.run(
        [find_tool("ffmpeg"), "-hide_banner", "-loglevel", "error", "-y",
         "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=120:duration=2",
         "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=2",
         "-c:v", "libx264", "-preset", "ultrafast", "-g", "60", "-pix_fmt", "yuv420p",
         "-c:a", "aac", "-ac", "2", str(path)],
        check=True, env=ffmpeg_environment(),
    )  # fmt: skip
    return path


def frame_times(playlist: Path) -> list[float]:
    packets = media_checks.ffprobe_json(playlist, "-select_streams", "v:0", "-show_entries", "packet=pts_time")
    return sorted(float(packet["pts_time"]) for packet in packets["packets"])


def assert_60fps(result: TranscodeResult, folder: Path) -> None:
    """Every rendition: 120 frames one 60th of a second apart, declared 60.000 in the master."""
    assert result.source.frame_rate == 120  # GIVEN the source really is 120 fps
    variants = media_checks.master_variants(result.master_playlist)
    assert [variant.attributes["FRAME-RATE"] for variant in variants] == ["60.000"] * len(result.renditions)
    for rendition in result.renditions:
        times = frame_times(folder / rendition.name / MEDIA_PLAYLIST_NAME)
        assert len(times) == 120, rendition.name
        steps = [later - earlier for earlier, later in zip(times, times[1:], strict=False)]
        assert steps == pytest.approx([1 / 60] * 119, abs=1e-4), rendition.name


def test_GIVEN_a_120_fps_clip_WHEN_transcoded_in_one_process_THEN_60_fps_renditions(
    clip_120fps: Path, tmp_path: Path
) -> None:
    result = transcode_to_hls(clip_120fps, tmp_path / "hls", timeout_s=TIMEOUT_S, segment_s=SEGMENT_S)

    assert_60fps(result, tmp_path / "hls")


def test_GIVEN_a_120_fps_clip_WHEN_chunked_THEN_60_fps_renditions_frame_exact_across_the_join(
    clip_120fps: Path, tmp_path: Path
) -> None:
    timings: list[ChunkedTimings] = []

    result = transcode_chunked(clip_120fps, tmp_path / "hls", timeout_s=TIMEOUT_S, chunk_s=1, segment_s=SEGMENT_S,
                               on_timings=timings.append)  # fmt: skip

    assert len(timings[0].chunks_s) == 2  # GIVEN two chunks really were made
    assert_60fps(result, tmp_path / "hls")


def test_GIVEN_a_budget_too_small_WHEN_transcoded_THEN_encode_too_costly_before_ffmpeg_runs(
    clip_120fps: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_encode(*args: object, **kwargs: object) -> None:
        raise AssertionError("FFmpeg was started")

    monkeypatch.setattr(transcoding, "run_ffmpeg", no_encode)
    # The clip costs about 0.3 CPU-seconds by the model (28 Mpixel decoded, 7 encoded: 0.2).
    budget = StageBudget(time_s=0.1, vcpus=1.0)

    with pytest.raises(EncodeTooCostly) as raised:
        transcode_to_hls(clip_120fps, tmp_path / "hls", timeout_s=TIMEOUT_S, budget=budget,
                         on_lowest_rung=lambda rendition: None)  # fmt: skip

    assert raised.value.code == "ENCODE_TOO_COSTLY"
    assert raised.value.message.startswith("encoding 320x180 at 120 fps for 2 s would take about 0 CPU-seconds")
    assert not (tmp_path / "hls").exists()
