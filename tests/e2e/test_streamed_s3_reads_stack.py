"""ministack's S3 reads, streamed from disk by vidpipe_cli/ministack_streaming_reads.py,
still answer every GetObject as S3 does: whole objects, open-ended, closed and
suffix ranges, unsatisfiable ranges, a reader that hangs up, an object replaced
while it is being read; of the current object and of a version (the stages read
their pinned upload by its version id, where ministack ignored the range)."""

from __future__ import annotations

import hashlib
import os
import socket
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from vidpipe_cli.local_stack_settings import aws_client

pytestmark = [pytest.mark.stack]

OBJECT_BYTES = 5 * (1 << 20) + 12345  # several 1 MiB pieces and a remainder


@pytest.fixture(scope="module", params=["current object", "by version id"])
def stored_object(local_stack: Any, request: pytest.FixtureRequest) -> tuple[Any, str, bytes]:
    s3 = aws_client("s3", local_stack.aws_endpoint_url)
    bucket = f"streamed-reads-{os.getpid()}-{'versioned' if request.param == 'by version id' else 'plain'}"
    s3.create_bucket(Bucket=bucket)
    if request.param == "by version id":
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    content = os.urandom(OBJECT_BYTES)
    s3.put_object(Bucket=bucket, Key="object.bin", Body=content)
    return s3, bucket, content


def presigned(s3: Any, bucket: str) -> str:
    params = {"Bucket": bucket, "Key": "object.bin"}
    if bucket.endswith("-versioned"):
        params["VersionId"] = s3.head_object(**params)["VersionId"]
    return s3.generate_presigned_url("get_object", Params=params, ExpiresIn=600)


@pytest.mark.parametrize(
    ("range_header", "first", "last"),
    [
        ("bytes=0-", 0, OBJECT_BYTES - 1),
        ("bytes=3000000-", 3000000, OBJECT_BYTES - 1),
        ("bytes=1048570-2097160", 1048570, 2097160),
        ("bytes=-1000", OBJECT_BYTES - 1000, OBJECT_BYTES - 1),
        ("bytes=100-99999999", 100, OBJECT_BYTES - 1),
    ],
)
def test_a_range_read_returns_exactly_the_asked_for_bytes(
    stored_object: tuple[Any, str, bytes], range_header: str, first: int, last: int
) -> None:
    s3, bucket, content = stored_object
    # WHEN the object is read over HTTP with a range, as FFmpeg reads a source
    response = requests.get(presigned(s3, bucket), headers={"Range": range_header}, timeout=60)
    # THEN the answer is a 206 with exactly those bytes and S3's headers
    assert response.status_code == 206
    assert response.headers["Content-Range"] == f"bytes {first}-{last}/{OBJECT_BYTES}"
    assert int(response.headers["Content-Length"]) == last - first + 1
    assert response.content == content[first : last + 1]


def test_a_whole_read_through_boto3_matches_what_was_stored(stored_object: tuple[Any, str, bytes]) -> None:
    s3, bucket, content = stored_object
    answer = requests.get(presigned(s3, bucket), timeout=60)
    assert answer.status_code == 200
    assert hashlib.sha256(answer.content).digest() == hashlib.sha256(content).digest()
    answer = s3.get_object(Bucket=bucket, Key="object.bin")
    assert answer["ContentLength"] == OBJECT_BYTES
    assert hashlib.sha256(answer["Body"].read()).digest() == hashlib.sha256(content).digest()


def test_an_unsatisfiable_range_is_refused(stored_object: tuple[Any, str, bytes]) -> None:
    s3, bucket, _ = stored_object
    response = requests.get(presigned(s3, bucket), headers={"Range": f"bytes={OBJECT_BYTES + 10}-"}, timeout=60)
    assert response.status_code == 416


def test_a_reader_that_hangs_up_does_not_disturb_the_next_reads(stored_object: tuple[Any, str, bytes]) -> None:
    s3, bucket, content = stored_object
    url = urlsplit(presigned(s3, bucket))
    # GIVEN readers that ask for the whole object and hang up after the first bytes (an FFmpeg seek)
    for _ in range(5):
        with socket.create_connection((url.hostname, url.port), timeout=30) as connection:
            request = f"GET {url.path}?{url.query} HTTP/1.1\r\nHost: {url.netloc}\r\nRange: bytes=0-\r\n\r\n"
            connection.sendall(request.encode())
            assert connection.recv(4096).startswith(b"HTTP/1.1 206")
    # THEN the object still reads whole and right
    response = requests.get(presigned(s3, bucket), timeout=60)
    assert response.status_code == 200
    assert response.content == content


def test_a_read_in_progress_keeps_the_bytes_it_started_with(stored_object: tuple[Any, str, bytes]) -> None:
    s3, bucket, _ = stored_object
    s3.put_object(Bucket=bucket, Key="replaced.bin", Body=b"a" * OBJECT_BYTES)
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "replaced.bin"}, ExpiresIn=600)
    # GIVEN a read that has started
    with requests.get(url, stream=True, timeout=60) as response:
        first = response.raw.read(1 << 20)
        # WHEN the object is replaced meanwhile
        s3.put_object(Bucket=bucket, Key="replaced.bin", Body=b"b" * OBJECT_BYTES)
        rest = response.raw.read()
    # THEN the read is all of the old object, never a mix
    assert first + rest == b"a" * OBJECT_BYTES
    assert s3.get_object(Bucket=bucket, Key="replaced.bin")["Body"].read() == b"b" * OBJECT_BYTES
