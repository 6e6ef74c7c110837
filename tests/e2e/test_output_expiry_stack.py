"""Every output URL of a READY job expires, on the local stack (OutputsDelivery=s3-presigned).

The local stack has no CloudFront that can reach an S3 origin, so its segments
and images are presigned S3 GETs; the CloudFront path is proven in
tests/adapters/api/test_api_output_expiry_moto.py and tests/unit/test_cloudfront_signing.py."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from urllib.parse import parse_qs, urljoin, urlsplit

import boto3
import pytest
import requests
from botocore.config import Config

from vidpipe.domain import access
from vidpipe_cli.local_stack_settings import ACCESS_KEY, REGION, SECRET_KEY, STACK_NAME, aws_client

pytestmark = pytest.mark.stack

SAMPLE = Path(__file__).resolve().parents[2] / "sample_media" / "tiny_160x90.mp4"
OUTPUT_URL_TTL_S = 3600  # the template's default OutputUrlTtlSeconds


def query_of(url: str) -> dict[str, str]:
    return {name: values[0] for name, values in parse_qs(urlsplit(url).query).items()}


def references_in(text: str, base_url: str) -> list[str]:
    """Every URL a playlist or storyboard names (own lines, URI attributes, cue payloads)."""
    found = []
    for line in text.splitlines():
        if line.startswith("#"):
            found += re.findall(r'URI="([^"]*)"', line)
        elif line and "-->" not in line and line != "WEBVTT":
            found.append(line.split("#xywh=")[0])
    return [urljoin(base_url, reference) for reference in found]


def lifetime_left(url: str) -> float:
    """Seconds until ``url`` stops working, from its own signature; fails for a URL without one."""
    query = query_of(url)
    if "X-Amz-Expires" in query:
        signed_at = time.mktime(time.strptime(query["X-Amz-Date"], "%Y%m%dT%H%M%SZ")) - time.timezone
        return signed_at + int(query["X-Amz-Expires"]) - time.time()
    if "grant" in query:
        return int(query["expires"]) - time.time()
    raise AssertionError(f"this output URL never expires: {url}")


def test_every_url_of_a_ready_job_expires_and_still_plays(local_stack) -> None:
    # GIVEN a READY job
    result = local_stack.vidpipe("submit", str(SAMPLE), "--wait", "--json", timeout=600)
    [job] = json.loads(result.stdout)
    assert job["status"] == "READY", job

    # WHEN a player follows every URL of the job view, the master, each media playlist and the storyboard
    outputs = job["outputs"]
    to_visit = [outputs["hls_url"], outputs["storyboard_vtt_url"], outputs["poster_url"], outputs["sprite_url"],
                *outputs.get("thumbnail_urls", []), *(r["url"] for r in outputs["renditions"])]  # fmt: skip
    seen: dict[str, requests.Response] = {}
    while to_visit:
        url = to_visit.pop()
        if url in seen:
            continue
        seen[url] = response = requests.get(url, timeout=30)
        # THEN each one answers (it plays)...
        assert response.status_code == 200, (url, response.status_code, response.text[:300])
        if urlsplit(url).path.endswith((".m3u8", ".vtt")):
            to_visit += references_in(response.text, url)

    # ...and carries its expiry, no later than the configured lifetime
    names = {urlsplit(url).path.rsplit("/", 1)[-1] for url in seen}
    assert {"master.m3u8", "index.m3u8", "storyboard.vtt", "poster.jpg", "sprite.jpg"} <= names
    assert any(name.endswith(".ts") or name.endswith(".m4s") for name in names), names
    for url in seen:
        assert 0 < lifetime_left(url) <= OUTPUT_URL_TTL_S + 5, url

    # AND a segment without its signature is refused: the bucket serves nothing plainly
    segment = next(url for url in seen if urlsplit(url).path.endswith((".ts", ".m4s")))
    assert requests.get(segment.split("?")[0], timeout=30).status_code == 403


def test_output_urls_stop_working_once_expired(local_stack) -> None:
    result = local_stack.vidpipe("submit", str(SAMPLE), "--wait", "--json", timeout=600)
    [job] = json.loads(result.stdout)
    assert job["status"] == "READY", job
    poster_url = job["outputs"]["poster_url"]
    bucket, key = urlsplit(poster_url).path.lstrip("/").split("/", 1)

    # GIVEN the poster's presigned GET in the form the API makes it (SigV4), but with a 1 s lifetime
    assert "X-Amz-Expires" in query_of(poster_url)
    s3 = boto3.client(
        "s3",
        endpoint_url=local_stack.aws_endpoint_url,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )
    short_lived = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=1)
    assert requests.get(short_lived, timeout=30).status_code == 200
    # WHEN it has expired THEN the local stack refuses it
    time.sleep(3)
    assert requests.get(short_lived, timeout=30).status_code == 403

    # AND a playlist grant past its expiry is refused by the API, though correctly signed
    secret = aws_client("secretsmanager", local_stack.aws_endpoint_url).get_secret_value(
        SecretId=f"{STACK_NAME}/keys/{access.OUTPUT_GRANTS}"
    )["SecretString"]
    keys = access.SigningKeys.from_secret_string(access.OUTPUT_GRANTS, secret)
    expired = access.output_grant(keys, job["job_id"], ttl_s=-10)
    master = job["outputs"]["hls_url"].split("?")[0]
    assert requests.get(f"{master}?{expired}", timeout=30).status_code == 401
