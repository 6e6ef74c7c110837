"""A thumbnail of any moment and an animated preview, by URL:

* ``GET /jobs/{id}/thumbnail.{jpg,webp}?time=&width=&height=&fit=``
* ``GET /jobs/{id}/animated.webp?start=&end=&width=``

(parameters, bounds and fit modes: vidpipe.domain.image_requests).

Each answers ``302`` to the image in the outputs bucket (a presigned or
CDN-signed URL, like the poster's), so an ``<img>`` or ``curl -L`` fetches it.
The image is named by its parameters and made once: on a miss this function
invokes the on-demand images function synchronously (it has FFmpeg; this one
stays light for its cold start) and redirects once it is stored.

Who may ask: the HTTP API routes these paths without the authorizer (as the
playlists), so that an ``<img>`` works with the job's output grant in the query
(from GET /jobs/{id}); without a grant, ``Authorization: Bearer`` with an API
token is checked here, with the authorizer's rules, and the job must be the
caller's. A job that is not READY is 409 JOB_NOT_READY; bad parameters 400;
an image still being made when our wait ends (the image function's cold
start) 503 IMAGE_IN_PROGRESS with Retry-After."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from upload_api.routes.stores import jobs_store, output_urls, outputs_store
from vidpipe.adapters.aws_clients import dynamodb_client, lambda_client
from vidpipe.adapters.image_maker import ImageInProgress, LambdaImageMaker
from vidpipe.adapters.secrets import signing_keys
from vidpipe.adapters.token_revocations import DynamoTokenRevocations
from vidpipe.domain.access import API_TOKENS, OUTPUT_GRANTS, admit, bearer_token, grant_is_valid
from vidpipe.domain.errors import JobNotFound, JobNotReady, Unauthenticated
from vidpipe.domain.events import Stage
from vidpipe.domain.image_requests import (
    ImageRequest,
    parse_animated_request,
    parse_thumbnail_request,
    request_to_dict,
)
from vidpipe.domain.jobs import Job, JobStatus
from vidpipe.domain.storage_keys import hls_prefix, on_demand_image_key
from vidpipe.runtime.observability import correlate
from vidpipe.runtime.settings import get_settings

# The redirect may be reused for a while; the URL it points at lives longer (OutputUrlTtlSeconds).
REDIRECT_MAX_AGE_S = 300

# How long a request waits for an image being made, at most, and the time kept
# back to answer "in progress" (503) rather than be cut off by the Lambda timeout.
MAX_WAIT_S = 12
ANSWER_RESERVE_S = 2.5

router = APIGatewayHttpRouter()

Parse = Callable[[Mapping[str, str], float], ImageRequest]


@router.get("/jobs/<job_id>/thumbnail.jpg")
def get_thumbnail_jpg(job_id: str) -> Response[str]:
    """A JPEG of the moment ``time`` (default: the middle), sized by width/height/fit."""
    return _image(job_id, lambda query, duration_s: parse_thumbnail_request("jpg", query, duration_s))


@router.get("/jobs/<job_id>/thumbnail.webp")
def get_thumbnail_webp(job_id: str) -> Response[str]:
    """A WebP of the moment ``time`` (default: the middle), sized by width/height/fit."""
    return _image(job_id, lambda query, duration_s: parse_thumbnail_request("webp", query, duration_s))


@router.get("/jobs/<job_id>/animated.webp")
def get_animated_webp(job_id: str) -> Response[str]:
    """An animated WebP from ``start`` to ``end`` (at most 10 s), ``width`` wide."""
    return _image(job_id, parse_animated_request)


def _image(job_id: str, parse: Parse) -> Response[str]:
    query = router.current_event.query_string_parameters or {}
    job = _permitted_job(job_id, query)
    if job.status is not JobStatus.READY:
        raise JobNotReady(f"job {job_id} is {job.status.value}: its images can be made once it is READY")
    request = parse(query, float(job.source.get("duration_s") or 0))
    key = on_demand_image_key(job_id, request.cache_name())
    if outputs_store().head(key) is None:
        _image_maker().make(_payload(job, key, request))
    url = output_urls().presigned_get(key, expires_s=get_settings().output_url_ttl_s)
    return Response(
        status_code=302,
        content_type="text/plain",
        body="",
        headers={"Location": url, "Cache-Control": f"private, max-age={REDIRECT_MAX_AGE_S}"},
    )


@router.exception_handler(ImageInProgress)
def handle_image_in_progress(exc: ImageInProgress) -> Response[dict[str, Any]]:
    # Not a failure: the image function is still at it (a cold start) and will
    # store the image; the same URL answers with it shortly.
    return Response(
        status_code=exc.http_status,
        content_type="application/json",
        headers={"Retry-After": str(exc.retry_after_s)},
        body={"error": exc.to_dict()},
    )


def _permitted_job(job_id: str, query: Mapping[str, str]) -> Job:
    """The job, if the request carries its output grant or its owner's API token.
    Unauthenticated otherwise; someone else's job is as unknown as a missing one."""
    if "grant" in query:
        if not grant_is_valid(signing_keys(OUTPUT_GRANTS), job_id, dict(query)):
            raise Unauthenticated(
                "this image URL's grant is not valid (or has expired): get a fresh one from GET /jobs/{id}"
            )
        job = jobs_store().get(job_id)
    else:
        token = bearer_token(router.current_event.headers)
        if not token:
            raise Unauthenticated("send an API token (Authorization: Bearer <token>) or the job's output grant")
        revocations = DynamoTokenRevocations(dynamodb_client(), get_settings().revoked_tokens_table)
        claims = admit(signing_keys(API_TOKENS), token, revocations=revocations)
        job = jobs_store().get(job_id)
        if job.owner != claims.user:
            raise JobNotFound(f"no job {job_id}")
    correlate(job.job_id)
    return job


def _payload(job: Job, key: str, request: ImageRequest) -> dict[str, Any]:
    transcode = job.stages[Stage.TRANSCODE].outputs
    return {
        "job_id": job.job_id,
        "key": key,
        "hls_prefix": str(transcode.get("prefix") or hls_prefix(job.job_id)),
        "renditions": transcode.get("renditions", []),
        "request": request_to_dict(request),
    }


def _image_maker() -> LambdaImageMaker:
    """The image function, waited for until shortly before this function's own
    time is up (what is left of its 15 s once the checks and reads are done)."""
    remaining_s = router.lambda_context.get_remaining_time_in_millis() / 1000
    wait_s = max(1, min(MAX_WAIT_S, int(remaining_s - ANSWER_RESERVE_S)))
    return LambdaImageMaker(lambda_client(wait_s), get_settings().on_demand_images_function)
