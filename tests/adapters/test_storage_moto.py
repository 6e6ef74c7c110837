"""S3ObjectStore against moto's S3."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
from moto import mock_aws

from tests.moto_resources import use_fake_credentials
from vidpipe.adapters.s3 import S3ObjectStore
from vidpipe.domain.errors import StorageError, UploadNotOpen, ValidationFailed

BUCKET = "vidpipe-test-uploads"
KEY = "uploads/8d0e7c1a-1b2c-4d5e-8f90-a1b2c3d4e5f6/source"
VIDEO = b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 1000


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    use_fake_credentials(monkeypatch)
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


@pytest.fixture
def store(s3: Any) -> S3ObjectStore:
    return S3ObjectStore(s3, BUCKET)


def policy_of(post: dict[str, Any]) -> dict[str, Any]:
    policy: dict[str, Any] = json.loads(base64.b64decode(post["fields"]["policy"]))
    return policy


def test_GIVEN_a_presigned_post_WHEN_its_policy_is_read_THEN_it_pins_key_type_and_exact_size(
    store: S3ObjectStore,
) -> None:
    # moto 5.2.5 stores whatever a POST form sends and never checks the policy
    # (moto/s3/responses.py _bucket_response_post), so the conditions are checked here,
    # in the document S3 itself enforces; the local stack (AUTH=true) enforces them for real.
    post = store.presigned_post(KEY, content_type="video/mp4", size=len(VIDEO), expires_s=900)

    assert post["fields"]["key"] == KEY
    assert post["fields"]["Content-Type"] == "video/mp4"
    conditions = policy_of(post)["conditions"]
    assert {"bucket": BUCKET} in conditions
    assert {"key": KEY} in conditions
    assert {"Content-Type": "video/mp4"} in conditions
    assert ["content-length-range", len(VIDEO), len(VIDEO)] in conditions
    # No starts-with condition: nothing about the form is left open to the browser.
    assert not [c for c in conditions if isinstance(c, list) and c[0] == "starts-with"]


def test_GIVEN_a_presigned_post_WHEN_its_expiry_is_read_THEN_it_is_the_requested_lifetime_away(
    store: S3ObjectStore,
) -> None:
    from datetime import UTC, datetime

    post = store.presigned_post(KEY, content_type="video/mp4", size=1, expires_s=900)

    expiration = datetime.fromisoformat(policy_of(post)["expiration"].replace("Z", "+00:00"))
    remaining = (expiration - datetime.now(UTC)).total_seconds()
    assert 880 < remaining <= 900


def test_GIVEN_a_presigned_post_WHEN_the_browser_sends_the_file_THEN_the_object_is_stored(
    store: S3ObjectStore,
) -> None:
    post = store.presigned_post(KEY, content_type="video/mp4", size=len(VIDEO), expires_s=900)

    response = requests.post(post["url"], data=post["fields"], files={"file": ("clip.mp4", VIDEO)}, timeout=10)

    assert response.status_code == 204
    info = store.head(KEY)
    assert info is not None
    assert info["size"] == len(VIDEO)


@pytest.mark.xfail(strict=True, reason="moto 5.2.5 does not enforce POST policies; the policy test covers it")
@pytest.mark.parametrize(
    ("body", "content_type"),
    [(VIDEO + b"extra", "video/mp4"), (VIDEO, "text/html")],
    ids=["wrong-size", "wrong-content-type"],
)
def test_GIVEN_a_presigned_post_WHEN_the_form_differs_from_the_policy_THEN_s3_refuses_it(
    store: S3ObjectStore, body: bytes, content_type: str
) -> None:
    # Strict: the day moto starts checking policies this flips to a failure,
    # and the marker should go.
    post = store.presigned_post(KEY, content_type="video/mp4", size=len(VIDEO), expires_s=900)
    fields = {**post["fields"], "Content-Type": content_type}

    response = requests.post(post["url"], data=fields, files={"file": ("clip.mp4", body)}, timeout=10)

    assert 400 <= response.status_code < 500


@pytest.mark.parametrize(("size", "expires_s"), [(-1, 900), (10, 0)])
def test_GIVEN_a_nonsense_request_WHEN_presigning_a_post_THEN_validation_failed(
    store: S3ObjectStore, size: int, expires_s: int
) -> None:
    with pytest.raises(ValidationFailed):
        store.presigned_post(KEY, content_type="video/mp4", size=size, expires_s=expires_s)


def test_GIVEN_a_stored_object_WHEN_fetched_with_the_presigned_get_THEN_a_plain_get_returns_it(
    store: S3ObjectStore, s3: Any
) -> None:
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=VIDEO)

    url = store.presigned_get(KEY, expires_s=60)

    assert "X-Amz-Signature=" in url or "Signature=" in url
    assert requests.get(url, timeout=10).content == VIDEO


def test_GIVEN_a_stored_object_WHEN_downloaded_THEN_the_file_has_its_bytes(
    store: S3ObjectStore, s3: Any, tmp_path: Path
) -> None:
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=VIDEO)
    target = tmp_path / "work" / "source"

    store.download(KEY, target)

    assert target.read_bytes() == VIDEO


def test_GIVEN_no_object_WHEN_downloaded_THEN_storage_error_naming_the_key(
    store: S3ObjectStore, tmp_path: Path
) -> None:
    with pytest.raises(StorageError, match=KEY):
        store.download(KEY, tmp_path / "source")


def test_GIVEN_no_object_WHEN_read_as_text_THEN_storage_error_naming_the_key(store: S3ObjectStore) -> None:
    with pytest.raises(StorageError, match="no such object") as raised:
        store.read_text("jobs/missing/hls/master.m3u8")

    assert "jobs/missing/hls/master.m3u8" in raised.value.message
    assert raised.value.__cause__ is not None


def test_GIVEN_no_bucket_WHEN_uploading_THEN_storage_error(s3: Any, tmp_path: Path) -> None:
    path = tmp_path / "poster.jpg"
    path.write_bytes(b"\xff\xd8\xff")

    with pytest.raises(StorageError, match="no-such-bucket"):
        S3ObjectStore(s3, "no-such-bucket").upload_file(path, "jobs/x/thumbnails/poster.jpg")


def test_GIVEN_no_object_WHEN_headed_THEN_none(store: S3ObjectStore) -> None:
    assert store.head("uploads/nothing/source") is None


def test_GIVEN_a_file_WHEN_uploaded_and_read_back_THEN_same_text_and_type_by_extension(
    store: S3ObjectStore, tmp_path: Path
) -> None:
    path = tmp_path / "storyboard.vtt"
    path.write_text("WEBVTT\n\n00:00.000 --> 00:02.000\nsprite.jpg#xywh=0,0,160,90\n", encoding="utf-8")

    store.upload_file(path, "jobs/j/thumbnails/storyboard.vtt")

    assert store.read_text("jobs/j/thumbnails/storyboard.vtt") == path.read_text(encoding="utf-8")
    info = store.head("jobs/j/thumbnails/storyboard.vtt")
    assert info is not None and info["content_type"] == "text/vtt"


def test_GIVEN_the_MP4_download_WHEN_uploaded_THEN_a_GET_answers_it_as_an_attachment_and_segments_are_not(
    store: S3ObjectStore, s3: Any, tmp_path: Path
) -> None:
    mp4, segment = tmp_path / "download.mp4", tmp_path / "seg_00000.ts"
    mp4.write_bytes(b"mp4 bytes")
    segment.write_bytes(b"ts bytes")

    store.upload_file(mp4, "jobs/j/hls/download.mp4")
    store.upload_file(segment, "jobs/j/hls/360p/seg_00000.ts")

    answer = requests.get(store.presigned_get("jobs/j/hls/download.mp4", expires_s=60), timeout=10)
    assert answer.headers["Content-Type"] == "video/mp4"
    assert answer.headers["Content-Disposition"] == "attachment"
    assert "ContentDisposition" not in s3.head_object(Bucket=store.bucket, Key="jobs/j/hls/360p/seg_00000.ts")


def test_GIVEN_an_hls_folder_WHEN_uploaded_as_a_tree_THEN_every_file_lands_under_the_prefix_with_its_type(
    store: S3ObjectStore, tmp_path: Path
) -> None:
    files = {
        "master.m3u8": "application/vnd.apple.mpegurl",
        "720p/index.m3u8": "application/vnd.apple.mpegurl",
        "720p/seg_000.ts": "video/mp2t",
        "720p/seg_001.m4s": "video/iso.segment",
        "360p/init.mp4": "video/mp4",
        "poster.JPG": "image/jpeg",
        "storyboard.vtt": "text/vtt",
        "notes.bin": "application/octet-stream",
    }
    for name in files:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(name.encode())

    keys = store.upload_tree(tmp_path, "jobs/j/hls")

    assert keys == sorted(f"jobs/j/hls/{name}" for name in files)
    for name, content_type in files.items():
        info = store.head(f"jobs/j/hls/{name}")
        assert info is not None, name
        assert info["content_type"] == content_type, name
        assert info["size"] == len(name.encode())


def test_GIVEN_a_file_instead_of_a_folder_WHEN_uploaded_as_a_tree_THEN_validation_failed(
    store: S3ObjectStore, tmp_path: Path
) -> None:
    path = tmp_path / "master.m3u8"
    path.write_text("#EXTM3U\n")

    with pytest.raises(ValidationFailed):
        store.upload_tree(path, "jobs/j/hls/")


# ---------------------------------------------------------------- the accepted upload, pinned


@pytest.fixture
def versioned(s3: Any) -> S3ObjectStore:
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    return S3ObjectStore(s3, BUCKET)


def test_GIVEN_an_upload_overwritten_after_acceptance_WHEN_read_by_its_version_THEN_the_accepted_bytes(
    versioned: S3ObjectStore, s3: Any, tmp_path: Path
) -> None:
    # GIVEN the accepted upload, then other bytes written to the same key (a re-sent POST)
    accepted = s3.put_object(Bucket=BUCKET, Key=KEY, Body=VIDEO)
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=b"swapped in later")

    # WHEN every reader asks for the accepted version (download, presigned URL)
    versioned.download(KEY, tmp_path / "source", version_id=accepted["VersionId"])
    url = versioned.presigned_get(KEY, expires_s=60, version_id=accepted["VersionId"])

    # THEN each gets the accepted bytes, never the later ones
    assert (tmp_path / "source").read_bytes() == VIDEO
    assert "versionId=" in url
    assert requests.get(url, timeout=10).content == VIDEO


def test_GIVEN_an_accepted_etag_WHEN_the_event_names_no_version_THEN_the_version_is_found_by_its_etag(
    versioned: S3ObjectStore, s3: Any
) -> None:
    # GIVEN the accepted upload overwritten since (ministack's event has no version id)
    accepted = s3.put_object(Bucket=BUCKET, Key=KEY, Body=VIDEO)
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=b"swapped in later")

    # WHEN its version is looked up by the ETag the job accepted
    found = versioned.version_with_etag(KEY, accepted["ETag"].strip('"'))

    # THEN it is the accepted version; an ETag nobody wrote has none
    assert found == accepted["VersionId"]
    assert versioned.version_with_etag(KEY, "0" * 32) is None


def test_GIVEN_an_etag_that_no_longer_matches_WHEN_downloaded_with_it_THEN_storage_error(
    store: S3ObjectStore, s3: Any, tmp_path: Path
) -> None:
    # GIVEN an unversioned key overwritten after its ETag was accepted
    accepted = s3.put_object(Bucket=BUCKET, Key=KEY, Body=VIDEO)
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=b"swapped in later")

    # WHEN / THEN a read pinned by the ETag refuses the other bytes
    with pytest.raises(StorageError):
        store.download(KEY, tmp_path / "source", etag=accepted["ETag"].strip('"'))


def test_GIVEN_a_pinned_version_WHEN_copied_THEN_the_copy_holds_the_accepted_bytes(
    versioned: S3ObjectStore, s3: Any
) -> None:
    accepted = s3.put_object(Bucket=BUCKET, Key=KEY, Body=VIDEO)
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=b"swapped in later")

    versioned.copy_version(KEY, accepted["VersionId"], "chunks/job/source")

    assert s3.get_object(Bucket=BUCKET, Key="chunks/job/source")["Body"].read() == VIDEO


def test_GIVEN_an_upload_key_already_written_WHEN_a_multipart_upload_completes_on_it_THEN_upload_not_open(
    store: S3ObjectStore, s3: Any
) -> None:
    # GIVEN a multipart upload of a key that meanwhile holds an object
    upload_id = store.start_multipart(KEY, content_type="video/mp4")
    etag = s3.upload_part(Bucket=BUCKET, Key=KEY, UploadId=upload_id, PartNumber=1, Body=VIDEO)["ETag"]
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=VIDEO)

    # WHEN it is completed THEN S3 refuses to write the key a second time
    with pytest.raises(UploadNotOpen):
        store.complete_multipart(KEY, upload_id=upload_id, parts=[{"part_number": 1, "etag": etag, "size": len(VIDEO)}])
