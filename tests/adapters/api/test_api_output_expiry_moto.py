"""Every output URL expires, whether presigned S3 GETs or CDN URLs."""

from __future__ import annotations

import base64
import json
import re
import time
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

from tests.adapters.api.api_requests import (
    API_URL,
    JOB_ID,
    OUTPUTS_BUCKET,
    REGION,
    STORYBOARD,
    TABLE,
    Aws,
    call,
    call_json,
    clear_caches,
    granted,
    http_event,
    query_of,
    thumbnailed_job,
    transcoded_job,
)
from vidpipe.adapters.cloudfront_signing import SigningKeyPair, generate_signing_key_pair
from vidpipe.domain.events import Stage
from vidpipe.domain.jobs import StageState, StageStatus

# ------------------------------------------------------------------ every output URL expires
# On AWS the outputs come through CloudFront, whose key group refuses any URL
# without a valid signature; locally (and with OutputsDelivery=s3-presigned)
# they are presigned S3 GETs. Either way no URL we hand out is valid forever.

CDN_URL = "https://d111111abcdef8.cloudfront.net"
CDN_KEY_PAIR_ID = "K2JCJMDEHXQW5F"
CDN_KEY_SECRET = "vidpipe-test/cdn-signing-key"


@lru_cache(maxsize=1)
def cdn_key_pair() -> SigningKeyPair:
    return generate_signing_key_pair()


def deliver_through_the_cdn(monkeypatch: pytest.MonkeyPatch, *, with_key: bool = True) -> None:
    """The API's environment on a stack with OutputsDelivery=cloudfront."""
    monkeypatch.setenv("OUTPUTS_CDN_URL", CDN_URL + "/")
    if with_key:
        pair = cdn_key_pair()
        boto3.client("secretsmanager", region_name=REGION).create_secret(
            Name=CDN_KEY_SECRET,
            SecretString=json.dumps({"private_key": pair.private_key_pem, "public_key": pair.public_key_pem}),
        )
        monkeypatch.setenv("OUTPUTS_CDN_KEY_PAIR_ID", CDN_KEY_PAIR_ID)
        monkeypatch.setenv("OUTPUTS_CDN_SIGNING_KEY_SECRET_ID", CDN_KEY_SECRET)
    clear_caches()


def ready_job(aws: Aws) -> None:
    """Alice's job with both stages done: playlists, storyboard and images."""
    transcoded_job(aws)
    job = aws.jobs.get(JOB_ID)
    job.stages[Stage.THUMBNAILS] = StageState(
        StageStatus.COMPLETED, 1.0,
        {"prefix": f"jobs/{JOB_ID}/thumbnails/", "poster": "poster.jpg", "sprite": "sprite.jpg",
         "storyboard": "storyboard.vtt", "thumbnails": ["thumb_0001.jpg", "thumb_0002.jpg"]},
    )  # fmt: skip
    aws.dynamodb.delete_item(TableName=TABLE, Key={"job_id": {"S": JOB_ID}})
    aws.jobs.create(job)
    aws.s3.put_object(Bucket=OUTPUTS_BUCKET, Key=f"jobs/{JOB_ID}/thumbnails/storyboard.vtt", Body=STORYBOARD.encode())


def urls_in(value: Any) -> list[str]:
    """Every URL in a JSON document."""
    if isinstance(value, dict):
        return [url for item in value.values() for url in urls_in(item)]
    if isinstance(value, list):
        return [url for item in value for url in urls_in(item)]
    return [value] if isinstance(value, str) and "://" in value else []


def references_in(text: str) -> list[str]:
    """Every reference of a playlist or storyboard: lines of their own, URI
    attributes and cue payloads."""
    found: list[str] = []
    for line in text.splitlines():
        if line.startswith("#"):
            found.extend(re.findall(r'URI="([^"]*)"', line))
        elif line and "-->" not in line and line != "WEBVTT":
            found.append(line.split("#xywh=")[0])
    return found


def expiry_of(url: str) -> int:
    """When ``url`` stops working (epoch seconds), read from its own signature;
    fails the test for a URL that carries none."""
    query = query_of(url)
    if "Policy" in query:  # CloudFront custom policy
        assert set(query) == {"Policy", "Signature", "Key-Pair-Id"}, url
        alphabet = str.maketrans({"-": "+", "_": "=", "~": "/"})
        [statement] = json.loads(base64.b64decode(query["Policy"].translate(alphabet)))["Statement"]
        assert statement["Resource"] == f"{CDN_URL}/jobs/{JOB_ID}/*", url
        return int(statement["Condition"]["DateLessThan"]["AWS:EpochTime"])
    if "X-Amz-Expires" in query:  # presigned S3 GET (SigV4)
        signed_at = datetime.strptime(query["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        return int(signed_at.timestamp()) + int(query["X-Amz-Expires"])
    if "grant" in query:  # the API's own output grant (playlists, storyboard)
        return int(query["expires"])
    raise AssertionError(f"this output URL never expires: {url}")


def every_served_url(job_view: dict[str, Any]) -> list[str]:
    """The job view's URLs, then every reference inside each playlist and
    storyboard they lead to (fetched as a player would, without a token)."""
    found = urls_in(job_view["outputs"])
    for url in list(found):
        path = urlsplit(url).path
        if not url.startswith(API_URL):
            continue
        api_path = path.removeprefix(urlsplit(API_URL).path)
        status, _, body = call(http_event("GET", api_path, query=query_of(url), user=None))
        assert status == 200, (url, body)
        for reference in references_in(body):
            absolute = reference if "://" in reference else f"{url.rsplit('/', 1)[0]}/{reference}"
            found.append(absolute)
            if urlsplit(absolute).path.endswith(".m3u8") and absolute.startswith(API_URL):
                media_path = urlsplit(absolute).path.removeprefix(urlsplit(API_URL).path)
                status, _, media = call(http_event("GET", media_path, query=query_of(absolute), user=None))
                assert status == 200, (absolute, media)
                found.extend(references_in(media))
    return found


@pytest.mark.parametrize("delivery", ["cloudfront", "s3-presigned"])
def test_GIVEN_a_ready_job_WHEN_a_player_follows_every_url_THEN_each_one_expires_within_the_url_ttl(
    aws: Aws, monkeypatch: pytest.MonkeyPatch, delivery: str
) -> None:
    # GIVEN a job with playlists, a storyboard, a poster, a sprite and thumbnails
    if delivery == "cloudfront":
        deliver_through_the_cdn(monkeypatch)
    ready_job(aws)
    before = time.time()

    # WHEN the owner reads the job and a player fetches every playlist and storyboard it names
    status, view = call_json(http_event("GET", f"/jobs/{JOB_ID}"))
    assert status == 200
    served = every_served_url(view)

    # THEN every URL (job view, master, media playlist, storyboard) expires within the TTL (600 s)
    kinds = {urlsplit(url).path.rsplit("/", 1)[-1] for url in served}
    assert {"master.m3u8", "index.m3u8", "seg_00000.ts", "seg_00001.ts", "storyboard.vtt", "poster.jpg",
            "sprite.jpg", "thumb_0001.jpg", "thumb_0002.jpg"} <= kinds  # fmt: skip
    for url in served:
        assert before - 5 < expiry_of(url) <= time.time() + 600 + 5, url
    # AND the files themselves come from the CDN (signed) or S3 (presigned), never a plain URL
    files = [url for url in served if not url.startswith(API_URL)]
    expected_host = "d111111abcdef8.cloudfront.net" if delivery == "cloudfront" else f"{OUTPUTS_BUCKET}"
    assert files and all(expected_host in urlsplit(url).netloc + urlsplit(url).path for url in files), files


def test_GIVEN_the_cdn_WHEN_a_media_playlist_is_served_THEN_one_signature_covers_all_its_segments(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    deliver_through_the_cdn(monkeypatch)
    transcoded_job(aws)

    status, _, body = call(http_event("GET", f"/jobs/{JOB_ID}/hls/360p/index.m3u8", query=granted(), user=None))

    assert status == 200
    segments = [line for line in body.splitlines() if line and not line.startswith("#")]
    assert [url.split("?")[0] for url in segments] == [
        f"{CDN_URL}/jobs/{JOB_ID}/hls/360p/seg_0000{number}.ts" for number in range(2)
    ]
    assert len({urlsplit(url).query for url in segments}) == 1
    query = query_of(segments[0])
    assert query["Key-Pair-Id"] == CDN_KEY_PAIR_ID
    signature = base64.b64decode(query["Signature"].translate(str.maketrans({"-": "+", "_": "=", "~": "/"})))
    policy = base64.b64decode(query["Policy"].translate(str.maketrans({"-": "+", "_": "=", "~": "/"})))
    public_key = serialization.load_pem_public_key(cdn_key_pair().public_key_pem.encode())
    public_key.verify(signature, policy, padding.PKCS1v15(), hashes.SHA1())  # raises when CloudFront would refuse


def test_GIVEN_the_cdn_without_a_signing_key_WHEN_a_job_is_read_THEN_no_plain_cdn_url_is_handed_out(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    deliver_through_the_cdn(monkeypatch, with_key=False)
    thumbnailed_job(aws)

    status, body = call_json(http_event("GET", f"/jobs/{JOB_ID}"))

    assert status >= 400
    assert body["error"]["code"] == "MISCONFIGURED"
    assert CDN_URL not in json.dumps(body)
