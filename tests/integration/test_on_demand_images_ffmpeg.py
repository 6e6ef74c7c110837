"""Thumbnails and animated previews made on demand from real HLS segments with
the real FFmpeg: the right moment (frame-accurate across a cut), the sizes of
every fit mode, both segment types (MPEG-TS, fMP4 with its init segment)."""

from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image, ImageStat

from thumbnails.domain_logic.on_demand import make_on_demand_image, parse_media_playlist
from vidpipe.adapters.ffmpeg.process import ffmpeg_environment, find_tool
from vidpipe.domain.image_requests import AnimatedRequest, Fit, ThumbnailRequest

pytestmark = pytest.mark.ffmpeg

TIMEOUT_S = 60.0
DARK, BRIGHT = 40, 215


def _rendition(folder: Path, segment_type: str) -> Path:
    """Three seconds of black, then three of white, 320x180, as an HLS
    rendition of 2 s segments (a keyframe at each): its playlist's path."""
    folder.mkdir()
    subprocess.run(
        [find_tool("ffmpeg"), "-hide_banner", "-loglevel", "error", "-y",
         "-f", "lavfi", "-i", "color=black:s=320x180:r=30:d=3",
         "-f", "lavfi", "-i", "color=white:s=320x180:r=30:d=3",
         "-filter_complex", "[0:v][1:v]concat=n=2:v=1:a=0[v]", "-map", "[v]",
         "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-g", "60", "-sc_threshold", "0",
         "-f", "hls", "-hls_time", "2", "-hls_playlist_type", "vod", "-hls_segment_type", segment_type,
         "-hls_segment_filename", str(folder / ("seg_%03d.ts" if segment_type == "mpegts" else "seg_%03d.m4s")),
         str(folder / "index.m3u8")],
        env=ffmpeg_environment(), check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    return folder / "index.m3u8"


@pytest.fixture(scope="module", params=["mpegts", "fmp4"])
def rendition(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _rendition(tmp_path_factory.mktemp("hls") / request.param, request.param)


def _make(rendition: Path, request: ThumbnailRequest | AnimatedRequest, work: Path) -> tuple[bytes, list[str]]:
    fetched: list[str] = []

    def fetch(uri: str, path: Path) -> None:
        fetched.append(uri)
        shutil.copyfile(rendition.parent / uri, path)

    playlist = parse_media_playlist(rendition.read_text())
    return make_on_demand_image(request, playlist, fetch, work, timeout_s=TIMEOUT_S), fetched


def _brightness(image: Image.Image) -> float:
    return float(ImageStat.Stat(image.convert("L")).mean[0])


@pytest.mark.parametrize(("time_s", "dark"), [(1.0, True), (2.9, True), (3.05, False), (4.0, False), (5.95, False)])
def test_GIVEN_a_rendition_WHEN_a_thumbnail_of_a_moment_is_made_THEN_it_shows_that_moment_from_one_segment(
    rendition: Path, tmp_path: Path, time_s: float, dark: bool
) -> None:
    image, fetched = _make(rendition, ThumbnailRequest(image_format="jpg", time_s=time_s), tmp_path)

    with Image.open(io.BytesIO(image)) as picture:
        assert picture.format == "JPEG"
        assert picture.size == (320, 180)
        brightness = _brightness(picture)
    assert (brightness < DARK) if dark else (brightness > BRIGHT), brightness
    # One segment (after the init segment, for fMP4), not the whole video.
    assert len([uri for uri in fetched if uri.startswith("seg_")]) == 1


@pytest.mark.parametrize(
    ("width", "height", "fit", "size"),
    [
        (160, None, Fit.PRESERVE, (160, 90)),
        (None, 90, Fit.PRESERVE, (160, 90)),
        (200, 200, Fit.PRESERVE, (200, 112)),  # 112.5, rounded half to even
        (200, 200, Fit.CROP, (200, 200)),
        (200, 200, Fit.PAD, (200, 200)),
        (200, 200, Fit.STRETCH, (200, 200)),
    ],
)
def test_GIVEN_a_size_and_fit_WHEN_a_webp_thumbnail_is_made_THEN_it_has_that_size(
    rendition: Path, tmp_path: Path, width: int | None, height: int | None, fit: Fit, size: tuple[int, int]
) -> None:
    request = ThumbnailRequest(image_format="webp", time_s=4.0, width=width, height=height, fit=fit)

    image, _ = _make(rendition, request, tmp_path)

    with Image.open(io.BytesIO(image)) as picture:
        assert picture.format == "WEBP"
        assert picture.size == size
        rgb = picture.convert("RGB")
    # pad: black bars above and below the white frame; crop and stretch: white to the edge.
    top_row_brightness = _brightness(rgb.crop((0, 0, size[0], 1)))
    assert (top_row_brightness < DARK) if fit is Fit.PAD else (top_row_brightness > BRIGHT)


def test_GIVEN_a_span_across_segments_WHEN_an_animated_preview_is_made_THEN_it_loops_through_that_span(
    rendition: Path, tmp_path: Path
) -> None:
    image, fetched = _make(rendition, AnimatedRequest(start_s=1.0, end_s=5.0, width=160), tmp_path)

    with Image.open(io.BytesIO(image)) as picture:
        assert picture.format == "WEBP"
        assert picture.is_animated
        assert picture.size == (160, 90)
        # 4 s, 10 frames a second; the encoder merges repeated frames into longer ones.
        durations, brightness = [], []
        for index in range(picture.n_frames):
            picture.seek(index)
            picture.load()  # the frame's duration is read with its pixels
            durations.append(picture.info["duration"])
            brightness.append(_brightness(picture))
    assert sum(durations) == 4000
    assert brightness[0] < DARK < BRIGHT < brightness[-1]
    assert [uri for uri in fetched if uri.startswith("seg_")] == [
        name
        for name in ("seg_000.ts", "seg_001.ts", "seg_002.ts", "seg_000.m4s", "seg_001.m4s", "seg_002.m4s")
        if name in fetched
    ]
    assert len([uri for uri in fetched if uri.startswith("seg_")]) == 3
