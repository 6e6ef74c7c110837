"""The MediaConvert CreateJob request: built from the same ladder plan as the
FFmpeg path, and valid against botocore's MediaConvert service model (a
Stubber that expects the exact request; the real client validates it first)."""

from __future__ import annotations

import json
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ParamValidationError
from botocore.stub import Stubber
from botocore.validate import ParamValidator

from transcode.domain_logic.ladder import DEFAULT_LADDER, LadderConfig, RateControl, Rung, ladder_from_text, plan_ladder
from transcode.domain_logic.mediaconvert_job import (
    MAX_CAPTURES,
    build_create_job_request,
    capture_interval_ms,
    stereo_remix,
)
from transcode.domain_logic.mediaconvert_submit import submit_ladder_job
from vidpipe.adapters.mediaconvert import MediaConvertJobs
from vidpipe.domain.colour import SDR_BT709
from vidpipe.domain.errors import MediaConvertError, MediaTooLong, UnsupportedDimensions, ValidationFailed
from vidpipe.domain.source_info import SourceInfo
from vidpipe.runtime.settings import Settings

JOB_ID = "0b9f5a4c2d8e4f1a9c3b7d6e5f4a3b2c"
SAMPLE_MEDIA = Path(__file__).resolve().parents[2] / "sample_media"
ROLE = "arn:aws:iam::111122223333:role/vidpipe-MediaConvertRole"
SOURCE_URL = f"s3://vidpipe-uploads/uploads/{JOB_ID}/source"
OUTPUTS_URL = f"s3://vidpipe-outputs/jobs/{JOB_ID}/"


def source(
    width: int = 1280, height: int = 720, *, rotation: int = 0, channels: int = 2, duration_s: float = 6.0
) -> SourceInfo:
    return SourceInfo(
        duration_s=duration_s,
        width=width,
        height=height,
        rotation=rotation,
        frame_rate=Fraction(30),
        video_codec="h264",
        audio_codec="aac" if channels else None,
        audio_channels=channels,
        format_name="mov,mp4,m4a,3gp,3g2,mj2",
        colour=SDR_BT709,
    )


def request_for(probed: SourceInfo, **overrides: object) -> dict:
    arguments = {
        "job_id": JOB_ID,
        "stack_name": "vidpipe",
        "role_arn": ROLE,
        "source_url": SOURCE_URL,
        "outputs_url": OUTPUTS_URL,
        "source": probed,
        # What the MediaConvert backend plans: the fixed ladder's rates (its own QVBR decides per title).
        "ladder": plan_ladder(probed, replace(DEFAULT_LADDER, rate_control=RateControl.FIXED)),
    } | overrides
    return build_create_job_request(**arguments)  # type: ignore[arg-type]


def mediaconvert() -> object:
    return boto3.client("mediaconvert", region_name="eu-west-1", aws_access_key_id="test", aws_secret_access_key="test")


def created(mediaconvert_job_id: str) -> dict:
    """CreateJob's answer (the Stubber checks it against the model too)."""
    return {"Job": {"Id": mediaconvert_job_id, "Role": ROLE, "Settings": {}}}


def h264(max_kbps: int, buffer_kbps: int) -> dict:
    return {
        "CodecProfile": "HIGH",
        "CodecLevel": "AUTO",
        "RateControlMode": "QVBR",
        "HrdBufferSize": buffer_kbps * 1000,
        "GopSize": 4.0,
        "GopSizeUnits": "SECONDS",
        "GopClosedCadence": 1,
        "SceneChangeDetect": "DISABLED",
        "FramerateControl": "INITIALIZE_FROM_SOURCE",
        "ParControl": "SPECIFIED",
        "ParNumerator": 1,
        "ParDenominator": 1,
        "QualityTuningLevel": "SINGLE_PASS_HQ",
        "MaxBitrate": max_kbps * 1000,
        "QvbrSettings": {"QvbrQualityLevel": 7},
    }


AAC_128K = {
    "AudioSourceName": "Audio Selector 1",
    "CodecSettings": {
        "Codec": "AAC",
        "AacSettings": {
            "Bitrate": 128000,
            "CodingMode": "CODING_MODE_2_0",
            "CodecProfile": "LC",
            "SampleRate": 48000,
            "RateControlMode": "CBR",
        },
    },
}


def hls_output(name: str, width: int, height: int, max_kbps: int, buffer_kbps: int) -> dict:
    return {
        "NameModifier": f"_{name}",
        "ContainerSettings": {"Container": "M3U8", "M3u8Settings": {}},
        "VideoDescription": {
            "Width": width,
            "Height": height,
            "ScalingBehavior": "DEFAULT",
            "CodecSettings": {"Codec": "H_264", "H264Settings": h264(max_kbps, buffer_kbps)},
            "ColorMetadata": "INSERT",
            "VideoPreprocessors": {
                "ColorCorrector": {
                    "ColorSpaceConversion": "FORCE_709",
                    "SampleRangeConversion": "LIMITED_RANGE_SQUEEZE",
                }
            },
        },
        "AudioDescriptions": [AAC_128K],
    }


# The whole request for a 6 s 1280x720 stereo clip, written out by hand from the
# default ladder (720p, 480p, 360p, 240p; peak = 1.25 x average, 2 s buffer).
EXPECTED_720P_REQUEST = {
    "Role": ROLE,
    "ClientRequestToken": JOB_ID,
    "StatusUpdateInterval": "SECONDS_15",
    "UserMetadata": {
        "vidpipe_job_id": JOB_ID,
        "vidpipe_stack": "vidpipe",
        "vidpipe_renditions": json.dumps(
            [
                {"name": "720p", "width": 1280, "height": 720, "bitrate": 2928000},
                {"name": "480p", "width": 854, "height": 480, "bitrate": 1528000},
                {"name": "360p", "width": 640, "height": 360, "bitrate": 928000},
                {"name": "240p", "width": 426, "height": 240, "bitrate": 528000},
            ],
            separators=(",", ":"),
        ),
        "vidpipe_duration_ms": "6000",
        "vidpipe_capture_interval_ms": "1000",
    },
    "Tags": {"vidpipe:job-id": JOB_ID, "vidpipe:stack": "vidpipe"},
    "Settings": {
        "TimecodeConfig": {"Source": "ZEROBASED"},
        "Inputs": [
            {
                "FileInput": SOURCE_URL,
                "TimecodeSource": "ZEROBASED",
                "VideoSelector": {"Rotate": "AUTO"},
                "AudioSelectors": {"Audio Selector 1": {"DefaultSelection": "DEFAULT"}},
            }
        ],
        "OutputGroups": [
            {
                "Name": "HLS",
                "OutputGroupSettings": {
                    "Type": "HLS_GROUP_SETTINGS",
                    "HlsGroupSettings": {
                        "Destination": f"{OUTPUTS_URL}hls/master",
                        "SegmentLength": 4,
                        "MinSegmentLength": 0,
                        "SegmentControl": "SEGMENTED_FILES",
                        "DirectoryStructure": "SINGLE_DIRECTORY",
                        "ManifestDurationFormat": "FLOATING_POINT",
                        "OutputSelection": "MANIFESTS_AND_SEGMENTS",
                        "StreamInfResolution": "INCLUDE",
                        "CodecSpecification": "RFC_4281",
                        "ProgramDateTime": "EXCLUDE",
                    },
                },
                "Outputs": [
                    hls_output("720p", 1280, 720, 3500, 7000),
                    hls_output("480p", 854, 480, 1750, 3500),
                    hls_output("360p", 640, 360, 1000, 2000),
                    hls_output("240p", 426, 240, 500, 1000),
                ],
            },
            {
                "Name": "Frame captures",
                "OutputGroupSettings": {
                    "Type": "FILE_GROUP_SETTINGS",
                    "FileGroupSettings": {"Destination": f"{OUTPUTS_URL}captures/frame"},
                },
                "Outputs": [
                    {
                        "ContainerSettings": {"Container": "RAW"},
                        "VideoDescription": {
                            "Width": 1280,
                            "Height": 720,
                            "ScalingBehavior": "DEFAULT",
                            "VideoPreprocessors": {"ColorCorrector": {"ColorSpaceConversion": "FORCE_709"}},
                            "CodecSettings": {
                                "Codec": "FRAME_CAPTURE",
                                "FrameCaptureSettings": {
                                    "FramerateNumerator": 1000,
                                    "FramerateDenominator": 1000,
                                    "MaxCaptures": 100,
                                    "Quality": 85,
                                },
                            },
                        },
                    }
                ],
            },
            {
                # The MP4 download: the 720p rung once more, progressive (moov first).
                "Name": "MP4",
                "OutputGroupSettings": {
                    "Type": "FILE_GROUP_SETTINGS",
                    "FileGroupSettings": {"Destination": f"{OUTPUTS_URL}hls/download"},
                },
                "Outputs": [
                    {
                        **{k: v for k, v in hls_output("720p", 1280, 720, 3500, 7000).items() if k != "NameModifier"},
                        "Extension": "mp4",
                        "ContainerSettings": {
                            "Container": "MP4",
                            "Mp4Settings": {"MoovPlacement": "PROGRESSIVE_DOWNLOAD"},
                        },
                    }
                ],
            },
        ],
    },
}


def test_GIVEN_a_720p_stereo_source_WHEN_the_job_is_submitted_THEN_MediaConvert_gets_exactly_the_planned_request() -> (
    None
):
    client = mediaconvert()
    with Stubber(client) as stubber:
        stubber.add_response("create_job", created("1671476818694-phptj0"), EXPECTED_720P_REQUEST)

        job_id = MediaConvertJobs(client).submit(request_for(source()))

        stubber.assert_no_pending_responses()
    assert job_id == "1671476818694-phptj0"


def test_GIVEN_a_1080p_source_WHEN_the_request_is_built_THEN_the_MP4_download_is_its_720p_rung_with_moov_first() -> (
    None
):
    request = request_for(source(1920, 1080))

    (mp4_group,) = [group for group in request["Settings"]["OutputGroups"] if group["Name"] == "MP4"]
    (output,) = mp4_group["Outputs"]
    assert (output["VideoDescription"]["Width"], output["VideoDescription"]["Height"]) == (1280, 720)
    assert output["ContainerSettings"]["Mp4Settings"]["MoovPlacement"] == "PROGRESSIVE_DOWNLOAD"
    assert output["AudioDescriptions"][0]["CodecSettings"]["Codec"] == "AAC"
    assert mp4_group["OutputGroupSettings"]["FileGroupSettings"]["Destination"] == f"{OUTPUTS_URL}hls/download"


@pytest.mark.parametrize(
    "probed",
    [
        source(1920, 1080, channels=6),  # 5.1 downmixed
        source(1920, 1080, rotation=90, channels=1),  # portrait phone clip, mono
        source(2560, 1080, channels=0),  # 21:9 without audio
        source(160, 90, duration_s=7200.0),  # tiny and two hours long
    ],
    ids=["5.1", "portrait-mono", "21x9-silent", "tiny-long"],
)
def test_GIVEN_other_sources_WHEN_the_request_is_built_THEN_botocore_s_service_model_accepts_it(
    probed: SourceInfo,
) -> None:
    request = request_for(probed)

    with Stubber(mediaconvert()) as stubber:  # the client validates the parameters before the stub answers
        client = stubber.client
        stubber.add_response("create_job", created("1"), request)
        assert MediaConvertJobs(client).submit(request) == "1"
    outputs = request["Settings"]["OutputGroups"][0]["Outputs"]
    assert [o["NameModifier"] for o in outputs] == [f"_{r.name}" for r in plan_ladder(probed)]
    assert all(("AudioDescriptions" in o) is probed.has_audio for o in outputs)


def test_GIVEN_the_service_model_WHEN_a_request_breaks_it_THEN_the_client_refuses_it() -> None:
    # The guard the tests above rely on: botocore really validates.
    request = request_for(source())
    request["Settings"]["OutputGroups"][0]["Outputs"][0]["VideoDescription"]["Width"] = 16

    with pytest.raises(ParamValidationError, match="Width"):
        mediaconvert().create_job(**request)


def test_GIVEN_a_portrait_clip_WHEN_built_THEN_the_renditions_are_portrait_and_rotation_is_honoured() -> None:
    request = request_for(source(1920, 1080, rotation=90))

    sizes = [
        (o["VideoDescription"]["Width"], o["VideoDescription"]["Height"])
        for o in request["Settings"]["OutputGroups"][0]["Outputs"]
    ]
    assert sizes[0] == (1080, 1920)
    assert request["Settings"]["Inputs"][0]["VideoSelector"] == {"Rotate": "AUTO"}
    capture = request["Settings"]["OutputGroups"][1]["Outputs"][0]["VideoDescription"]
    assert (capture["Width"], capture["Height"]) == (720, 1280)


def test_GIVEN_CBR_WHEN_built_THEN_each_rung_has_its_average_bitrate_and_no_QVBR() -> None:
    probed = source()
    request = request_for(probed, rate_control="CBR")

    outputs = request["Settings"]["OutputGroups"][0]["Outputs"]
    settings = [o["VideoDescription"]["CodecSettings"]["H264Settings"] for o in outputs]
    assert [s["Bitrate"] for s in settings] == [r.video_bitrate_kbps * 1000 for r in plan_ladder(probed)]
    assert all(s["RateControlMode"] == "CBR" and "QvbrSettings" not in s for s in settings)
    ParamValidator().validate(request, mediaconvert().meta.service_model.operation_model("CreateJob").input_shape)


def test_GIVEN_an_unknown_rate_control_WHEN_built_THEN_ValueError() -> None:
    with pytest.raises(ValueError, match="rate control"):
        request_for(source(), rate_control="VBR")


def test_GIVEN_a_picture_under_32_pixels_WHEN_built_THEN_the_job_fails_with_unsupported_dimensions() -> None:
    with pytest.raises(UnsupportedDimensions, match="too small for MediaConvert"):
        request_for(source(40, 24))


@pytest.mark.parametrize(
    ("duration_s", "expected_ms"), [(0.5, 1000), (6.0, 1000), (100.0, 1000), (100.5, 2000), (7200.0, 72000)]
)
def test_GIVEN_a_duration_WHEN_capture_interval_is_chosen_THEN_at_most_100_whole_second_captures(
    duration_s: float, expected_ms: int
) -> None:
    interval = capture_interval_ms(duration_s)

    assert interval == expected_ms
    assert duration_s * 1000 / interval <= MAX_CAPTURES


def test_GIVEN_5_1_audio_WHEN_remixed_THEN_centre_and_surrounds_fold_in_at_minus_3_dB_and_LFE_is_dropped() -> None:
    remix = stereo_remix(6)

    left, right = (channel["InputChannels"] for channel in remix["ChannelMapping"]["OutputChannels"])
    assert left == [0, -60, -3, -60, -3, -60]
    assert right == [-60, 0, -3, -60, -60, -3]
    assert (remix["ChannelsIn"], remix["ChannelsOut"]) == (6, 2)


def test_GIVEN_a_ladder_text_WHEN_parsed_THEN_rungs_highest_first_or_a_clear_error() -> None:
    assert ladder_from_text("720:2800, 360:800") == LadderConfig(rungs=(Rung(720, 2800), Rung(360, 800)))
    assert ladder_from_text("") == LadderConfig()
    with pytest.raises(ValueError, match="short_side:kbps"):
        ladder_from_text("720p:2800")
    with pytest.raises(ValueError, match="highest first"):
        ladder_from_text("360:800,720:2800")


class _RecordingSubmitter:
    def __init__(self) -> None:
        self.requests: list[dict] = []

    def submit(self, request: dict) -> str:
        self.requests.append(request)
        return "mc-1"


@pytest.mark.ffmpeg
def test_GIVEN_a_real_clip_WHEN_submitted_THEN_it_is_probed_and_planned_like_the_ffmpeg_path() -> None:
    submitter, probed = _RecordingSubmitter(), []

    mediaconvert_job = submit_ladder_job(
        SAMPLE_MEDIA / "portrait_rotated.mp4",
        job_id=JOB_ID,
        source_url=SOURCE_URL,
        outputs_url=OUTPUTS_URL,
        stack_name="vidpipe",
        role_arn=ROLE,
        submitter=submitter,
        timeout_s=60,
        on_probed=probed.append,
    )

    assert mediaconvert_job == "mc-1"
    (request,) = submitter.requests
    renditions = json.loads(request["UserMetadata"]["vidpipe_renditions"])
    assert [r["name"] for r in renditions] == [r.name for r in plan_ladder(probed[0])]
    assert renditions[0]["height"] > renditions[0]["width"]  # rotation applied before planning


@pytest.mark.ffmpeg
def test_GIVEN_a_clip_over_the_duration_limit_WHEN_submitted_THEN_MediaTooLong_and_nothing_is_submitted() -> None:
    submitter = _RecordingSubmitter()

    with pytest.raises(MediaTooLong):
        submit_ladder_job(
            SAMPLE_MEDIA / "tiny_160x90.mp4",
            job_id=JOB_ID,
            source_url=SOURCE_URL,
            outputs_url=OUTPUTS_URL,
            stack_name="vidpipe",
            role_arn=ROLE,
            submitter=submitter,
            timeout_s=60,
            max_duration_s=0.5,
        )
    assert submitter.requests == []


def test_GIVEN_MediaConvert_refuses_WHEN_submitting_THEN_a_retryable_MediaConvertError() -> None:
    client = mediaconvert()
    with Stubber(client) as stubber:
        stubber.add_client_error("create_job", "BadRequestException", "role cannot be assumed", 400)

        with pytest.raises(MediaConvertError, match="role cannot be assumed"):
            MediaConvertJobs(client).submit(request_for(source()))


@pytest.mark.parametrize(("variable", "value"), [("TRANSCODE_BACKEND", "gpu"), ("MEDIACONVERT_RATE_CONTROL", "VBR")])
def test_GIVEN_a_backend_setting_outside_its_choices_WHEN_settings_are_read_THEN_MISCONFIGURED(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    for name in ("JOBS_TABLE", "UPLOADS_BUCKET", "OUTPUTS_BUCKET", "EVENT_BUS_NAME"):
        monkeypatch.setenv(name, name.lower())
    monkeypatch.setenv(variable, value)

    with pytest.raises(ValidationFailed) as raised:
        Settings.from_environment()
    assert raised.value.code == "MISCONFIGURED" and variable in raised.value.message


def test_GIVEN_no_backend_setting_WHEN_settings_are_read_THEN_ffmpeg_and_QVBR(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("JOBS_TABLE", "UPLOADS_BUCKET", "OUTPUTS_BUCKET", "EVENT_BUS_NAME"):
        monkeypatch.setenv(name, name.lower())
    monkeypatch.delenv("TRANSCODE_BACKEND", raising=False)
    monkeypatch.delenv("MEDIACONVERT_RATE_CONTROL", raising=False)

    settings = Settings.from_environment()
    assert (settings.transcode_backend, settings.mediaconvert_rate_control) == ("ffmpeg", "QVBR")
