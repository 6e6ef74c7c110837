"""The MediaConvert backend's way back, on the local stack: MediaConvert-shaped
state-change events take a job to READY with the same contract as the FFmpeg path.

ministack has no MediaConvert, and refuses PutEvents with an ``aws.*`` source
(as AWS does: only the service itself may publish those). So this test

1. checks, with EventBridge's TestEventPattern on the deployed rules, that our
   fixtures (shaped as AWS documents them) match this stack's rules, and that
   another stack's job does not;
2. writes what a MediaConvert job writes (flat HLS layout, frame captures) into
   the outputs bucket, made with FFmpeg from a sample clip;
3. delivers the events exactly as those rules deliver them (the EventBridge
   event as the SQS message body) to the status and thumbnails queues;

and then follows the job through the HTTP API like any client."""

from __future__ import annotations

import io
import json
import re
import tempfile
import time
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
from botocore.config import Config
from PIL import Image

from tests import media_checks
from tests.vtt_checks import assert_storyboard_consistent, parse_vtt
from transcode.domain_logic.hls import MEDIA_PLAYLIST_NAME
from transcode.domain_logic.mediaconvert_job import hls_playlist_name
from transcode.domain_logic.transcoding import transcode_to_hls
from vidpipe.adapters.ffmpeg.inputs import input_args
from vidpipe.adapters.ffmpeg.probe import probe_media
from vidpipe.adapters.ffmpeg.process import run_ffmpeg

pytestmark = [pytest.mark.stack, pytest.mark.ffmpeg]

SAMPLE = Path(__file__).resolve().parents[2] / "sample_media" / "landscape_16x9_stereo.mp4"
EVENTS = Path(__file__).resolve().parents[1] / "events"
FIXTURE_JOB_ID = "0b9f5a4c2d8e4f1a9c3b7d6e5f4a3b2c"
FIXTURE_BUCKET = "amzn-s3-demo-bucket"


def client(stack: Any, service: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=stack.aws_endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(s3={"addressing_style": "path"}),
    )


def stack_outputs(stack: Any) -> dict[str, str]:
    described = client(stack, "cloudformation").describe_stacks(StackName="vidpipe")["Stacks"][0]
    return {o["OutputKey"]: o["OutputValue"] for o in described["Outputs"]}


def fixture(name: str, *, job_id: str, bucket: str) -> dict[str, Any]:
    text = (EVENTS / f"mediaconvert_{name}.json").read_text()
    return json.loads(text.replace(FIXTURE_JOB_ID, job_id).replace(FIXTURE_BUCKET, bucket))


def rule_pattern(stack: Any, logical_id: str) -> str:
    name = client(stack, "cloudformation").describe_stack_resource(StackName="vidpipe", LogicalResourceId=logical_id)[
        "StackResourceDetail"
    ]["PhysicalResourceId"]
    return client(stack, "events").describe_rule(Name=name, EventBusName="default")["EventPattern"]


def write_mediaconvert_outputs(s3: Any, bucket: str, job_id: str, scratch: Path) -> None:
    """What a MediaConvert job of the fixture's request leaves in the outputs
    bucket: hls/master.m3u8, hls/master_{name}.m3u8 and its segments side by
    side, captures/frame.0000000.jpg ... one a second."""
    encoded = transcode_to_hls(SAMPLE, scratch / "hls", timeout_s=300)
    prefix = f"jobs/{job_id}/"
    master = (scratch / "hls" / "master.m3u8").read_text()
    for rendition in encoded.renditions:
        flat = hls_playlist_name(rendition.name).removesuffix(".m3u8")
        lines = []
        for line in (scratch / "hls" / rendition.name / MEDIA_PLAYLIST_NAME).read_text().splitlines():
            if line and not line.startswith("#"):
                segment = f"{flat}_{int(re.sub(r'[^0-9]', '', line)) + 1:05d}.ts"
                s3.upload_file(str(scratch / "hls" / rendition.name / line), bucket, f"{prefix}hls/{segment}")
                line = segment
            lines.append(line)
        s3.put_object(Bucket=bucket, Key=f"{prefix}hls/{flat}.m3u8", Body="\n".join(lines) + "\n")
        master = master.replace(f"{rendition.name}/{MEDIA_PLAYLIST_NAME}", f"{flat}.m3u8")
    s3.put_object(Bucket=bucket, Key=f"{prefix}hls/master.m3u8", Body=master)

    captures = scratch / "captures"
    captures.mkdir()
    run_ffmpeg(
        [
            *input_args(SAMPLE, probe_media(SAMPLE).demuxer),
            "-vf",
            "fps=1",
            "-start_number",
            "0",
            "-q:v",
            "3",
            str(captures / "frame.%07d.jpg"),
        ],
        timeout_s=60,
    )
    for capture in sorted(captures.glob("*.jpg")):
        s3.upload_file(str(capture), bucket, f"{prefix}captures/{capture.name}")


def wait_for_status(stack: Any, job_id: str, wanted: set[str], timeout_s: float = 180) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    job: dict[str, Any] = {}
    while time.monotonic() < deadline:
        job = stack.http.get(f"{stack.api_url.rstrip('/')}/jobs/{job_id}", timeout=60).json()
        if job["status"] in wanted:
            return job
        time.sleep(1)
    raise AssertionError(f"job {job_id} still {job.get('status')} after {timeout_s} s: {job}")


def test_GIVEN_the_deployed_rules_WHEN_MediaConvert_events_are_tested_THEN_only_this_stack_s_jobs_match(
    local_stack,
) -> None:
    events = client(local_stack, "events")
    state, captures = (
        rule_pattern(local_stack, "MediaConvertStateRule"),
        rule_pattern(local_stack, "MediaConvertCapturesRule"),
    )

    def matches(pattern: str, event: dict[str, Any]) -> bool:
        return bool(events.test_event_pattern(EventPattern=pattern, Event=json.dumps(event))["Result"])

    names = ("progressing", "status_update", "complete", "error")
    ours = {name: fixture(name, job_id="j", bucket="b") for name in names}
    assert all(matches(state, event) for event in ours.values())
    assert [name for name, event in ours.items() if matches(captures, event)] == ["complete"]
    theirs = fixture("complete", job_id="j", bucket="b")
    theirs["detail"]["userMetadata"]["vidpipe_stack"] = "someone-elses-stack"
    assert not matches(state, theirs) and not matches(captures, theirs)
    warning = fixture("progressing", job_id="j", bucket="b")
    warning["detail"]["status"] = "NEW_WARNING"
    assert not matches(state, warning)


def test_GIVEN_a_job_WHEN_MediaConvert_reports_progress_and_COMPLETE_THEN_it_is_READY_with_the_same_contract(
    local_stack,
) -> None:
    found = stack_outputs(local_stack)
    s3, sqs = client(local_stack, "s3"), client(local_stack, "sqs")
    created = local_stack.http.post(
        f"{local_stack.api_url.rstrip('/')}/uploads",
        json={"filename": "clip.mp4", "content_type": "video/mp4", "size": SAMPLE.stat().st_size},
        timeout=120,  # the API and authorizer functions may start cold
    )
    assert created.status_code == 201, created.text
    job_id = created.json()["job_id"]
    with tempfile.TemporaryDirectory() as scratch:
        write_mediaconvert_outputs(s3, found["OutputsBucketName"], job_id, Path(scratch))

    def deliver(name: str, *queues: str) -> None:
        body = json.dumps(fixture(name, job_id=job_id, bucket=found["OutputsBucketName"]))
        for queue in queues:
            sqs.send_message(QueueUrl=found[queue], MessageBody=body)

    # WHEN MediaConvert starts and reports progress
    deliver("progressing", "StatusQueueUrl")
    deliver("status_update", "StatusQueueUrl")
    running = wait_for_status(local_stack, job_id, {"PROCESSING"})
    deadline = time.monotonic() + 60
    while running["stages"]["transcode"]["progress"] < 0.07 and time.monotonic() < deadline:
        time.sleep(1)
        running = wait_for_status(local_stack, job_id, {"PROCESSING"})
    assert running["stages"]["transcode"] == {"status": "RUNNING", "progress": 0.07}

    # AND completes (the status queue and, through the captures rule, the thumbnails queue)
    deliver("complete", "StatusQueueUrl", "ThumbnailsQueueUrl")
    job = wait_for_status(local_stack, job_id, {"READY", "FAILED"})

    # THEN the job is READY with the contract of the FFmpeg path
    assert job["status"] == "READY", job
    outputs = job["outputs"]
    assert [(r["name"], r["width"], r["height"]) for r in outputs["renditions"]] == [
        ("720p", 1280, 720), ("480p", 854, 480), ("360p", 640, 360), ("240p", 426, 240),
    ]  # fmt: skip
    assert set(outputs) >= {"hls_url", "renditions", "poster_url", "sprite_url", "storyboard_vtt_url", "thumbnail_urls"}
    variants = media_checks.master_variants(outputs["hls_url"])
    assert {v.resolution for v in variants} == {(r["width"], r["height"]) for r in outputs["renditions"]}
    for rendition in outputs["renditions"]:
        probe = media_checks.probe(rendition["url"])
        assert [(v["codec_name"], v["width"], v["height"]) for v in probe.video] == [
            ("h264", rendition["width"], rendition["height"])
        ]
    sprite = Image.open(io.BytesIO(requests.get(outputs["sprite_url"], timeout=30).content))
    vtt = requests.get(outputs["storyboard_vtt_url"], timeout=30)
    assert vtt.status_code == 200
    assert_storyboard_consistent(
        parse_vtt(vtt.text), sprite_width=sprite.width, sprite_height=sprite.height, duration_s=6.0
    )
    poster = requests.get(outputs["poster_url"], timeout=30)
    assert poster.status_code == 200 and Image.open(io.BytesIO(poster.content)).width == 1280
    assert len(outputs["thumbnail_urls"]) == 5
