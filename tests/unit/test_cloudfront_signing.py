"""CloudFront signed URLs for a job's outputs: custom policy, wildcard job prefix, expiry."""

from __future__ import annotations

import base64
import json
from functools import lru_cache
from urllib.parse import parse_qs, urlsplit

import pytest
from botocore.signers import CloudFrontSigner
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

from vidpipe.adapters.cloudfront_signing import (
    CloudFrontOutputUrls,
    cloudfront_base64,
    custom_policy,
    generate_signing_key_pair,
    load_private_key,
    rsa_sha1_signature,
    signed_query,
)
from vidpipe.domain.errors import ValidationFailed

CDN = "https://d111111abcdef8.cloudfront.net"
JOB = "3f2b8c1e9d7a4b6c8e0f1a2b3c4d5e6f"
NOW = 1_800_000_000


@lru_cache(maxsize=1)
def key_pair():  # one 2048-bit key for the module: generating one takes a while
    return generate_signing_key_pair()


def private_key():
    return load_private_key(key_pair().private_key_pem)


def from_cloudfront_base64(text: str) -> bytes:
    return base64.b64decode(text.translate(str.maketrans({"-": "+", "_": "=", "~": "/"})))


def urls(**overrides) -> CloudFrontOutputUrls:
    return CloudFrontOutputUrls(
        **{"base_url": CDN, "key_pair_id": "K2JCJMDEHXQW5F", "key": private_key(), "issued_at": NOW, **overrides}
    )


def query_of(url: str) -> dict[str, str]:
    return {name: values[0] for name, values in parse_qs(urlsplit(url).query, keep_blank_values=True).items()}


def test_GIVEN_a_job_prefix_WHEN_a_custom_policy_is_written_THEN_it_is_compact_json_with_the_resource_and_expiry():
    policy = custom_policy(f"{CDN}/jobs/{JOB}/*", expires_at=NOW + 60)

    assert policy == (
        '{"Statement":[{"Resource":"https://d111111abcdef8.cloudfront.net/jobs/' + JOB + '/*",'
        '"Condition":{"DateLessThan":{"AWS:EpochTime":1800000060}}}]}'
    )


def test_GIVEN_bytes_whose_base64_has_plus_slash_and_padding_WHEN_encoded_THEN_cloudfronts_alphabet_is_used():
    data = bytes([0xFB, 0xFF, 0xBF, 0xFE])  # standard base64: "+/+/vw==" style characters

    encoded = cloudfront_base64(data)

    assert encoded == base64.b64encode(data).decode().replace("+", "-").replace("=", "_").replace("/", "~")
    assert set("+=/").isdisjoint(encoded) and set("-_~") & set(encoded)


def test_GIVEN_an_output_key_WHEN_signed_THEN_the_url_carries_a_wildcard_policy_for_the_job_and_its_expiry():
    url = urls().presigned_get(f"jobs/{JOB}/hls/360p/seg_00001.ts", expires_s=600)

    assert url.startswith(f"{CDN}/jobs/{JOB}/hls/360p/seg_00001.ts?")
    query = query_of(url)
    assert set(query) == {"Policy", "Signature", "Key-Pair-Id"}
    assert query["Key-Pair-Id"] == "K2JCJMDEHXQW5F"
    [statement] = json.loads(from_cloudfront_base64(query["Policy"]))["Statement"]
    assert statement == {
        "Resource": f"{CDN}/jobs/{JOB}/*",
        "Condition": {"DateLessThan": {"AWS:EpochTime": NOW + 600}},
    }


def test_GIVEN_a_signed_url_WHEN_checked_with_the_public_key_THEN_it_verifies_and_a_changed_policy_does_not():
    query = query_of(urls().presigned_get(f"jobs/{JOB}/thumbnails/poster.jpg", expires_s=600))
    policy = from_cloudfront_base64(query["Policy"])
    signature = from_cloudfront_base64(query["Signature"])
    public_key = serialization.load_pem_public_key(key_pair().public_key_pem.encode())

    public_key.verify(signature, policy, padding.PKCS1v15(), hashes.SHA1())  # raises when wrong
    widened = policy.replace(JOB.encode(), b"*")
    with pytest.raises(InvalidSignature):
        public_key.verify(signature, widened, padding.PKCS1v15(), hashes.SHA1())


def test_GIVEN_the_same_policy_WHEN_botocore_signs_it_THEN_our_query_is_the_one_cloudfront_documents():
    # botocore's CloudFrontSigner is the AWS SDK's reference implementation.
    resource = f"{CDN}/jobs/{JOB}/*"
    key = private_key()
    reference = CloudFrontSigner("K2JCJMDEHXQW5F", lambda message: rsa_sha1_signature(key, message.decode()))
    url = f"{CDN}/jobs/{JOB}/hls/360p/index.m3u8"

    expected = reference.generate_presigned_url(url, policy=custom_policy(resource, expires_at=NOW + 60))

    assert expected == f"{url}?{signed_query(resource, expires_at=NOW + 60, key_pair_id='K2JCJMDEHXQW5F', key=key)}"


def test_GIVEN_many_outputs_of_one_job_WHEN_signed_in_one_response_THEN_one_signature_serves_them_all():
    signer = urls()
    keys = [f"jobs/{JOB}/hls/360p/seg_{n:05d}.ts" for n in range(50)] + [f"jobs/{JOB}/thumbnails/sprite.jpg"]

    queries = {urlsplit(signer.presigned_get(key, expires_s=600)).query for key in keys}
    other_job = urlsplit(signer.presigned_get("jobs/aaaa/thumbnails/sprite.jpg", expires_s=600)).query

    assert len(queries) == 1
    assert other_job not in queries


@pytest.mark.parametrize("key", ["uploads/abc/source", "jobs//hls/x.ts", "jobs/abc", "jobs/*/poster.jpg", "jobs/a?b/x"])
def test_GIVEN_a_key_that_is_not_one_jobs_output_WHEN_signed_THEN_it_is_refused_rather_than_widening_the_policy(key):
    with pytest.raises(ValidationFailed):
        urls().presigned_get(key, expires_s=600)


def test_GIVEN_no_lifetime_WHEN_signed_THEN_it_is_refused():
    with pytest.raises(ValidationFailed):
        urls().presigned_get(f"jobs/{JOB}/thumbnails/poster.jpg", expires_s=0)


def test_GIVEN_a_key_that_is_not_rsa_pem_WHEN_loaded_THEN_a_misconfiguration_is_reported():
    with pytest.raises(ValidationFailed) as raised:
        load_private_key("-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n")
    assert raised.value.code == "MISCONFIGURED"
