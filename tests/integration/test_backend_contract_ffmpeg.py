"""Both backends produce the same job contract.

The same clip goes through the FFmpeg path (the transcode stage's own work
function, real FFmpeg; the thumbnails stage's) and through the MediaConvert
path (the CreateJob request built from it; the COMPLETE event MediaConvert
sends back for that request, shaped as tests/events/mediaconvert_complete.json;
thumbnails from frame captures like MediaConvert's, one a second). The two jobs
must read the same through GET /jobs/{id}: same fields, same renditions, same
storyboard grid."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from tests.vtt_checks import assert_storyboard_consistent, parse_vtt
from thumbnails.domain_logic.captures import thumbnails_from_captures
from thumbnails.domain_logic.thumbnail_set import make_thumbnails
from transcode.domain_logic.ladder import plan_ladder
from transcode.domain_logic.mediaconvert_job import build_create_job_request, hls_playlist_name
from transcode.handlers.transcode import transcode
from upload_api.domain_logic.job_view import job_view
from vidpipe.adapters.ffmpeg.inputs import input_args
from vidpipe.adapters.ffmpeg.probe import probe_media
from vidpipe.adapters.ffmpeg.process import run_ffmpeg
from vidpipe.domain.events import Stage, StageEvent, StageEventKind
from vidpipe.domain.inbound_events import parse_sqs_body
from vidpipe.domain.job_transitions import apply_event
from vidpipe.domain.jobs import Job, JobStatus
from vidpipe.runtime.settings import get_settings
from vidpipe.runtime.stage_inputs import StageContext

pytestmark = pytest.mark.ffmpeg

SAMPLE = Path(__file__).resolve().parents[2] / "sample_media" / "landscape_16x9_stereo.mp4"
EVENTS = Path(__file__).resolve().parents[1] / "events"
JOB_ID = "0b9f5a4c2d8e4f1a9c3b7d6e5f4a3b2c"
API = "https://abc123.execute-api.eu-west-1.amazonaws.com"
OUTPUTS_BUCKET = "vidpipe-outputs"


class FakeSigner:
    def presigned_get(self, key: str, *, expires_s: int) -> str:
        return f"https://{OUTPUTS_BUCKET}.s3.amazonaws.com/{key}?X-Amz-Expires={expires_s}"


@pytest.fixture
def lambda_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "JOBS_TABLE": "jobs",
        "UPLOADS_BUCKET": "vidpipe-uploads",
        "OUTPUTS_BUCKET": OUTPUTS_BUCKET,
        "EVENT_BUS_NAME": "vidpipe-events",
    }.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def completed(stage: Stage, outputs: dict[str, Any]) -> StageEvent:
    return StageEvent(job_id=JOB_ID, stage=stage, kind=StageEventKind.COMPLETED, outputs=outputs)


def ready_view(*events: StageEvent) -> dict[str, Any]:
    job = Job.new(JOB_ID, filename="clip.mp4", content_type="video/mp4", size=1, now="2026-01-01T00:00:00.000000Z")
    job.status = JobStatus.UPLOADED
    for event in events:
        job = apply_event(job, event) or job
    return job_view(job, api_url=API, signer=FakeSigner(), url_ttl_s=600, grant="expires=1&grant=g")


def ffmpeg_path(work: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """The two stages' Completed outputs as the FFmpeg stage functions make them."""
    context = StageContext(job_id=JOB_ID, source_path=SAMPLE, output_dir=work / "hls", report_progress=lambda _: None)
    hls = {"prefix": f"jobs/{JOB_ID}/hls/", **transcode(context, timeout_s=120, max_duration_s=1800, memory_mb=3008)}
    thumbnails = make_thumbnails(SAMPLE, work / "thumbnails", timeout_s=60).to_outputs()
    return hls, {"prefix": f"jobs/{JOB_ID}/thumbnails/", **thumbnails}


def mediaconvert_complete_event(request: dict[str, Any], capture_count: int) -> dict[str, Any]:
    """The COMPLETE event MediaConvert sends for ``request``: the documented shape
    (our fixture), with the request's metadata echoed and its outputs named as
    MediaConvert names them (destination + name modifier)."""
    event = copy.deepcopy(json.loads((EVENTS / "mediaconvert_complete.json").read_text()))
    detail = event["detail"]
    detail["userMetadata"] = request["UserMetadata"]
    hls_group, capture_group, mp4_group = request["Settings"]["OutputGroups"]
    hls_destination = hls_group["OutputGroupSettings"]["HlsGroupSettings"]["Destination"]
    hls_details, capture_details = detail["outputGroupDetails"]
    hls_details["playlistFilePaths"] = [f"{hls_destination}.m3u8"]
    hls_details["outputDetails"] = [
        {
            "outputFilePaths": [f"{hls_destination}{output['NameModifier']}.m3u8"],
            "durationInMs": 6000,
            "videoDetails": {
                "widthInPx": output["VideoDescription"]["Width"],
                "heightInPx": output["VideoDescription"]["Height"],
            },
        }
        for output in hls_group["Outputs"]
    ]
    capture_destination = capture_group["OutputGroupSettings"]["FileGroupSettings"]["Destination"]
    capture_details["outputDetails"][0]["outputFilePaths"] = [f"{capture_destination}.{capture_count - 1:07d}.jpg"]
    mp4_destination = mp4_group["OutputGroupSettings"]["FileGroupSettings"]["Destination"]
    detail["outputGroupDetails"].append(
        {"type": "FILE_GROUP", "outputDetails": [{"outputFilePaths": [f"{mp4_destination}.mp4"], "durationInMs": 6000}]}
    )
    return event


def frame_captures(work: Path, request: dict[str, Any]) -> list[Path]:
    """JPEGs like MediaConvert's frame captures of ``request`` (size, one every interval, numbered from 0)."""
    output = request["Settings"]["OutputGroups"][1]["Outputs"][0]["VideoDescription"]
    rate = output["CodecSettings"]["FrameCaptureSettings"]
    folder = work / "captures"
    folder.mkdir()
    source = probe_media(SAMPLE)
    run_ffmpeg(
        [
            *input_args(SAMPLE, source.demuxer),
            "-vf", f"fps={rate['FramerateNumerator']}/{rate['FramerateDenominator']},"
                   f"scale={output['Width']}:{output['Height']}",
            "-start_number", "0", "-q:v", "3",
            str(folder / "frame.%07d.jpg"),
        ],
        timeout_s=60,
    )  # fmt: skip
    return sorted(folder.glob("frame.*.jpg"))


def test_GIVEN_one_clip_WHEN_each_backend_processes_it_THEN_GET_jobs_shows_the_same_contract(
    tmp_path: Path, lambda_environment: None
) -> None:
    ffmpeg_hls, ffmpeg_thumbnails = ffmpeg_path(tmp_path / "ffmpeg")

    source = probe_media(SAMPLE)
    request = build_create_job_request(
        job_id=JOB_ID,
        stack_name="vidpipe",
        role_arn="arn:aws:iam::111122223333:role/mediaconvert",
        source_url=f"s3://vidpipe-uploads/uploads/{JOB_ID}/source",
        outputs_url=f"s3://{OUTPUTS_BUCKET}/jobs/{JOB_ID}/",
        source=source,
        ladder=plan_ladder(source),
    )
    captures = frame_captures(tmp_path, request)
    complete = mediaconvert_complete_event(request, len(captures))
    transcode_completed = parse_sqs_body(json.dumps(complete))
    mediaconvert_thumbnails = thumbnails_from_captures(
        captures, tmp_path / "mc-thumbnails", interval_ms=1000, duration_s=source.duration_s
    ).to_outputs()

    via_ffmpeg = ready_view(completed(Stage.TRANSCODE, ffmpeg_hls), completed(Stage.THUMBNAILS, ffmpeg_thumbnails))
    via_mediaconvert = ready_view(
        transcode_completed,
        completed(Stage.THUMBNAILS, {"prefix": f"jobs/{JOB_ID}/thumbnails/", **mediaconvert_thumbnails}),
    )

    assert via_ffmpeg["status"] == via_mediaconvert["status"] == "READY"
    assert via_ffmpeg.keys() == via_mediaconvert.keys()
    ffmpeg_outputs, mediaconvert_outputs = via_ffmpeg["outputs"], via_mediaconvert["outputs"]
    assert ffmpeg_outputs.keys() == mediaconvert_outputs.keys() >= {
        "hls_url", "renditions", "poster_url", "sprite_url", "storyboard_vtt_url", "thumbnail_urls", "mp4_url",
    }  # fmt: skip
    # The MP4 download at the same key on both backends (MediaConvert names it by its destination).
    assert mediaconvert_outputs["mp4_url"].split("?")[0] == ffmpeg_outputs["mp4_url"].split("?")[0]
    assert ffmpeg_outputs["mp4_url"].split("?")[0].endswith(f"jobs/{JOB_ID}/hls/download.mp4")

    def shape(renditions: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{k: v for k, v in r.items() if k not in ("url", "bitrate")} for r in renditions]

    assert shape(mediaconvert_outputs["renditions"]) == shape(ffmpeg_outputs["renditions"])
    # The bitrate is each backend's own figure: FFmpeg's is measured on the segments
    # it wrote (a per-title rung spends what the content needs), MediaConvert's is
    # the planned one. Both are bit/s a player can choose by.
    for rendition in [*mediaconvert_outputs["renditions"], *ffmpeg_outputs["renditions"]]:
        assert isinstance(rendition["bitrate"], int) and rendition["bitrate"] > 0
    assert [r.keys() for r in mediaconvert_outputs["renditions"]] == [r.keys() for r in ffmpeg_outputs["renditions"]]
    job_url = f"{API}/jobs/{JOB_ID}"
    master_url = f"{job_url}/hls/master.m3u8?expires=1&grant=g"
    assert mediaconvert_outputs["hls_url"] == ffmpeg_outputs["hls_url"] == master_url
    assert [r["url"] for r in mediaconvert_outputs["renditions"]] == [
        f"{job_url}/hls/{hls_playlist_name(r['name'])}?expires=1&grant=g" for r in ffmpeg_outputs["renditions"]
    ]
    assert mediaconvert_outputs["storyboard_vtt_url"] == ffmpeg_outputs["storyboard_vtt_url"]
    assert len(mediaconvert_outputs["thumbnail_urls"]) == len(ffmpeg_outputs["thumbnail_urls"])
    # The same storyboard grid, so a player's scrubbing previews work the same.
    grid = ("tile_width", "tile_height", "columns", "rows", "tile_count", "interval_s")
    assert {k: mediaconvert_thumbnails[k] for k in grid} == {k: ffmpeg_thumbnails[k] for k in grid}

    with Image.open(tmp_path / "mc-thumbnails" / "sprite.jpg") as sprite:
        cues = parse_vtt((tmp_path / "mc-thumbnails" / "storyboard.vtt").read_text())
        assert_storyboard_consistent(
            cues, sprite_width=sprite.width, sprite_height=sprite.height, duration_s=source.duration_s
        )
