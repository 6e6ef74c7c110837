"""Real FFmpeg on the sample clips: the HLS ladder as players will see it.

Each clip is transcoded once per module (about 12 s for all of them on two
cores) and the outputs are checked with ffprobe through tests/media_checks.py,
the same checks the end-to-end tests run on the uploaded outputs.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests import media_checks
from transcode.domain_logic.hls import MASTER_PLAYLIST_NAME, MEDIA_PLAYLIST_NAME
from transcode.domain_logic.transcoding import TranscodeResult, transcode_to_hls
from vidpipe.adapters.ffmpeg.inputs import input_args
from vidpipe.adapters.ffmpeg.process import run_ffmpeg
from vidpipe.domain.errors import CorruptMedia, MediaTooLong, NotAVideo

pytestmark = pytest.mark.ffmpeg

SAMPLES = Path(__file__).resolve().parents[2] / "sample_media"
ALL_CLIPS = [
    "landscape_16x9_stereo.mp4",
    "portrait_rotated.mp4",
    "no_audio.mp4",
    "surround_5_1.mp4",
    "tiny_160x90.mp4",
    "unusual_aspect_21x9.mp4",
]
TIMEOUT_S = 120.0


@dataclass(frozen=True)
class Transcoded:
    result: TranscodeResult
    output_dir: Path
    progress: list[float]
    probes: dict[str, media_checks.Probe] = field(default_factory=dict)

    def playlist(self, name: str) -> Path:
        return self.output_dir / name / MEDIA_PLAYLIST_NAME

    def probe(self, name: str) -> media_checks.Probe:
        """ffprobe of one rendition, run once: several tests look at the same outputs."""
        if name not in self.probes:
            self.probes[name] = media_checks.probe(self.playlist(name))
        return self.probes[name]


@pytest.fixture(scope="module")
def transcoded(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Transcoded]:
    """Transcode a sample clip (once per clip and segment length) and remember the result."""
    cache: dict[tuple[str, int], Transcoded] = {}

    def run(clip: str, segment_s: int = 4) -> Transcoded:
        if (clip, segment_s) not in cache:
            output_dir = tmp_path_factory.mktemp(f"{Path(clip).stem}_{segment_s}s") / "hls"
            progress: list[float] = []
            result = transcode_to_hls(
                SAMPLES / clip, output_dir, timeout_s=TIMEOUT_S, on_progress=progress.append, segment_s=segment_s
            )
            cache[(clip, segment_s)] = Transcoded(result, output_dir, progress)
        return cache[(clip, segment_s)]

    return run


@pytest.mark.parametrize("clip", ALL_CLIPS)
def test_GIVEN_sample_WHEN_transcoded_THEN_each_rendition_is_h264_high_yuv420p_of_the_planned_size(
    clip: str, transcoded: Callable[..., Transcoded]
) -> None:
    done = transcoded(clip)

    for rendition in done.result.renditions:
        (video,) = done.probe(rendition.name).video
        assert (video["codec_name"], video["profile"], video["pix_fmt"]) == ("h264", "High", "yuv420p")
        assert (video["width"], video["height"]) == (rendition.width, rendition.height)
        assert video.get("sample_aspect_ratio", "1:1") in ("1:1", "0:1")


@pytest.mark.parametrize("clip", [c for c in ALL_CLIPS if c != "no_audio.mp4"])
def test_GIVEN_sample_with_audio_WHEN_transcoded_THEN_each_rendition_has_aac_lc_stereo(
    clip: str, transcoded: Callable[..., Transcoded]
) -> None:
    done = transcoded(clip)

    for rendition in done.result.renditions:
        (audio,) = done.probe(rendition.name).audio
        assert (audio["codec_name"], audio["profile"], audio["channels"]) == ("aac", "LC", 2)


@pytest.mark.parametrize("clip", ALL_CLIPS)
def test_GIVEN_sample_WHEN_transcoded_THEN_every_rendition_lasts_as_long_as_the_source(
    clip: str, transcoded: Callable[..., Transcoded]
) -> None:
    done = transcoded(clip)
    source_s = media_checks.duration_s(SAMPLES / clip)

    for rendition in done.result.renditions:
        assert done.probe(rendition.name).duration_s == pytest.approx(source_s, abs=0.1)


@pytest.mark.parametrize(("clip", "segment_s"), [("landscape_16x9_stereo.mp4", 4), ("unusual_aspect_21x9.mp4", 1)])
def test_GIVEN_sample_WHEN_transcoded_THEN_keyframes_and_segments_aligned_across_renditions(
    clip: str, segment_s: int, transcoded: Callable[..., Transcoded]
) -> None:
    # The 21:9 clip runs at 23.976 fps, where whole frames never land exactly on the
    # segment grid: keyframes must still fall on the same frames in every rendition.
    done = transcoded(clip, segment_s)
    frame_s = 1 / float(done.result.source.frame_rate)

    keyframes = {r.name: media_checks.keyframe_times(done.playlist(r.name)) for r in done.result.renditions}
    segments = {r.name: media_checks.segment_durations(done.playlist(r.name)) for r in done.result.renditions}

    reference = next(iter(keyframes.values()))
    expected_count = len(segments[done.result.renditions[0].name])
    assert len(reference) == expected_count >= 2
    for name, times in keyframes.items():
        assert times == pytest.approx(reference, abs=1e-3), f"{name} keyframes differ"
        assert segments[name] == pytest.approx(segments[done.result.renditions[0].name], abs=1e-3)
    for index, time_s in enumerate(reference):
        # The first frame at or after each multiple of the segment length.
        assert 0 <= (time_s - reference[0]) - index * segment_s < frame_s + 1e-3


@pytest.mark.parametrize("clip", ALL_CLIPS)
def test_GIVEN_sample_WHEN_transcoded_THEN_master_lists_every_rendition_with_bandwidth_resolution_codecs(
    clip: str, transcoded: Callable[..., Transcoded]
) -> None:
    done = transcoded(clip)
    assert done.result.master_playlist == done.output_dir / MASTER_PLAYLIST_NAME

    variants = media_checks.master_variants(done.result.master_playlist)

    assert [v.uri for v in variants] == [f"{r.name}/index.m3u8" for r in done.result.renditions]
    for variant, rendition in zip(variants, done.result.renditions, strict=True):
        assert variant.resolution == (rendition.width, rendition.height)
        assert variant.codecs[0].startswith("avc1.6400")
        assert variant.codecs[1:] == (["mp4a.40.2"] if done.result.source.has_audio else [])
        assert float(variant.attributes["FRAME-RATE"]) == pytest.approx(float(done.result.source.frame_rate), abs=1e-3)
        assert variant.bandwidth >= int(variant.attributes["AVERAGE-BANDWIDTH"]) > 0
        assert media_checks.resolve(done.result.master_playlist, variant.uri) == done.playlist(rendition.name)
        (video,) = done.probe(rendition.name).video
        # The level in the stream is the one the CODECS string declares.
        assert int(variant.codecs[0][-2:], 16) == video["level"]
        # Measured on the segments, so near the nominal peak, or far below it for a
        # picture x264 cannot spend bits on (static bars): never far above it.
        assert variant.bandwidth <= 1.5 * rendition.bandwidth_bps


def test_GIVEN_rotated_phone_clip_WHEN_transcoded_THEN_portrait_renditions(
    transcoded: Callable[..., Transcoded],
) -> None:
    done = transcoded("portrait_rotated.mp4")

    assert [(r.width, r.height) for r in done.result.renditions] == [(720, 1280), (480, 854), (360, 640), (240, 426)]
    for rendition in done.result.renditions:
        (video,) = done.probe(rendition.name).video
        assert video["height"] > video["width"]
        # Turned upright in the pixels: no rotation left for the player to apply.
        assert not video.get("side_data_list")


def test_GIVEN_clip_without_audio_WHEN_transcoded_THEN_video_only_renditions(
    transcoded: Callable[..., Transcoded],
) -> None:
    done = transcoded("no_audio.mp4")

    assert [r.audio_bitrate_kbps for r in done.result.renditions] == [0, 0]
    for rendition in done.result.renditions:
        assert done.probe(rendition.name).audio == []


def test_GIVEN_tiny_clip_WHEN_transcoded_THEN_one_rendition_at_its_own_size(
    transcoded: Callable[..., Transcoded],
) -> None:
    done = transcoded("tiny_160x90.mp4")

    assert [(r.name, r.width, r.height) for r in done.result.renditions] == [("90p", 160, 90)]


def test_GIVEN_sample_WHEN_transcoded_THEN_progress_rises_to_one(transcoded: Callable[..., Transcoded]) -> None:
    progress = transcoded("landscape_16x9_stereo.mp4").progress

    assert len(progress) >= 2
    assert progress == sorted(progress)
    assert progress[0] > 0 and progress[-1] == 1.0


def test_GIVEN_upload_saved_without_extension_WHEN_transcoded_THEN_recognised_by_content(tmp_path: Path) -> None:
    # The stage runner downloads every upload to ".../source": no extension to go by.
    source = tmp_path / "source"
    shutil.copyfile(SAMPLES / "tiny_160x90.mp4", source)

    result = transcode_to_hls(source, tmp_path / "out", timeout_s=TIMEOUT_S)

    assert [r.name for r in result.renditions] == ["90p"]
    assert (tmp_path / "out" / "90p" / "seg_00000.ts").is_file()


def test_GIVEN_random_bytes_named_mp4_WHEN_transcoded_THEN_media_error_and_no_output(tmp_path: Path) -> None:
    bogus = tmp_path / "holiday.mp4"
    bogus.write_bytes(os.urandom(64 * 1024))

    with pytest.raises((NotAVideo, CorruptMedia)):
        transcode_to_hls(bogus, tmp_path / "out", timeout_s=TIMEOUT_S)
    assert not (tmp_path / "out").exists()


def test_GIVEN_mp4_cut_after_its_header_WHEN_transcoded_THEN_corrupt_media(tmp_path: Path) -> None:
    # The first 20 KB of a real MP4 (moov first): it probes as 6 s, FFmpeg encodes the
    # second that is there and exits 0, so only the output length gives it away.
    truncated = tmp_path / "cut.mp4"
    truncated.write_bytes((SAMPLES / "landscape_16x9_stereo.mp4").read_bytes()[:20_000])

    with pytest.raises(CorruptMedia, match="ends after"):
        transcode_to_hls(truncated, tmp_path / "out", timeout_s=TIMEOUT_S)


def test_GIVEN_mp4_cut_before_its_index_WHEN_transcoded_THEN_corrupt_media(tmp_path: Path) -> None:
    # The same bytes with the moov atom at the end, cut in half: nothing can be read.
    remuxed = tmp_path / "moov_last.mp4"
    run_ffmpeg([*input_args(SAMPLES / "tiny_160x90.mp4", "mov"), "-c", "copy", str(remuxed)], timeout_s=30)
    truncated = tmp_path / "cut.mp4"
    truncated.write_bytes(remuxed.read_bytes()[: remuxed.stat().st_size // 2])

    with pytest.raises(CorruptMedia):
        transcode_to_hls(truncated, tmp_path / "out", timeout_s=TIMEOUT_S)


def test_GIVEN_clip_longer_than_allowed_WHEN_transcoded_THEN_media_too_long_before_encoding(tmp_path: Path) -> None:
    with pytest.raises(MediaTooLong):
        transcode_to_hls(SAMPLES / "landscape_16x9_stereo.mp4", tmp_path / "out", timeout_s=TIMEOUT_S, max_duration_s=5)
    assert not (tmp_path / "out").exists()
