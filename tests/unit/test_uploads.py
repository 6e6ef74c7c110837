"""Creating an upload: the checks made up front and what create_upload records and signs."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from upload_api.domain_logic.uploads import (
    MAX_FILENAME_CHARS,
    UploadLimits,
    UploadRequest,
    check_upload_request,
    create_upload,
    upload_key,
)
from vidpipe.domain.errors import UnsupportedMediaType, UploadTooLarge, ValidationFailed
from vidpipe.domain.jobs import Job, JobStatus, StageStatus

LIMITS = UploadLimits(max_bytes=100 * 1024 * 1024, url_ttl_s=900)
ISO_Z_SECONDS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


def request(filename: str = "holiday.mp4", content_type: str = "video/mp4", size: int = 7_340_032) -> UploadRequest:
    return UploadRequest(filename=filename, content_type=content_type, size=size)


@dataclass
class FakeJobs:
    created: list[Job] = field(default_factory=list)

    def create(self, job: Job) -> None:
        self.created.append(job)


@dataclass
class FakeSigner:
    calls: list[dict[str, Any]] = field(default_factory=list)

    def presigned_post(self, key: str, *, content_type: str, size: int, expires_s: int) -> dict[str, Any]:
        self.calls.append({"key": key, "content_type": content_type, "size": size, "expires_s": expires_s})
        return {
            "url": "https://uploads.example.com/",
            "fields": {"key": key, "Content-Type": content_type, "policy": "eyJ...", "x-amz-signature": "abc"},
        }


def accepted_source(upload: UploadRequest) -> dict[str, Any]:
    """The source the job records when the request is accepted: create_upload checks it first and
    raises for anything it refuses, so a recorded job is what acceptance means."""
    jobs = FakeJobs()
    create_upload(upload, limits=LIMITS, jobs=jobs, signer=FakeSigner(), new_job_id="job-accepted")
    [job] = jobs.created
    return job.source


# ------------------------------------------------------------------ check_upload_request


@pytest.mark.parametrize("filename", ["", " ", "   \t  ", "\n"])
def test_GIVEN_an_empty_or_blank_filename_WHEN_checked_THEN_validation_failed(filename: str) -> None:
    with pytest.raises(ValidationFailed, match="empty") as caught:
        check_upload_request(request(filename=filename), LIMITS)

    assert caught.value.http_status == 400
    assert caught.value.code == "VALIDATION_FAILED"


def test_GIVEN_a_filename_one_char_over_the_limit_WHEN_checked_THEN_validation_failed() -> None:
    name = "a" * (MAX_FILENAME_CHARS - 3) + ".mp4"
    assert len(name) == MAX_FILENAME_CHARS + 1

    with pytest.raises(ValidationFailed, match=str(MAX_FILENAME_CHARS)):
        check_upload_request(request(filename=name), LIMITS)


def test_GIVEN_a_filename_exactly_at_the_limit_WHEN_checked_THEN_accepted() -> None:
    name = "a" * (MAX_FILENAME_CHARS - 4) + ".mp4"

    assert accepted_source(request(filename=name))["filename"] == name


@pytest.mark.parametrize("filename", ["clip\x00.mp4", "clip\n.mp4", "a\rb.mp4", "bell\x07.mov", "del\x7f.mp4"])
def test_GIVEN_a_filename_with_control_characters_WHEN_checked_THEN_validation_failed(filename: str) -> None:
    with pytest.raises(ValidationFailed, match="control characters"):
        check_upload_request(request(filename=filename), LIMITS)


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "image/png",
        "video/",
        "VIDEO/",
        "application/octet-stream",
        "videos/mp4",
        "",
        "video/x;text/html",
        "video/mp4; codecs=avc1",
        "video/mp4 text/html",
        "video/mp4\r\nX: y",
        "video/mp4/x",
        "video/.mp4",
        "video/" + "a" * 128,
        "video/mp4,text/html",
        "video/<script>",
    ],
)
def test_GIVEN_a_content_type_that_is_not_video_WHEN_checked_THEN_unsupported_media_type(content_type: str) -> None:
    with pytest.raises(UnsupportedMediaType) as caught:
        check_upload_request(request(content_type=content_type), LIMITS)

    assert caught.value.http_status == 415
    assert caught.value.code == "UNSUPPORTED_MEDIA_TYPE"


@pytest.mark.parametrize("size", [0, -1, -(2**40)])
def test_GIVEN_a_size_that_is_not_positive_WHEN_checked_THEN_validation_failed(size: int) -> None:
    with pytest.raises(ValidationFailed, match="size"):
        check_upload_request(request(size=size), LIMITS)


def test_GIVEN_a_size_one_byte_over_the_limit_WHEN_checked_THEN_upload_too_large_with_413() -> None:
    with pytest.raises(UploadTooLarge) as caught:
        check_upload_request(request(size=LIMITS.max_bytes + 1), LIMITS)

    assert caught.value.http_status == 413
    assert caught.value.code == "UPLOAD_TOO_LARGE"
    assert str(LIMITS.max_bytes) in caught.value.message


def test_GIVEN_a_size_exactly_at_the_limit_WHEN_checked_THEN_accepted() -> None:
    assert accepted_source(request(size=LIMITS.max_bytes))["size"] == LIMITS.max_bytes


@pytest.mark.parametrize(
    "filename",
    [
        "Urlaub am Meer – Sommer 2024 (Schnitt 3, endgültig).mp4",
        "夏休みの思い出" * 30 + ".mov",  # 214 code points, 634 bytes of UTF-8
        "🎬" * 251 + ".mp4",  # 255 code points, over 1000 bytes of UTF-8
        "clip with \u200d zero width joiner.mkv",
    ],
)
def test_GIVEN_a_long_unicode_filename_within_255_characters_WHEN_checked_THEN_accepted(filename: str) -> None:
    assert len(filename) <= MAX_FILENAME_CHARS

    assert accepted_source(request(filename=filename))["filename"] == filename


@pytest.mark.parametrize(
    "content_type",
    [
        "video/quicktime",
        "video/mp4",
        "Video/MP4",
        " video/webm ",
        "video/x-matroska",
        "video/mp2t",
        "video/vnd.dlna.mpeg-tts",
        "video/x-ms-wmv",
    ],
)
def test_GIVEN_a_video_content_type_WHEN_checked_THEN_accepted_and_kept_in_lower_case(content_type: str) -> None:
    assert accepted_source(request(content_type=content_type))["content_type"] == content_type.strip().lower()


# ------------------------------------------------------------------ create_upload


def test_GIVEN_a_valid_request_WHEN_created_THEN_a_job_awaiting_upload_is_recorded_with_the_source() -> None:
    jobs, signer = FakeJobs(), FakeSigner()

    created = create_upload(
        request(filename="  holiday.mp4 ", content_type="Video/MP4"),
        limits=LIMITS,
        jobs=jobs,
        signer=signer,
        new_job_id="job-1",
    )

    assert created["job_id"] == "job-1"
    [job] = jobs.created
    assert job.job_id == "job-1"
    assert job.status is JobStatus.AWAITING_UPLOAD
    assert job.source == {"filename": "holiday.mp4", "content_type": "video/mp4", "size": 7_340_032}
    assert all(state.status is StageStatus.PENDING for state in job.stages.values())
    assert job.error is None
    assert job.created_at == job.updated_at


def test_GIVEN_a_valid_request_WHEN_created_THEN_the_post_is_signed_for_the_upload_key_type_size_and_ttl() -> None:
    jobs, signer = FakeJobs(), FakeSigner()

    created = create_upload(
        request(content_type="video/quicktime"), limits=LIMITS, jobs=jobs, signer=signer, new_job_id="job-2"
    )

    assert signer.calls == [
        {"key": "uploads/job-2/source", "content_type": "video/quicktime", "size": 7_340_032, "expires_s": 900}
    ]
    upload = created["upload"]
    assert upload["method"] == "POST"
    assert upload["url"] == "https://uploads.example.com/"
    assert upload["fields"]["key"] == "uploads/job-2/source"


def test_GIVEN_no_job_id_WHEN_created_THEN_a_fresh_random_id_names_the_job_and_the_key() -> None:
    jobs, signer = FakeJobs(), FakeSigner()

    first = create_upload(request(), limits=LIMITS, jobs=jobs, signer=signer)
    second = create_upload(request(), limits=LIMITS, jobs=jobs, signer=signer)

    assert re.fullmatch(r"[0-9a-f]{32}", first["job_id"])
    assert first["job_id"] != second["job_id"]
    assert [job.job_id for job in jobs.created] == [first["job_id"], second["job_id"]]
    assert signer.calls[0]["key"] == f"uploads/{first['job_id']}/source"


# Names with separators are refused (tests/unit/test_filename_rules.py); these
# look like paths or keys yet are plain names, and still never reach a key.
@pytest.mark.parametrize(
    "filename", ["..hidden.mp4", "....mp4", "uploads%2Fother-job%2Fsource", "C:clip.mp4", "source"]
)
def test_GIVEN_a_filename_that_looks_like_a_path_WHEN_created_THEN_the_key_never_contains_it(filename: str) -> None:
    jobs, signer = FakeJobs(), FakeSigner()

    created = create_upload(request(filename=filename), limits=LIMITS, jobs=jobs, signer=signer, new_job_id="job-3")

    key = signer.calls[0]["key"]
    assert key == "uploads/job-3/source" == upload_key("job-3")
    assert ".." not in key
    assert created["upload"]["fields"]["key"] == key
    # The name is kept as the user gave it, in the job record only.
    assert jobs.created[0].source["filename"] == filename


@pytest.mark.parametrize(
    "filename", ["../../etc/passwd.mp4", "..\\..\\boot.ini.mp4", "uploads/other-job/source", "a/b/c.mp4"]
)
def test_GIVEN_a_filename_with_path_parts_WHEN_created_THEN_refused_before_any_job_or_key(filename: str) -> None:
    jobs, signer = FakeJobs(), FakeSigner()

    with pytest.raises(ValidationFailed, match="not a path") as caught:
        create_upload(request(filename=filename), limits=LIMITS, jobs=jobs, signer=signer, new_job_id="job-3")

    assert caught.value.http_status == 400
    assert caught.value.code == "VALIDATION_FAILED"
    assert jobs.created == []
    assert signer.calls == []


def test_GIVEN_a_ttl_WHEN_created_THEN_expires_at_is_iso_utc_with_z_about_ttl_from_now() -> None:
    before = datetime.now(UTC).replace(microsecond=0)

    created = create_upload(request(), limits=LIMITS, jobs=FakeJobs(), signer=FakeSigner())

    after = datetime.now(UTC)
    expires_at = created["upload"]["expires_at"]
    assert ISO_Z_SECONDS.match(expires_at), expires_at
    parsed = datetime.fromisoformat(expires_at.replace("Z", "+00:00"))
    assert before + timedelta(seconds=LIMITS.url_ttl_s) <= parsed <= after + timedelta(seconds=LIMITS.url_ttl_s)


@pytest.mark.parametrize(
    ("bad", "error"),
    [
        (request(filename=""), ValidationFailed),
        (request(content_type="text/plain"), UnsupportedMediaType),
        (request(size=LIMITS.max_bytes + 1), UploadTooLarge),
    ],
)
def test_GIVEN_a_refused_request_WHEN_created_THEN_no_job_is_recorded_and_nothing_is_signed(
    bad: UploadRequest, error: type[Exception]
) -> None:
    jobs, signer = FakeJobs(), FakeSigner()

    with pytest.raises(error):
        create_upload(bad, limits=LIMITS, jobs=jobs, signer=signer)

    assert jobs.created == []
    assert signer.calls == []
