"""End to end on the local stack: an iPhone-style HLG MOV and an HDR10 (PQ)
Matroska clip go up through the HTTP API (`vidpipe submit`), become READY, and
their renditions and poster, fetched over HTTP, are SDR BT.709: tagged so,
8-bit, and within 10 % of the reference tone-map's saturation and luma.

Needs the stack's Lambdas to run an FFmpeg with zscale and tonemap (the
layer's static 6.0 has both; without them these uploads fail)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests

from tests import media_checks
from tests.colour_checks import (
    BARE_8_BIT,
    BT709_LIMITED,
    JPEG_AS_BT709,
    REFERENCE_TONE_MAP,
    TOLERANCE,
    make_hdr_clip,
    signal_means,
)
from vidpipe.domain.colour import HLG, PQ

pytestmark = [pytest.mark.stack, pytest.mark.ffmpeg]


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("hdr-uploads")
    return {
        "iphone_hlg.mov": make_hdr_clip(folder / "iphone_hlg.mov", HLG),
        "hdr10_pq.mkv": make_hdr_clip(folder / "hdr10_pq.mkv", PQ),
    }


@pytest.fixture(scope="module")
def submitted(local_stack, clips: dict[str, Path]) -> dict[str, dict]:
    """GIVEN the local stack WHEN both HDR clips are submitted through the CLI and awaited."""
    result = local_stack.vidpipe("submit", *map(str, clips.values()), "--wait", "--json", "--timeout", "600")
    assert result.stdout, f"vidpipe submit printed nothing: {result.stderr}"
    jobs = json.loads(result.stdout)
    return {name: job for name, job in zip(clips, jobs, strict=True)}


@pytest.mark.parametrize("name", ["iphone_hlg.mov", "hdr10_pq.mkv"])
def test_hdr_upload_becomes_tone_mapped_sdr_bt709(
    submitted: dict[str, dict], clips: dict[str, Path], name: str, tmp_path: Path
) -> None:
    job = submitted[name]
    reference = signal_means(clips[name], REFERENCE_TONE_MAP)
    washed_out = signal_means(clips[name], BARE_8_BIT)
    assert not washed_out.within(reference, TOLERANCE)

    # THEN the job is READY
    assert job["status"] == "READY", f"{name}: {job['status']} {job.get('error')}"
    # AND every rendition, read over HTTP, is tagged BT.709 limited, 8-bit, and tone-mapped
    for rendition in job["outputs"]["renditions"]:
        video = media_checks.video_streams(rendition["url"])[0]
        assert {key: video.get(key, "untagged") for key in BT709_LIMITED} == BT709_LIMITED, rendition["name"]
        measured = signal_means(rendition["url"])
        assert measured.within(reference, TOLERANCE), (rendition["name"], measured, reference)
    # AND the poster is not washed out
    poster = tmp_path / "poster.jpg"
    poster.write_bytes(requests.get(job["outputs"]["poster_url"], timeout=30).content)
    measured = signal_means(poster, JPEG_AS_BT709)
    assert measured.within(reference, TOLERANCE), ("poster", measured, reference)
