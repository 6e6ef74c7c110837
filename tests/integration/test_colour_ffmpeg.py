"""Real FFmpeg on HDR and oddly coloured SDR clips: what comes out is SDR
BT.709, 8-bit, limited range, tagged so, and looks like a proper tone-map.

The HDR clips (iPhone-style HLG in MOV, HDR10 PQ in Matroska; 640x360, 3 s)
are made by tests/colour_checks.py at test time. Each check measures against
the reference tone-map of ARCHITECTURE.md run on the same source, and also
checks that the pipeline's old result (a bare ``format=yuv420p``) is *outside*
the tolerance, so the test can tell a fix from its absence.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests import media_checks
from tests.colour_checks import (
    BARE_8_BIT,
    BT709_LIMITED,
    JPEG_AS_BT709,
    REFERENCE_TONE_MAP,
    TOLERANCE,
    SignalMeans,
    frame_means,
    make_hdr_clip,
    signal_means,
)
from thumbnails import make_thumbnails
from transcode.domain_logic.chunking import transcode_chunked
from transcode.domain_logic.hls import MEDIA_PLAYLIST_NAME
from transcode.domain_logic.ladder import Rendition
from transcode.domain_logic.transcoding import TranscodeResult, transcode_to_hls
from vidpipe.adapters.ffmpeg.probe import probe_media
from vidpipe.adapters.ffmpeg.process import ffmpeg_environment, find_tool
from vidpipe.domain.colour import HLG, PQ

pytestmark = pytest.mark.ffmpeg

TIMEOUT_S = 300.0


def _ffmpeg(*args: str) -> None:
    completed = subprocess.run(
        [find_tool("ffmpeg"), "-hide_banner", "-nostdin", "-y", "-loglevel", "error", *args],
        capture_output=True, text=True, timeout=120, check=False, env=ffmpeg_environment(),
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("colour-clips")
    made = {
        "hlg": make_hdr_clip(folder / "iphone_hlg.mov", HLG),
        "pq": make_hdr_clip(folder / "hdr10_pq.mkv", PQ),
        "full_range": folder / "full_range_mjpeg.avi",
        "bt601": folder / "bt601_sd.mp4",
    }
    # Webcam/screen-recorder style: MJPEG, full range (yuvj420p), half black, half white.
    _ffmpeg(
        "-f", "lavfi", "-i", "color=c=black:s=320x360:r=25:d=2[a];color=c=white:s=320x360:r=25:d=2[b];[a][b]hstack",
        "-vf", "format=yuvj420p", "-c:v", "mjpeg", "-q:v", "3", str(made["full_range"]),
    )  # fmt: skip
    # An SD clip tagged BT.601 (smpte170m): a flat orange-red made with BT.601's own matrix.
    _ffmpeg(
        "-f", "lavfi", "-i", "color=c=0xC03020:s=640x360:r=25:d=2,format=gbrp",
        "-vf", "scale=out_color_matrix=bt601:out_range=tv,format=yuv420p",
        "-c:v", "libx264", "-preset", "ultrafast",
        "-color_primaries", "smpte170m", "-color_trc", "smpte170m", "-colorspace", "smpte170m", "-color_range", "tv",
        str(made["bt601"]),
    )  # fmt: skip
    return made


@pytest.fixture(scope="module")
def transcoded(clips: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Callable[[str, str], Path]:
    """Transcode a clip once per path ("single", "chunked") and return the output folder."""
    cache: dict[tuple[str, str], Path] = {}

    def run(clip: str, path: str) -> Path:
        if (clip, path) not in cache:
            output = tmp_path_factory.mktemp(f"{clip}-{path}") / "hls"
            result: TranscodeResult
            if path == "chunked":
                result = transcode_chunked(clips[clip], output, timeout_s=TIMEOUT_S, chunk_s=2, segment_s=2)
            else:
                # With early playback: the lowest rung has a pass of its own.
                early: list[Rendition] = []
                result = transcode_to_hls(clips[clip], output, timeout_s=TIMEOUT_S, on_lowest_rung=early.append)
                assert len(result.renditions) == 1 or early == [result.renditions[-1]]
            assert len(result.renditions) >= 1
            cache[(clip, path)] = output
        return cache[(clip, path)]

    return run


def renditions_of(output: Path) -> list[Path]:
    playlists = sorted(output.glob(f"*/{MEDIA_PLAYLIST_NAME}"))
    assert playlists, f"no rendition in {output}"
    return playlists


def colour_tags(target: Path) -> dict[str, str]:
    video = media_checks.video_streams(target)[0]
    return {key: video.get(key, "untagged") for key in BT709_LIMITED}


# ------------------------------------------------------------------ HDR


@pytest.mark.parametrize(("clip", "path"), [("hlg", "single"), ("pq", "single"), ("pq", "chunked")])
def test_GIVEN_an_hdr_clip_WHEN_transcoded_THEN_every_rendition_is_tone_mapped_sdr_bt709(
    clips: dict[str, Path], transcoded: Callable[[str, str], Path], clip: str, path: str
) -> None:
    reference = signal_means(clips[clip], REFERENCE_TONE_MAP)
    washed_out = signal_means(clips[clip], BARE_8_BIT)

    playlists = renditions_of(transcoded(clip, path))

    # The test can fail: the old result is far from the reference.
    assert not washed_out.within(reference, TOLERANCE), (washed_out, reference)
    for playlist in playlists:
        assert colour_tags(playlist) == BT709_LIMITED, playlist
        measured = signal_means(playlist)
        assert measured.within(reference, TOLERANCE), (playlist.parent.name, measured, reference)


def test_GIVEN_an_hlg_phone_clip_WHEN_probed_THEN_hdr_10_bit(clips: dict[str, Path]) -> None:
    colour = probe_media(clips["hlg"]).colour

    assert colour.is_hdr and colour.transfer == HLG and colour.primaries == "bt2020" and colour.bit_depth == 10


def test_GIVEN_an_hlg_phone_clip_WHEN_thumbnailed_THEN_poster_and_thumbnails_are_not_washed_out(
    clips: dict[str, Path], tmp_path: Path
) -> None:
    reference = signal_means(clips["hlg"], REFERENCE_TONE_MAP)
    washed_out = signal_means(clips["hlg"], BARE_8_BIT)

    result = make_thumbnails(clips["hlg"], tmp_path, timeout_s=TIMEOUT_S)

    # testsrc2's statistics hardly change from frame to frame (66 +- 1 saturation on
    # the reference), so one frame compares with the clip's mean.
    for name in (result.poster, result.thumbnails[0]):
        measured = signal_means(tmp_path / name, JPEG_AS_BT709)
        assert measured.within(reference, TOLERANCE), (name, measured, reference)
        assert not measured.within(washed_out, TOLERANCE), (name, measured, washed_out)


# ------------------------------------------------------------------ SDR


def test_GIVEN_a_full_range_mjpeg_clip_WHEN_transcoded_THEN_limited_range_bt709_tagged(
    transcoded: Callable[[str, str], Path],
) -> None:
    playlists = renditions_of(transcoded("full_range", "single"))

    for playlist in playlists:
        assert colour_tags(playlist) == BT709_LIMITED, playlist
        # Black and white halves: full range's 0 and 255 become limited range's 16 and 235.
        levels = frame_means(playlist, ("YLOW", "YHIGH"))
        assert levels["YLOW"] == pytest.approx(16, abs=3), (playlist.parent.name, levels)
        assert levels["YHIGH"] == pytest.approx(235, abs=3), (playlist.parent.name, levels)


def test_GIVEN_a_bt601_sd_clip_WHEN_transcoded_THEN_converted_to_bt709_and_tagged_so(
    clips: dict[str, Path], transcoded: Callable[[str, str], Path]
) -> None:
    keys = ("YAVG", "UAVG", "VAVG")
    as_bt709 = frame_means(clips["bt601"], keys, "scale=in_color_matrix=bt601:out_color_matrix=bt709")
    as_stored = frame_means(clips["bt601"], keys)

    playlists = renditions_of(transcoded("bt601", "single"))

    # The same colour in the two matrices differs clearly (orange-red: luma 93 vs 81).
    assert abs(as_stored["YAVG"] - as_bt709["YAVG"]) > 5
    for playlist in playlists:
        assert colour_tags(playlist) == BT709_LIMITED
        measured = frame_means(playlist, keys)
        for key in keys:
            assert measured[key] == pytest.approx(as_bt709[key], abs=2), (playlist.parent.name, key, measured)


def test_signal_means_tolerance_is_relative() -> None:
    # GIVEN a reference WHEN a value is 9 % or 11 % off THEN in or out of a 10 % tolerance.
    reference = SignalMeans(saturation=100.0, luma=100.0)

    assert SignalMeans(saturation=109.0, luma=91.0).within(reference, 0.10)
    assert not SignalMeans(saturation=111.0, luma=100.0).within(reference, 0.10)
