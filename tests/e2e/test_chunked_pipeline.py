"""End to end on the local stack: a source longer than the chunk threshold
(10 s for the test stack; see tests/conftest.py) goes through the chunked path
(split, three chunk-encode invocations, stitch) and plays frame-exact over HTTP."""

from __future__ import annotations

import io
import json
import subprocess
from pathlib import Path

import pytest
import requests
from PIL import Image

from tests import media_checks
from tests.vtt_checks import assert_storyboard_consistent, parse_vtt
from thumbnails.domain_logic.poster import detail_score
from vidpipe.adapters.ffmpeg.process import ffmpeg_environment, find_tool

pytestmark = [pytest.mark.stack, pytest.mark.ffmpeg]

SAMPLE = Path(__file__).resolve().parents[2] / "sample_media" / "long_20s_640x360.mp4"
SOURCE_FRAMES = 600


@pytest.fixture(scope="module")
def chunked_job(local_stack) -> dict:
    """GIVEN the local stack WHEN the 20 s sample is submitted and awaited."""
    result = local_stack.vidpipe("submit", str(SAMPLE), "--wait", "--json", "--timeout", "600")
    assert result.stdout, f"vidpipe submit printed nothing: {result.stderr}"
    (job,) = json.loads(result.stdout)
    return job


def test_long_sample_is_chunked_counted_and_ready(chunked_job) -> None:
    # THEN it is READY, and the job record counted all three chunks
    assert chunked_job["status"] == "READY", chunked_job.get("error")
    transcode = chunked_job["stages"]["transcode"]
    assert transcode["status"] == "COMPLETED"
    assert transcode["chunks"] == {"total": 3, "done": 3}
    assert [r["name"] for r in chunked_job["outputs"]["renditions"]] == ["360p", "240p"]


def test_every_rendition_plays_frame_exact_over_http(chunked_job) -> None:
    duration = media_checks.duration_s(SAMPLE)
    keyframes = {}
    for rendition in chunked_job["outputs"]["renditions"]:
        url = rendition["url"]
        # THEN exactly the source's frames, the source's duration, stereo AAC
        packets = media_checks.ffprobe_json(
            url, "-select_streams", "v:0", "-count_packets", "-show_entries", "stream=nb_read_packets"
        )
        assert int(packets["streams"][0]["nb_read_packets"]) == SOURCE_FRAMES, rendition["name"]
        probe = media_checks.probe(url)
        assert abs(probe.duration_s - duration) <= 0.1
        assert probe.audio and probe.audio[0]["channels"] == 2
        # AND the segments of all chunks are in one continuous timeline
        times = sorted(
            float(p["pts_time"])
            for p in media_checks.ffprobe_json(url, "-select_streams", "v:0", "-show_entries", "packet=pts_time")[
                "packets"
            ]
        )
        assert all(abs(b - a - 1 / 30) < 0.001 for a, b in zip(times, times[1:], strict=False))
        keyframes[rendition["name"]] = [round(t, 3) for t in media_checks.keyframe_times(url)]
        # AND FFmpeg decodes it from end to end without an error
        decoded = subprocess.run(
            [find_tool("ffmpeg"), "-v", "error", "-protocol_whitelist", media_checks.TEST_PROBE_PROTOCOLS,
             "-i", url, "-f", "null", "-"],
            capture_output=True, text=True, timeout=300, env=ffmpeg_environment(), check=False,
        )  # fmt: skip
        assert decoded.returncode == 0 and decoded.stderr.strip() == "", decoded.stderr
    # AND keyframes are aligned across renditions
    assert len({tuple(times) for times in keyframes.values()}) == 1, keyframes


def test_the_stitch_makes_a_fast_start_mp4_download_of_every_frame(chunked_job) -> None:
    # THEN the stitch read the 360p rung back and remuxed it: every frame, moov first
    url = chunked_job["outputs"]["mp4_url"]
    boxes = media_checks.mp4_top_level_boxes(requests.get(url, timeout=30).content)
    assert boxes.index("moov") < boxes.index("mdat"), boxes
    packets = media_checks.ffprobe_json(
        url, "-select_streams", "v:0", "-count_packets", "-show_entries", "stream=nb_read_packets,height"
    )
    assert packets["streams"][0] == {"height": 360, "nb_read_packets": str(SOURCE_FRAMES)}
    assert abs(media_checks.duration_s(url) - media_checks.duration_s(SAMPLE)) <= 0.1


def test_chunked_job_says_when_it_became_playable(chunked_job) -> None:
    assert chunked_job["playable_at"] is not None
    assert chunked_job["created_at"] < chunked_job["playable_at"] <= chunked_job["updated_at"]


def test_single_process_job_is_playable_before_ready(local_stack) -> None:
    # GIVEN a short sample (the single-process path) WHEN submitted and awaited
    sample = SAMPLE.parent / "landscape_16x9_stereo.mp4"
    result = local_stack.vidpipe("submit", str(sample), "--wait", "--json", "--timeout", "600")
    (job,) = json.loads(result.stdout)
    # THEN its lowest rung was playable before the job was READY (its last update)
    assert job["status"] == "READY", job.get("error")
    assert job["playable_at"] is not None and job["playable_at"] < job["updated_at"]


def test_thumbnails_of_a_chunked_upload_agree_with_its_storyboard_and_the_poster_has_detail(chunked_job) -> None:
    # THEN (made by seeks over the upload's URL: longer than the threshold) the
    # sprite, the storyboard and the source's duration agree
    outputs = chunked_job["outputs"]
    assert chunked_job["stages"]["thumbnails"]["status"] == "COMPLETED"
    sprite = Image.open(io.BytesIO(requests.get(outputs["sprite_url"], timeout=30).content))
    cues = parse_vtt(requests.get(outputs["storyboard_vtt_url"], timeout=30).text)
    # A tile a second when read by seeks; the one-pass path widens to the 2 s keyframes.
    assert len(cues) in (10, 20)
    assert_storyboard_consistent(
        cues, sprite_width=sprite.width, sprite_height=sprite.height, duration_s=media_checks.duration_s(SAMPLE)
    )
    # AND the poster is a picture with detail, not a black frame
    poster = Image.open(io.BytesIO(requests.get(outputs["poster_url"], timeout=30).content))
    assert detail_score(poster) > 4.0
