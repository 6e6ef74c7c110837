"""Subtitles and captions: SubRip/WebVTT parsing, segmented WebVTT, the master
playlist's SUBTITLES group, the playlist signer, caption requests and the
sidecar processing (with fake stores)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from tests.unit.test_hls_args import source
from transcode.domain_logic.hls import render_master_playlist
from transcode.domain_logic.ladder import DEFAULT_LADDER, plan_ladder
from transcode.domain_logic.sidecar_captions import process_caption
from upload_api.domain_logic.captions import CaptionRequest, check_caption_request
from upload_api.domain_logic.playlists import sign_master_playlist
from vidpipe.domain.errors import InvalidCaptions, UnsupportedMediaType, UploadTooLarge, ValidationFailed
from vidpipe.domain.events import Stage
from vidpipe.domain.jobs import Job, JobStatus, StageState, StageStatus
from vidpipe.domain.subtitles import SubtitleRendition, master_with_subtitles, subtitle_tracks
from vidpipe.domain.webvtt import parse_srt, parse_webvtt, read_caption_file, segment_cues

SRT = (
    "1\r\n00:00:00,500 --> 00:00:01,500\r\nHello <i>world</i>\r\n\r\n"
    "2\r\n00:00:05,000 --> 00:00:09,250\r\nTwo\r\nlines\r\n"
)
MASTER = "#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-STREAM-INF:BANDWIDTH=1,RESOLUTION=2x2\n240p/index.m3u8\n"


def test_GIVEN_a_subrip_file_WHEN_parsed_THEN_its_cues_keep_times_and_lines() -> None:
    cues = parse_srt(SRT)

    assert [(c.start_s, c.end_s, c.text) for c in cues] == [(0.5, 1.5, "Hello <i>world</i>"), (5.0, 9.25, "Two\nlines")]


@pytest.mark.parametrize(
    "text",
    ["1\n00:00:01 --> 00:00:02\nno millis\n", "1\n00:00:03,000 --> 00:00:02,000\nbackwards\n", "", "\n\n"],
)
def test_GIVEN_a_broken_subrip_file_WHEN_parsed_THEN_invalid_captions_names_the_problem(text: str) -> None:
    with pytest.raises(InvalidCaptions):
        parse_srt(text)


def test_GIVEN_webvtt_with_notes_and_identifiers_WHEN_parsed_THEN_only_cues_remain() -> None:
    text = "WEBVTT\n\nNOTE a comment\n\nintro\n00:01.000 --> 00:02.000 align:start\nHi\n"

    [cue] = parse_webvtt(text)

    assert (cue.start_s, cue.end_s, cue.text, cue.settings) == (1.0, 2.0, "Hi", "align:start")


def test_GIVEN_bytes_that_are_not_utf8_WHEN_read_as_a_caption_file_THEN_invalid_captions() -> None:
    with pytest.raises(InvalidCaptions, match="UTF-8"):
        read_caption_file(b"1\n00:00:01,000 --> 00:00:02,000\n\xff\xfe\n")


def test_GIVEN_cues_WHEN_segmented_THEN_each_segment_holds_the_cues_overlapping_it_with_a_timestamp_map() -> None:
    segments = segment_cues(parse_srt(SRT), duration_s=10.0, segment_s=4)

    assert len(segments) == 3
    assert all("X-TIMESTAMP-MAP=MPEGTS:126000,LOCAL:00:00:00.000" in segment for segment in segments)
    assert "Hello" in segments[0] and "Two" not in segments[0]
    assert "Two" in segments[1] and "Two" in segments[2]


def test_GIVEN_probe_streams_WHEN_read_THEN_text_and_bitmap_tracks_are_told_apart() -> None:
    streams = [
        {"codec_type": "video", "codec_name": "h264"},
        {
            "codec_type": "subtitle",
            "codec_name": "mov_text",
            "tags": {"language": "fra"},
            "disposition": {"default": 1},
        },
        {"codec_type": "subtitle", "codec_name": "hdmv_pgs_subtitle", "tags": {"language": "eng"}},
    ]

    text, bitmap = subtitle_tracks(streams)

    assert (text.position, text.language, text.is_text, text.default) == (0, "fr", True, True)
    assert not bitmap.is_text
    assert bitmap.skipped()["reason"].startswith("hdmv_pgs_subtitle is a bitmap subtitle format")


def test_GIVEN_subtitle_renditions_WHEN_the_master_is_rendered_THEN_every_variant_names_the_group() -> None:
    ladder = plan_ladder_for_test()
    subtitles = [SubtitleRendition("subs-0", "Français", "fr", default=True)]

    master = render_master_playlist(ladder, True, frame_rate=ladder_rate(), subtitles=subtitles)

    media = [line for line in master.splitlines() if line.startswith("#EXT-X-MEDIA:")]
    assert media == [
        '#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",NAME="Français",LANGUAGE="fr",'
        'DEFAULT=YES,AUTOSELECT=YES,URI="subs-0/index.m3u8"'
    ]
    variants = [line for line in master.splitlines() if line.startswith("#EXT-X-STREAM-INF:")]
    assert variants and all(line.endswith(',SUBTITLES="subs"') for line in variants)


def test_GIVEN_a_master_WHEN_the_same_caption_is_added_twice_THEN_it_is_listed_once() -> None:
    caption = SubtitleRendition("captions-ab", "English", "en")

    twice = master_with_subtitles(master_with_subtitles(MASTER, [caption]), [caption])

    assert twice.count("#EXT-X-MEDIA:") == 1
    assert twice.count('SUBTITLES="subs"') == 1


def test_GIVEN_a_master_with_subtitles_WHEN_signed_THEN_the_media_uri_carries_the_grant() -> None:
    master = master_with_subtitles(MASTER, [SubtitleRendition("subs-0", "fr", "fr")])

    signed = sign_master_playlist(master, query="grant=g", key_prefix="jobs/j/hls/", sign=lambda key: "signed:" + key)

    assert 'URI="subs-0/index.m3u8?grant=g"' in signed


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"language": "english!"}, ValidationFailed),
        ({"filename": "subs.txt"}, ValidationFailed),
        ({"label": 'say "hi"'}, ValidationFailed),
        ({"content_type": "video/mp4"}, UnsupportedMediaType),
        ({"size": 5 * 1024 * 1024}, UploadTooLarge),
    ],
)
def test_GIVEN_a_bad_caption_request_WHEN_checked_THEN_the_field_is_refused(change: dict, error: type) -> None:
    fields = {"language": "en", "label": "English", "filename": "a.srt", "content_type": "text/plain", "size": 10}

    with pytest.raises(error):
        check_caption_request(CaptionRequest(**(fields | change)))


class FakeJobs:
    def __init__(self, job: Job) -> None:
        self.job = job

    def get(self, job_id: str) -> Job:
        return Job.from_dict(self.job.to_dict())

    def save(self, job: Job, *, expected_version: int) -> Job:
        job.version = expected_version + 1
        self.job = job
        return job


class FakeStore:
    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files

    def download(self, key: str, path: Path) -> None:
        path.write_bytes(self.files[key])

    def read_text(self, key: str) -> str:
        return self.files[key].decode()

    def upload_tree(self, local_dir: Path, prefix: str) -> list[str]:
        for path in local_dir.rglob("*"):
            self.files[f"{prefix}/{path.relative_to(local_dir).as_posix()}"] = path.read_bytes()
        return []

    def upload_file(self, path: Path, key: str, *, content_type: str | None = None) -> None:
        self.files[key] = path.read_bytes()


def ready_job_with_caption() -> Job:
    job = Job.new("j1", filename="a.mp4", content_type="video/mp4", size=1, now="t")
    job.status = JobStatus.READY
    job.source["duration_s"] = 10.0
    job.stages[Stage.TRANSCODE] = StageState(StageStatus.COMPLETED, 1.0, {"prefix": "jobs/j1/hls/"})
    job.captions = [{"caption_id": "c1", "language": "en", "label": "English", "status": "AWAITING_UPLOAD"}]
    return job


@pytest.mark.parametrize(("content", "status"), [(SRT.encode(), "READY"), (b"not captions at all", "FAILED")])
def test_GIVEN_an_uploaded_caption_WHEN_processed_THEN_only_that_caption_changes(
    tmp_path: Path, content: bytes, status: str
) -> None:
    jobs = FakeJobs(ready_job_with_caption())
    uploads = FakeStore({"captions/j1/c1": content})
    outputs = FakeStore({"jobs/j1/hls/master.m3u8": MASTER.encode()})

    stored = process_caption("j1", "c1", tmp_path, jobs=jobs, uploads=uploads, outputs=outputs)

    assert stored["status"] == status
    assert jobs.job.status is JobStatus.READY
    master = outputs.files["jobs/j1/hls/master.m3u8"].decode()
    if status == "READY":
        assert 'URI="captions-c1/index.m3u8"' in master
        assert "Hello" in outputs.files["jobs/j1/hls/captions-c1/seg_00000.vtt"].decode()
    else:
        assert stored["error"]["code"] == "INVALID_CAPTIONS"
        assert master == MASTER


@pytest.mark.parametrize(
    ("transcode_outputs", "time_zero"),
    [
        ({"mpegts_time_zero": 1026000}, 1026000),  # as a chunked transcode records it
        ({"mpegts_time_zero": 126000}, 126000),  # a single pass
        ({"chunks": 3}, 1026000),  # chunked before the value was recorded
        ({}, 126000),  # single pass before it
    ],
)
def test_GIVEN_a_job_WHEN_a_caption_is_processed_THEN_its_segments_map_time_zero_where_the_videos_segments_have_it(
    tmp_path: Path, transcode_outputs: dict[str, Any], time_zero: int
) -> None:
    job = ready_job_with_caption()
    job.stages[Stage.TRANSCODE].outputs.update(transcode_outputs)
    outputs = FakeStore({"jobs/j1/hls/master.m3u8": MASTER.encode()})

    process_caption("j1", "c1", tmp_path, jobs=FakeJobs(job), uploads=FakeStore({"captions/j1/c1": SRT.encode()}),
                    outputs=outputs)  # fmt: skip

    segment = outputs.files["jobs/j1/hls/captions-c1/seg_00000.vtt"].decode()
    assert f"X-TIMESTAMP-MAP=MPEGTS:{time_zero},LOCAL:00:00:00.000" in segment


def plan_ladder_for_test() -> list[Any]:
    return plan_ladder(source(1280, 720, channels=2), DEFAULT_LADDER)


def ladder_rate() -> Fraction:
    return Fraction(30)
