"""Filenames the API refuses up front (400) and ones it keeps as given."""

from __future__ import annotations

from typing import Any

import pytest

from upload_api.domain_logic.uploads import UploadLimits, UploadRequest, check_upload_request, create_upload
from vidpipe.domain.errors import ValidationFailed
from vidpipe.domain.jobs import Job

LIMITS = UploadLimits(max_bytes=1024**3, url_ttl_s=3600)


def request(filename: str) -> UploadRequest:
    return UploadRequest(filename=filename, content_type="video/mp4", size=1000)


class RecordedJobs:
    def __init__(self) -> None:
        self.created: list[Job] = []

    def create(self, job: Job) -> None:
        self.created.append(job)


class AnySigner:
    def presigned_post(self, key: str, *, content_type: str, size: int, expires_s: int) -> dict[str, Any]:
        return {"url": "https://uploads.example.com/", "fields": {"key": key}}


@pytest.mark.parametrize(
    "filename",
    [
        "../../etc/passwd.mp4",
        "..\\..\\boot.ini.mp4",
        "uploads/other-job/source",
        "/absolute.mp4",
        "..",
        ".",
    ],
)
def test_GIVEN_a_path_instead_of_a_name_WHEN_checked_THEN_validation_failed(filename: str) -> None:
    with pytest.raises(ValidationFailed, match="not a path") as caught:
        check_upload_request(request(filename), LIMITS)

    assert caught.value.http_status == 400


@pytest.mark.parametrize("filename", ["clip\u202egnp.mp4", "\u2067clip.mp4\u2069", "a\u202db.mov"])
def test_GIVEN_bidirectional_overrides_WHEN_checked_THEN_validation_failed(filename: str) -> None:
    with pytest.raises(ValidationFailed, match="bidirectional"):
        check_upload_request(request(filename), LIMITS)


def test_GIVEN_300_unicode_characters_WHEN_checked_THEN_validation_failed() -> None:
    with pytest.raises(ValidationFailed, match="longer than 255"):
        check_upload_request(request("é" * 296 + ".mp4"), LIMITS)


@pytest.mark.parametrize(
    "filename",
    [
        "视频" * 98 + ".mp4",  # 200 code points, 592 bytes of UTF-8
        "..hidden.mp4",
        "family 👨\u200d👩\u200d👧 2024.mp4",  # zero-width joiners are part of the emoji
        "C:clip.mp4",
    ],
)
def test_GIVEN_an_unusual_but_plain_name_WHEN_created_THEN_accepted_and_kept_as_given(filename: str) -> None:
    jobs = RecordedJobs()

    create_upload(request(filename), limits=LIMITS, jobs=jobs, signer=AnySigner(), new_job_id="job-1")

    [job] = jobs.created
    assert job.source["filename"] == filename
