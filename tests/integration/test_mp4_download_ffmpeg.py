"""Real FFmpeg: the MP4 download made from a rung's HLS segments, on both paths.

A clip is transcoded (single process, or chunked), then the chosen rung's
segments are remuxed: the MP4 must be fast start (``moov`` before ``mdat``,
read from the file's top-level boxes), H.264 + AAC, and last as long as the
source within a frame or two.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import media_checks
from transcode.domain_logic.chunking import transcode_chunked
from transcode.domain_logic.mp4_download import write_mp4_download
from transcode.domain_logic.transcoding import TranscodeResult, transcode_to_hls

pytestmark = pytest.mark.ffmpeg

SAMPLES = Path(__file__).resolve().parents[2] / "sample_media"
TIMEOUT_S = 120.0


def moov_first(mp4: Path) -> bool:
    boxes = media_checks.mp4_top_level_boxes(mp4.read_bytes())
    return boxes.index("moov") < boxes.index("mdat")


def make_download(result: TranscodeResult, hls_dir: Path, work: Path) -> Path:
    mp4 = hls_dir / "download.mp4"
    write_mp4_download(hls_dir, result.renditions, mp4, has_audio=result.source.has_audio,
                       scratch=work / "mp4-scratch", timeout_s=TIMEOUT_S)  # fmt: skip
    return mp4


def frame_s(result: TranscodeResult) -> float:
    return 1 / float(result.source.frame_rate)


def test_GIVEN_a_720p_clip_WHEN_its_MP4_download_is_made_THEN_it_is_fast_start_H264_AAC_720p_as_long_as_the_source(
    tmp_path: Path,
) -> None:
    hls_dir = tmp_path / "hls"
    result = transcode_to_hls(SAMPLES / "landscape_16x9_stereo.mp4", hls_dir, timeout_s=TIMEOUT_S)

    mp4 = make_download(result, hls_dir, tmp_path)

    boxes = media_checks.mp4_top_level_boxes(mp4.read_bytes())
    assert boxes[0] == "ftyp"
    assert boxes.index("moov") < boxes.index("mdat"), boxes
    probe = media_checks.probe(mp4)
    assert probe.format["format_name"].startswith("mov,mp4")
    assert [(s["codec_name"], s["width"], s["height"]) for s in probe.video] == [("h264", 1280, 720)]
    assert [(s["codec_name"], s["channels"]) for s in probe.audio] == [("aac", 2)]
    assert abs(probe.duration_s - result.source.duration_s) <= 2 * frame_s(result), probe.duration_s
    # Both tracks start at once (within the encoder's B-frame delay and the AAC
    # priming): the HLS muxer's 1.4 s offset is taken off.
    assert all(0 <= float(s["start_time"]) < 0.1 for s in probe.streams), probe.streams
    assert not (tmp_path / "mp4-scratch" / "joined.ts").exists()


def test_GIVEN_a_clip_without_audio_WHEN_its_MP4_download_is_made_THEN_it_holds_the_video_alone(
    tmp_path: Path,
) -> None:
    hls_dir = tmp_path / "hls"
    result = transcode_to_hls(SAMPLES / "no_audio.mp4", hls_dir, timeout_s=TIMEOUT_S)

    mp4 = make_download(result, hls_dir, tmp_path)

    probe = media_checks.probe(mp4)
    assert [s["codec_name"] for s in probe.streams] == ["h264"]
    assert abs(probe.duration_s - result.source.duration_s) <= 2 * frame_s(result)
    assert moov_first(mp4)


def test_GIVEN_a_chunked_transcode_WHEN_the_MP4_is_made_from_the_stitched_rung_THEN_the_joins_keep_the_duration(
    tmp_path: Path,
) -> None:
    hls_dir = tmp_path / "hls"
    result = transcode_chunked(SAMPLES / "long_20s_640x360.mp4", hls_dir, timeout_s=TIMEOUT_S, chunk_s=8)

    mp4 = make_download(result, hls_dir, tmp_path)

    probe = media_checks.probe(mp4)
    assert [s["codec_name"] for s in probe.video] == ["h264"]
    assert [s["codec_name"] for s in probe.audio] == ["aac"]
    assert abs(probe.duration_s - result.source.duration_s) <= 2 * frame_s(result), probe.duration_s
    # Every frame of the 20 s at 30 fps, none lost or doubled at the chunk joins.
    frames = int(probe.video[0]["nb_frames"])
    assert abs(frames - round(result.source.duration_s * float(result.source.frame_rate))) <= 1
    assert moov_first(mp4)
