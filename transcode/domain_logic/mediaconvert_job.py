"""Build the AWS Elemental MediaConvert ``CreateJob`` request for one upload.

The request is made from the same ladder plan as the FFmpeg path
(:func:`transcode.domain_logic.ladder.plan_ladder`), so both backends give the
same renditions: same names, sizes and nominal bitrates, H.264 + AAC-LC stereo,
keyframes every segment on every rung. Pure functions, no AWS: the adapter in
:mod:`vidpipe.adapters.mediaconvert` submits the request.

Layout MediaConvert writes under ``jobs/{job_id}/`` (one HLS group writes every
file into one folder; MediaConvert names child playlists and segments after the
group's destination plus each output's name modifier)::

    hls/master.m3u8
    hls/master_{name}.m3u8, hls/master_{name}_00001.ts ...     e.g. master_720p.m3u8
    hls/download.mp4                                            the MP4 download (a file group of its own)
    captures/frame.0000000.jpg, frame.0000001.jpg ...           one frame every capture interval

The thumbnails function turns the captures into the poster, thumbnails, sprite
and storyboard (see :mod:`thumbnails.domain_logic.captures`).

``UserMetadata`` carries what the state-change events must bring back: the job
id, the stack (the EventBridge rule matches only its own stack's jobs), the
planned renditions (the job contract's ``renditions``), the source duration and
the capture interval (the storyboard's time axis).

What can go wrong: UnsupportedDimensions (a MediaError: the job FAILS) for a
picture whose smallest rendition is under 32 pixels a side, which MediaConvert
refuses though FFmpeg would encode it; ValueError for a rate control other
than QVBR or CBR, or an empty ladder (programming errors).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

from transcode.domain_logic.hls import DEFAULT_SEGMENT_S, MASTER_PLAYLIST_NAME
from transcode.domain_logic.ladder import Rendition
from transcode.domain_logic.mp4_download import download_rung
from transcode.domain_logic.transcoding import rendition_summary
from vidpipe.domain.colour import HLG, VideoColour, assume_untagged
from vidpipe.domain.errors import UnsupportedDimensions
from vidpipe.domain.mediaconvert_events import (
    META_CAPTURE_INTERVAL_MS,
    META_DURATION_MS,
    META_JOB_ID,
    META_RENDITIONS,
    META_STACK,
)
from vidpipe.domain.source_info import SourceInfo
from vidpipe.domain.storage_keys import HLS_FOLDER, MP4_DOWNLOAD_NAME

RATE_CONTROLS = ("QVBR", "CBR")
# QVBR level 7 is what AWS suggests for most content on most screens; MaxBitrate
# (the ladder's peak) still caps every rung, so the ladder's bandwidths hold.
QVBR_QUALITY_LEVEL = 7
AUDIO_SAMPLE_RATE = 48000
# "Master" so that MediaConvert's multivariant playlist is master.m3u8, the name
# the FFmpeg path writes and the API serves.
HLS_BASE_NAME = MASTER_PLAYLIST_NAME.removesuffix(".m3u8")
CAPTURE_FOLDER = "captures/"
CAPTURE_BASE_NAME = "frame"
# Frame captures at most this often and this many: the storyboard has at most
# 100 tiles, so more captures would only cost downloads.
MIN_CAPTURE_INTERVAL_MS = 1000
MAX_CAPTURES = 100
# MediaConvert's smallest output picture, a side.
MIN_SIDE_PX = 32
# Large enough for the poster (the thumbnails function scales everything else down).
CAPTURE_BOX_PX = 1280
CAPTURE_QUALITY = 85
# Progress every 15 s rather than MediaConvert's default minute: a short job
# would otherwise go from "started" to "done" with nothing in between.
STATUS_UPDATE_INTERVAL = "SECONDS_15"
# How MediaConvert names the SDR matrices we assume for an untagged source.
_COLOR_SPACE_OF_MATRIX = {"smpte170m": "REC_601", "bt709": "REC_709"}


def capture_interval_ms(duration_s: float) -> int:
    """Whole seconds between frame captures: the smallest that keeps the count
    at or under MAX_CAPTURES, at least one second."""
    duration_ms = max(1, math.ceil(duration_s * 1000))
    seconds = max(1, math.ceil(duration_ms / (MAX_CAPTURES * 1000)))
    return max(MIN_CAPTURE_INTERVAL_MS, seconds * 1000)


def hls_playlist_name(rendition_name: str) -> str:
    """The media playlist MediaConvert writes for a rendition, relative to ``hls/``."""
    return f"{HLS_BASE_NAME}_{rendition_name}.m3u8"


def build_create_job_request(
    *,
    job_id: str,
    stack_name: str,
    role_arn: str,
    source_url: str,
    outputs_url: str,
    source: SourceInfo,
    ladder: Sequence[Rendition],
    rate_control: str = "QVBR",
    segment_s: int = DEFAULT_SEGMENT_S,
) -> dict[str, Any]:
    """Keyword arguments for ``mediaconvert.create_job``.

    ``source_url`` is the upload (``s3://bucket/uploads/{id}/source``);
    ``outputs_url`` the job's output folder (``s3://bucket/jobs/{id}/``, with the
    slash). ``ClientRequestToken`` is the job id: a redelivered SQS message
    submits the same request again, and MediaConvert answers it with the job it
    already created instead of transcoding twice."""
    if rate_control not in RATE_CONTROLS:
        raise ValueError(f"rate control must be one of {RATE_CONTROLS}, not {rate_control!r}")
    if not ladder:
        raise ValueError("a MediaConvert job needs at least one rendition")
    smallest = ladder[-1]
    if min(smallest.width, smallest.height) < MIN_SIDE_PX:
        raise UnsupportedDimensions(
            f"the picture {source.display_width}x{source.display_height} is too small for MediaConvert "
            f"(at least {MIN_SIDE_PX} pixels a side)"
        )
    interval_ms = capture_interval_ms(source.duration_s)
    input_settings: dict[str, Any] = {
        "FileInput": source_url,
        "TimecodeSource": "ZEROBASED",
        # Honour the rotation metadata of phone videos, as the FFmpeg path does:
        # the ladder's sizes are the displayed (rotated) picture's.
        "VideoSelector": {"Rotate": "AUTO", **_untagged_colour_space(source)},
    }
    if source.has_audio:
        input_settings["AudioSelectors"] = {"Audio Selector 1": {"DefaultSelection": "DEFAULT"}}
    return {
        "Role": role_arn,
        "ClientRequestToken": job_id,
        "StatusUpdateInterval": STATUS_UPDATE_INTERVAL,
        "UserMetadata": {
            META_JOB_ID: job_id,
            META_STACK: stack_name,
            META_RENDITIONS: json.dumps([rendition_summary(r) for r in ladder], separators=(",", ":")),
            META_DURATION_MS: str(max(1, round(source.duration_s * 1000))),
            META_CAPTURE_INTERVAL_MS: str(interval_ms),
        },
        "Tags": {"vidpipe:job-id": job_id, "vidpipe:stack": stack_name},
        "Settings": {
            "TimecodeConfig": {"Source": "ZEROBASED"},
            "Inputs": [input_settings],
            "OutputGroups": [
                _hls_group(outputs_url, source, ladder, rate_control, segment_s),
                _capture_group(outputs_url, source, interval_ms),
                _mp4_group(outputs_url, source, download_rung(ladder), rate_control, segment_s),
            ],
        },
    }


def _hls_group(
    outputs_url: str, source: SourceInfo, ladder: Sequence[Rendition], rate_control: str, segment_s: int
) -> dict[str, Any]:
    return {
        "Name": "HLS",
        "OutputGroupSettings": {
            "Type": "HLS_GROUP_SETTINGS",
            "HlsGroupSettings": {
                "Destination": f"{outputs_url}{HLS_FOLDER}/{HLS_BASE_NAME}",
                "SegmentLength": segment_s,
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
        "Outputs": [_hls_output(rendition, source, rate_control, segment_s) for rendition in ladder],
    }


def _hls_output(rendition: Rendition, source: SourceInfo, rate_control: str, segment_s: int) -> dict[str, Any]:
    output: dict[str, Any] = {
        "NameModifier": f"_{rendition.name}",
        "ContainerSettings": {"Container": "M3U8", "M3u8Settings": {}},
        "VideoDescription": {
            "Width": rendition.width,
            "Height": rendition.height,
            # The ladder keeps the aspect ratio already: scale, never crop or pad.
            "ScalingBehavior": "DEFAULT",
            "CodecSettings": {"Codec": "H_264", "H264Settings": _h264_settings(rendition, rate_control, segment_s)},
            # BT.709 limited range, tagged, like the FFmpeg path (see vidpipe.domain.colour).
            "ColorMetadata": "INSERT",
            "VideoPreprocessors": {"ColorCorrector": _color_corrector(source.colour, limited_range=True)},
        },
    }
    if source.has_audio:
        # Every rung carries its own (muxed) stereo track, as the FFmpeg path's
        # rungs do, so a player needs no separate audio rendition group.
        output["AudioDescriptions"] = [_stereo_aac(rendition.audio_bitrate_kbps, source.audio_channels)]
    return output


def _mp4_group(
    outputs_url: str, source: SourceInfo, rung: Rendition, rate_control: str, segment_s: int
) -> dict[str, Any]:
    """The MP4 download: the download rung's picture and sound again, in a
    progressive MP4 with its moov first. MediaConvert cannot remux its own HLS
    output, so this is one more encode of that rung (from the same decode); the
    destination names the file, ``hls/download.mp4``, as on the FFmpeg path."""
    rendition_output = _hls_output(rung, source, rate_control, segment_s)
    del rendition_output["NameModifier"]
    return {
        "Name": "MP4",
        "OutputGroupSettings": {
            "Type": "FILE_GROUP_SETTINGS",
            "FileGroupSettings": {"Destination": f"{outputs_url}{HLS_FOLDER}/{MP4_DOWNLOAD_NAME.removesuffix('.mp4')}"},
        },
        "Outputs": [
            {
                **rendition_output,
                "Extension": "mp4",
                "ContainerSettings": {"Container": "MP4", "Mp4Settings": {"MoovPlacement": "PROGRESSIVE_DOWNLOAD"}},
            }
        ],
    }


def _untagged_colour_space(source: SourceInfo) -> dict[str, Any]:
    """VideoSelector settings that make MediaConvert read an untagged SDR source
    as our FFmpeg path and players do (BT.601 when SD, BT.709 when HD); nothing
    for a tagged source, whose own metadata MediaConvert follows."""
    if source.colour.matrix is not None or source.colour.is_hdr:
        return {}
    assumed = assume_untagged(source.colour, source.display_width, source.display_height)
    return {"ColorSpace": _COLOR_SPACE_OF_MATRIX[assumed.matrix or "bt709"], "ColorSpaceUsage": "FALLBACK"}


def _color_corrector(colour: VideoColour, *, limited_range: bool) -> dict[str, Any]:
    """MediaConvert's ColorCorrector for SDR BT.709 out of any source: FORCE_709
    converts between SDR spaces and tone-maps HDR; LIMITED_RANGE_SQUEEZE turns a
    full-range source limited (frame captures are JPEGs, full range by nature).

    The tone-mapper is named only for HDR sources (it does nothing for SDR).
    MediaConvert uses PRESERVE_DETAILS for HLG whatever we ask; for PQ its
    documentation recommends VIBRANT, which keeps the colours as the FFmpeg
    path's ``desat=0`` does."""
    corrector: dict[str, Any] = {"ColorSpaceConversion": "FORCE_709"}
    if limited_range:
        corrector["SampleRangeConversion"] = "LIMITED_RANGE_SQUEEZE"
    if colour.is_hdr:
        corrector["HdrToSdrToneMapper"] = "PRESERVE_DETAILS" if colour.transfer == HLG else "VIBRANT"
    return corrector


def _h264_settings(rendition: Rendition, rate_control: str, segment_s: int) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "CodecProfile": "HIGH",
        "CodecLevel": "AUTO",
        "RateControlMode": rate_control,
        "HrdBufferSize": rendition.buffer_kbps * 1000,
        # Keyframes at the same instants on every rung, one per segment (like
        # -force_key_frames on the FFmpeg path); no extra keyframes at scene
        # changes, which would differ between sizes and break switching.
        "GopSize": float(segment_s),
        "GopSizeUnits": "SECONDS",
        "GopClosedCadence": 1,
        "SceneChangeDetect": "DISABLED",
        "FramerateControl": "INITIALIZE_FROM_SOURCE",
        "ParControl": "SPECIFIED",
        "ParNumerator": 1,
        "ParDenominator": 1,
        "QualityTuningLevel": "SINGLE_PASS_HQ",
    }
    if rate_control == "QVBR":
        settings["MaxBitrate"] = rendition.max_bitrate_kbps * 1000
        settings["QvbrSettings"] = {"QvbrQualityLevel": QVBR_QUALITY_LEVEL}
    else:
        settings["Bitrate"] = rendition.video_bitrate_kbps * 1000
    return settings


def _stereo_aac(bitrate_kbps: int, channels: int) -> dict[str, Any]:
    description: dict[str, Any] = {
        "AudioSourceName": "Audio Selector 1",
        "CodecSettings": {
            "Codec": "AAC",
            "AacSettings": {
                "Bitrate": bitrate_kbps * 1000,
                "CodingMode": "CODING_MODE_2_0",
                "CodecProfile": "LC",
                "SampleRate": AUDIO_SAMPLE_RATE,
                "RateControlMode": "CBR",
            },
        },
    }
    if channels != 2:
        description["RemixSettings"] = stereo_remix(channels)
    return description


def stereo_remix(channels: int) -> dict[str, Any]:
    """MediaConvert remix settings that make stereo out of ``channels`` inputs.

    Gains are whole dB (-60 mutes). Mono goes to both sides; 5.1 (L R C LFE Ls
    Rs, the order AAC and AC-3 decoders give) is downmixed the ITU way, centre
    and surrounds at -3 dB, LFE dropped; other layouts keep their first two
    channels (we cannot know what the rest mean)."""
    if channels <= 0:
        raise ValueError(f"a source with audio has at least one channel, not {channels}")
    if channels == 1:
        rows = [[0], [0]]
    elif channels == 6:
        rows = [[0, -60, -3, -60, -3, -60], [-60, 0, -3, -60, -60, -3]]
    else:
        rows = [[0 if index == side else -60 for index in range(channels)] for side in (0, 1)]
    return {
        "ChannelsIn": channels,
        "ChannelsOut": 2,
        "ChannelMapping": {"OutputChannels": [{"InputChannels": row} for row in rows]},
    }


def _capture_group(outputs_url: str, source: SourceInfo, interval_ms: int) -> dict[str, Any]:
    width, height = _fit_even(source.display_width, source.display_height, CAPTURE_BOX_PX)
    return {
        "Name": "Frame captures",
        "OutputGroupSettings": {
            "Type": "FILE_GROUP_SETTINGS",
            "FileGroupSettings": {"Destination": f"{outputs_url}{CAPTURE_FOLDER}{CAPTURE_BASE_NAME}"},
        },
        "Outputs": [
            {
                "ContainerSettings": {"Container": "RAW"},
                "VideoDescription": {
                    "Width": width,
                    "Height": height,
                    "ScalingBehavior": "DEFAULT",
                    # Posters and sprites come from these: SDR BT.709 like the renditions.
                    "VideoPreprocessors": {"ColorCorrector": _color_corrector(source.colour, limited_range=False)},
                    "CodecSettings": {
                        "Codec": "FRAME_CAPTURE",
                        # One frame every interval_ms: a frame rate of 1000/interval_ms.
                        "FrameCaptureSettings": {
                            "FramerateNumerator": 1000,
                            "FramerateDenominator": interval_ms,
                            "MaxCaptures": MAX_CAPTURES,
                            "Quality": CAPTURE_QUALITY,
                        },
                    },
                },
            }
        ],
    }


def _fit_even(width: int, height: int, box: int) -> tuple[int, int]:
    """The displayed size scaled to fit ``box`` (never up), even on both sides
    (MediaConvert refuses odd sizes), at least 32 x 32 (its smallest)."""
    scale = min(1.0, box / max(width, height))
    return max(32, 2 * round(width * scale / 2)), max(32, 2 * round(height * scale / 2))
