"""A thumbnail of any moment and an animated preview by URL: checked by the API
(grant or Bearer token, owner, READY, parameters), made once by the on-demand
images function (stubbed here: it is invoked, not imported), answered with a
redirect to the cached image."""

from __future__ import annotations

import io
import json
from typing import Any
from urllib.parse import urlsplit

import pytest
from botocore.exceptions import ReadTimeoutError

from tests.adapters.api.api_requests import (
    API_KEYS,
    JOB_ID,
    OUTPUTS_BUCKET,
    Aws,
    call,
    granted,
    http_event,
    transcoded_job,
)
from upload_api.routes import images
from vidpipe.adapters.image_maker import LambdaImageMaker
from vidpipe.domain.access import mint_api_token
from vidpipe.domain.errors import MediaError
from vidpipe.domain.jobs import Job, JobStatus
from vidpipe.runtime import settings

DURATION_S = 7.48


class FakeImageMaker:
    """Stands in for the on-demand images function: stores a small image where asked."""

    def __init__(self, aws: Aws, refusal: Exception | None = None) -> None:
        self.aws, self.refusal = aws, refusal
        self.payloads: list[dict[str, Any]] = []

    def make(self, payload: dict[str, Any]) -> None:
        self.payloads.append(payload)
        if self.refusal:
            raise self.refusal
        self.aws.s3.put_object(Bucket=OUTPUTS_BUCKET, Key=payload["key"], Body=b"image")


@pytest.fixture
def maker(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> FakeImageMaker:
    fake = FakeImageMaker(aws)
    monkeypatch.setattr(images, "_image_maker", lambda: fake)
    return fake


def ready_job(aws: Aws, status: JobStatus = JobStatus.READY) -> Job:
    job = transcoded_job(aws)
    job.status = status
    job.source["duration_s"] = DURATION_S
    return aws.jobs.save(job, expected_version=job.version)


def image_event(path: str, query: dict[str, str] | None = None, *, token: str | None = None) -> dict[str, Any]:
    """A GET of an image route as API Gateway hands it over: no authorizer ran
    (the route has none), the Authorization header as the client sent it."""
    event = http_event("GET", path, query=query, user=None)
    if token is not None:
        event["headers"]["authorization"] = f"Bearer {token}"
    return event


def alice_token() -> str:
    return mint_api_token(API_KEYS, "alice").token


def test_GIVEN_a_ready_job_WHEN_a_thumbnail_is_asked_with_the_grant_THEN_it_is_made_once_and_redirected_to(
    aws: Aws, maker: FakeImageMaker
) -> None:
    ready_job(aws)
    query = {**granted(), "time": "3.5", "width": "320", "height": "180", "fit": "crop"}

    first = call(image_event(f"/jobs/{JOB_ID}/thumbnail.jpg", query))
    second = call(image_event(f"/jobs/{JOB_ID}/thumbnail.jpg", query))

    key = f"jobs/{JOB_ID}/images/thumbnail_t3500_w320_h180_crop.jpg"
    for status, headers, _ in (first, second):
        assert status == 302
        assert urlsplit(headers["location"]).path.endswith(f"/{key}")
        assert "X-Amz-Signature=" in headers["location"]
    # The second request found it cached: one image made.
    [payload] = maker.payloads
    assert payload["key"] == key
    assert payload["hls_prefix"] == f"jobs/{JOB_ID}/hls/"
    assert payload["renditions"][0]["name"] == "360p"
    assert payload["request"] == {
        "kind": "thumbnail",
        "format": "jpg",
        "time_s": 3.5,
        "width": 320,
        "height": 180,
        "fit": "crop",
    }


def test_GIVEN_the_owner_s_token_WHEN_an_animated_preview_is_asked_THEN_it_is_made_without_a_grant(
    aws: Aws, maker: FakeImageMaker
) -> None:
    ready_job(aws)

    status, headers, _ = call(
        image_event(f"/jobs/{JOB_ID}/animated.webp", {"start": "1", "end": "4", "width": "240"}, token=alice_token())
    )

    assert status == 302
    assert f"jobs/{JOB_ID}/images/animated_1000-4000_w240.webp" in headers["location"]
    assert maker.payloads[0]["request"] == {"kind": "animated", "start_s": 1.0, "end_s": 4.0, "width": 240}


@pytest.mark.parametrize(
    ("token", "query", "expected_status"),
    [
        (None, {}, 401),  # neither a grant nor a token
        ("vp2.k1.forged.mac", {}, 401),
        (None, {"expires": "9999999999", "kid": "k1", "grant": "forged"}, 401),
        ("bob", {}, 404),  # a valid token of someone else: the job is as unknown as a missing one
    ],
)
def test_GIVEN_no_valid_grant_or_owner_token_WHEN_an_image_is_asked_THEN_it_is_refused_and_nothing_is_made(
    aws: Aws, maker: FakeImageMaker, token: str | None, query: dict[str, str], expected_status: int
) -> None:
    ready_job(aws)
    if token == "bob":
        token = mint_api_token(API_KEYS, "bob").token

    status, _, body = call(image_event(f"/jobs/{JOB_ID}/thumbnail.webp", query, token=token))

    assert status == expected_status, body
    assert maker.payloads == []


def test_GIVEN_a_job_still_processing_WHEN_a_thumbnail_is_asked_THEN_409_says_it_is_not_ready(
    aws: Aws, maker: FakeImageMaker
) -> None:
    ready_job(aws, JobStatus.PROCESSING)

    status, _, body = call(image_event(f"/jobs/{JOB_ID}/thumbnail.jpg", granted()))

    assert status == 409
    assert "JOB_NOT_READY" in body and "PROCESSING" in body
    assert maker.payloads == []


@pytest.mark.parametrize(
    ("path", "params", "reason"),
    [
        ("thumbnail.jpg", {"time": "7.48"}, "past the end"),
        ("thumbnail.jpg", {"time": "-1"}, "from 0"),
        ("thumbnail.jpg", {"width": "5000"}, "16 to 1920"),
        ("thumbnail.jpg", {"width": "320", "fit": "pad"}, "needs both width and height"),
        ("thumbnail.webp", {"fit": "smartcrop"}, "fit is one of"),
        ("thumbnail.webp", {"tme": "3"}, "unknown parameter"),
        ("animated.webp", {"start": "0", "end": "11"}, "at most 10 s"),
        ("animated.webp", {"start": "8"}, "past the end"),
        ("animated.webp", {"width": "1280"}, "16 to 640"),
    ],
)
def test_GIVEN_invalid_parameters_WHEN_an_image_is_asked_THEN_400_gives_the_reason(
    aws: Aws, maker: FakeImageMaker, path: str, params: dict[str, str], reason: str
) -> None:
    ready_job(aws)

    status, _, body = call(image_event(f"/jobs/{JOB_ID}/{path}", {**granted(), **params}))

    assert status == 400
    assert "VALIDATION_FAILED" in body and reason in body
    assert maker.payloads == []


def test_GIVEN_the_image_function_refuses_WHEN_an_image_is_asked_THEN_its_error_is_the_answer(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    ready_job(aws)
    fake = FakeImageMaker(aws, refusal=MediaError("FFmpeg could not decode the segment", code="CORRUPT_MEDIA"))
    monkeypatch.setattr(images, "_image_maker", lambda: fake)

    status, _, body = call(image_event(f"/jobs/{JOB_ID}/thumbnail.jpg", granted()))

    assert status == 422
    assert "CORRUPT_MEDIA" in body


def test_GIVEN_the_image_function_answers_too_late_WHEN_an_image_is_asked_THEN_503_says_when_to_ask_again(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    ready_job(aws)

    class SlowLambda:
        def invoke(self, **_: Any) -> dict[str, Any]:
            raise ReadTimeoutError(endpoint_url="http://127.0.0.1:4566/2015-03-31/functions/images/invocations")

    monkeypatch.setattr(images, "_image_maker", lambda: LambdaImageMaker(SlowLambda(), "images"))

    status, headers, body = call(image_event(f"/jobs/{JOB_ID}/thumbnail.jpg", granted()))

    assert status == 503
    assert headers["retry-after"] == "5"
    assert "IMAGE_IN_PROGRESS" in body


def test_GIVEN_a_cache_miss_WHEN_the_image_function_is_invoked_THEN_the_api_waits_less_than_its_own_time_left(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    ready_job(aws)
    invoked: list[tuple[int, dict[str, Any]]] = []

    class ImageFunction:
        def __init__(self, read_timeout_s: int) -> None:
            self.read_timeout_s = read_timeout_s

        def invoke(self, **request: Any) -> dict[str, Any]:
            payload = json.loads(request["Payload"])
            invoked.append((self.read_timeout_s, {**request, "Payload": payload}))
            aws.s3.put_object(Bucket=OUTPUTS_BUCKET, Key=payload["key"], Body=b"image")
            return {"StatusCode": 200, "Payload": io.BytesIO(json.dumps({"key": payload["key"]}).encode())}

    monkeypatch.setattr(images, "lambda_client", ImageFunction)
    monkeypatch.setenv("ON_DEMAND_IMAGES_FUNCTION", "vidpipe-OnDemandImagesFunction-1A2B3C")
    settings.get_settings.cache_clear()

    status, _, _ = call(image_event(f"/jobs/{JOB_ID}/thumbnail.webp", {**granted(), "time": "1"}))

    assert status == 302
    [(read_timeout_s, request)] = invoked
    # The fake context has 14 s left: the wait ends 2.5 s before, in whole seconds.
    assert read_timeout_s == 11
    assert request["FunctionName"] == "vidpipe-OnDemandImagesFunction-1A2B3C"
    assert request["InvocationType"] == "RequestResponse"
    assert request["Payload"]["key"] == f"jobs/{JOB_ID}/images/thumbnail_t1000_wauto_hauto_preserve.webp"
