"""End to end on the local stack: every sample clip goes up through the HTTP
API as a browser would (`vidpipe submit`), becomes READY, and its outputs,
fetched with plain HTTP GETs, are checked with ffprobe and Pillow.
Broken uploads end FAILED with their own error codes."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest
import requests
from PIL import Image

from tests import media_checks
from tests.vtt_checks import assert_storyboard_consistent, parse_vtt

pytestmark = [pytest.mark.stack, pytest.mark.ffmpeg]

SAMPLES = sorted((Path(__file__).resolve().parents[2] / "sample_media").glob("*.mp4"))


@pytest.fixture(scope="module")
def submitted(local_stack) -> dict[str, dict]:
    """GIVEN the local stack WHEN every sample is batch-submitted through the CLI and awaited."""
    assert SAMPLES, "sample_media/ has no clips"
    result = local_stack.vidpipe("submit", *map(str, SAMPLES), "--wait", "--json", "--timeout", "600")
    assert result.stdout, f"vidpipe submit printed nothing: {result.stderr}"
    jobs = json.loads(result.stdout)
    return {path.name: job for path, job in zip(SAMPLES, jobs, strict=True)}


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.stem)
def test_sample_becomes_ready_with_a_checked_ladder(submitted, sample: Path) -> None:
    job = submitted[sample.name]
    # THEN the job is READY with every stage complete
    assert job["status"] == "READY", f"{sample.name}: {job['status']} {job.get('error')}"
    assert {s["status"] for s in job["stages"].values()} == {"COMPLETED"}
    outputs = job["outputs"]
    duration = media_checks.duration_s(sample)
    assert job["source"]["filename"] == sample.name
    assert abs(float(job["source"]["duration_s"]) - duration) < 0.1

    # AND the master playlist lists each rendition with BANDWIDTH, RESOLUTION and CODECS
    variants = media_checks.master_variants(outputs["hls_url"])
    renditions = outputs["renditions"]
    assert len(variants) == len(renditions) >= 1
    for variant in variants:
        assert variant.bandwidth > 0
        assert variant.codecs[0].startswith("avc1.")
        assert len(variant.codecs) == (2 if job["source"].get("audio_codec") else 1)
    assert {variant.resolution for variant in variants} == {(r["width"], r["height"]) for r in renditions}

    # AND each rendition, probed over HTTP, has its size, H.264, the source's duration
    has_audio = job["source"].get("audio_codec") is not None
    keyframes = {}
    for rendition in renditions:
        probe = media_checks.probe(rendition["url"])
        video, audio = probe.video, probe.audio
        assert len(video) == 1 and video[0]["codec_name"] == "h264"
        assert (video[0]["width"], video[0]["height"]) == (rendition["width"], rendition["height"])
        assert rendition["width"] % 2 == 0 and rendition["height"] % 2 == 0
        if has_audio:
            assert len(audio) == 1 and audio[0]["codec_name"] == "aac" and audio[0]["channels"] == 2
        else:
            assert audio == []
        assert abs(probe.duration_s - duration) <= 0.1, rendition["name"]
        keyframes[rendition["name"]] = [round(t, 3) for t in media_checks.keyframe_times(rendition["url"])]
    # AND keyframes are aligned across renditions (so players can switch at any segment)
    assert len({tuple(times) for times in keyframes.values()}) == 1, keyframes

    # AND the sprite's size and the storyboard's coordinates agree
    sprite = Image.open(io.BytesIO(requests.get(outputs["sprite_url"], timeout=30).content))
    vtt = requests.get(outputs["storyboard_vtt_url"], timeout=30)
    assert vtt.status_code == 200
    cues = parse_vtt(vtt.text)
    assert_storyboard_consistent(cues, sprite_width=sprite.width, sprite_height=sprite.height, duration_s=duration)
    # the storyboard's image references are fetchable as they are
    assert requests.get(cues[0].image, timeout=30).status_code == 200

    # AND the MP4 download is a fast-start H.264 (+ AAC) file of the highest rung up
    # to 720p, as long as the source, that a browser saves as a file
    download = requests.get(outputs["mp4_url"], timeout=30)
    assert download.status_code == 200 and download.headers["Content-Type"] == "video/mp4"
    assert download.headers.get("Content-Disposition") == "attachment"
    boxes = media_checks.mp4_top_level_boxes(download.content)
    assert boxes.index("moov") < boxes.index("mdat"), boxes
    mp4 = media_checks.probe(outputs["mp4_url"])
    rung = max((r for r in renditions if min(r["width"], r["height"]) <= 720), key=lambda r: r["width"] * r["height"])
    assert [(s["codec_name"], s["width"], s["height"]) for s in mp4.video] == [("h264", rung["width"], rung["height"])]
    assert [s["codec_name"] for s in mp4.audio] == (["aac"] if has_audio else [])
    assert abs(mp4.duration_s - duration) <= 0.1

    # AND the poster and thumbnails are real JPEG images
    for url in [outputs["poster_url"], *outputs["thumbnail_urls"]]:
        image = Image.open(io.BytesIO(requests.get(url, timeout=30).content))
        assert image.format == "JPEG" and image.width > 0


def test_portrait_sample_gives_portrait_renditions(submitted) -> None:
    job = submitted["portrait_rotated.mp4"]
    assert job["status"] == "READY"
    assert all(r["height"] > r["width"] for r in job["outputs"]["renditions"])


@pytest.mark.parametrize(
    ("name", "content", "expected_code"),
    [
        ("random.mp4", os.urandom(200_000), "NOT_A_VIDEO"),
        ("notes.mp4", b"<html><body>not a video</body></html>\n" * 100, "NOT_A_VIDEO"),
        # An MP4 cut before its index: the container is recognisable, the media is not readable.
        ("truncated.mp4", None, "CORRUPT_MEDIA"),
    ],
)
def test_broken_upload_ends_failed_with_its_code(local_stack, tmp_path, name, content, expected_code) -> None:
    # GIVEN a file that is not a playable video but claims to be one
    path = tmp_path / name
    if content is None:
        content = _without_moov(SAMPLES[0].read_bytes())
    path.write_bytes(content)
    # WHEN it is submitted and awaited
    result = local_stack.vidpipe("submit", str(path), "--wait", "--json", "--timeout", "300")
    jobs = json.loads(result.stdout)
    # THEN the job is FAILED with its own error code and a readable message
    assert result.returncode == 1
    assert jobs[0]["status"] == "FAILED"
    assert jobs[0]["error"]["code"] == expected_code, jobs[0]["error"]
    assert len(jobs[0]["error"]["message"]) > 10


def _without_moov(whole: bytes) -> bytes:
    """An MP4 whose index (moov box) is gone: keep the boxes before it."""
    offset = 0
    kept = b""
    while offset + 8 <= len(whole):
        size = int.from_bytes(whole[offset : offset + 4], "big")
        kind = whole[offset + 4 : offset + 8]
        if size < 8:
            break
        if kind != b"moov":
            kept += whole[offset : offset + size]
        offset += size
    return kept


def test_api_refuses_a_non_video_type_up_front(local_stack) -> None:
    response = local_stack.http.post(
        f"{local_stack.api_url}/uploads",
        json={"filename": "notes.txt", "content_type": "text/plain", "size": 10},
        timeout=30,
    )
    assert response.status_code == 415
    assert response.json()["error"]["code"] == "UNSUPPORTED_MEDIA_TYPE"


def test_unknown_job_is_404(local_stack) -> None:
    response = local_stack.http.get(f"{local_stack.api_url}/jobs/does-not-exist", timeout=30)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "JOB_NOT_FOUND"


def test_the_openapi_document_is_served_without_a_token(local_stack) -> None:
    # A plain GET, not the stack's session: the template's route skips the authorizer.
    response = requests.get(f"{local_stack.api_url}/openapi.json", timeout=30)
    assert response.status_code == 200
    assert {"/uploads", "/jobs", "/jobs/{job_id}"} <= set(response.json()["paths"])
