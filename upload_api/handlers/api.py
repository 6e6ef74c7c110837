"""HTTP API Lambda: uploads, jobs, outputs and the web page.

Wiring only: routes parse the request, call upload_api.domain_logic and return.
Errors are mapped to responses by the exception handlers below, never by
try/except in a route."""

from __future__ import annotations

import mimetypes
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, Field, StrictInt, StrictStr

from upload_api.domain_logic.job_view import job_view
from upload_api.domain_logic.playlists import sign_master_playlist, sign_media_playlist, sign_storyboard
from upload_api.domain_logic.uploads import (
    OwnerQuota,
    UploadLimits,
    UploadRequest,
    complete_upload,
    create_upload,
    end_awaiting_upload,
    sign_parts,
    uploaded_parts,
)
from upload_api.domain_logic.webhooks import register_webhook
from vidpipe.adapters.aws_clients import dynamodb_client, s3_client
from vidpipe.adapters.cloudfront_signing import CloudFrontOutputUrls, load_private_key
from vidpipe.adapters.job_store import DynamoJobStore
from vidpipe.adapters.outbound_guard import OutboundGuard, OutboundPolicy, Resolver, system_resolver
from vidpipe.adapters.s3 import S3ObjectStore
from vidpipe.adapters.secrets import secret_json, signing_keys
from vidpipe.adapters.timeline_store import DynamoTimeline
from vidpipe.adapters.usage_store import DynamoUsageStore
from vidpipe.adapters.webhook_store import DynamoWebhookStore
from vidpipe.domain.access import OUTPUT_GRANTS, WEBHOOK_SIGNING, grant_is_valid, output_grant
from vidpipe.domain.errors import (
    ConcurrentUpdate,
    JobNotFound,
    QuotaExceeded,
    Unauthenticated,
    ValidationFailed,
    VidpipeError,
    WebhookNotFound,
)
from vidpipe.domain.events import Stage, utc_now
from vidpipe.domain.jobs import Job, JobStatus, StageStatus
from vidpipe.domain.timeline import Invocation, TimelineEntry
from vidpipe.runtime.observability import correlate, logger, tracer
from vidpipe.runtime.settings import get_settings

WEB_ROOT = Path(__file__).resolve().parent.parent / "web"
RENDITION_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789_-")

app = APIGatewayHttpResolver(enable_validation=True)


class PartNumbersBody(BaseModel):
    part_numbers: list[StrictInt] = Field(min_length=1, max_length=100)


class CompletedPart(BaseModel):
    part_number: StrictInt
    etag: StrictStr = Field(min_length=1, max_length=200)


class CompleteBody(BaseModel):
    parts: list[CompletedPart] = Field(min_length=1, max_length=10_000)


class UploadBody(BaseModel):
    # Strict types: JSON `true` is not a size, and 12 is not a filename.
    filename: StrictStr = Field(min_length=1, max_length=255)
    content_type: StrictStr = Field(min_length=1, max_length=255)
    size: StrictInt = Field(gt=0)


class WebhookBody(BaseModel):
    url: StrictStr = Field(min_length=1, max_length=2048)


def _jobs() -> DynamoJobStore:
    return DynamoJobStore(dynamodb_client(), get_settings().jobs_table)


def _usage() -> DynamoUsageStore:
    return DynamoUsageStore(dynamodb_client(), get_settings().jobs_table)


def _owner_quota() -> OwnerQuota:
    return OwnerQuota(limits=get_settings().owner_limits(), usage=_usage(), jobs=_jobs())


def _uploads_store() -> S3ObjectStore:
    return S3ObjectStore(s3_client(), get_settings().uploads_bucket)


def _outputs_store() -> S3ObjectStore:
    return S3ObjectStore(s3_client(), get_settings().outputs_bucket)


def _output_urls() -> S3ObjectStore | CloudFrontOutputUrls:
    """Where players fetch segments and images: the CDN when the stack has one
    in use (OutputsDelivery=cloudfront), otherwise presigned S3 GETs. Either
    way each URL expires. One per response (the CDN signs once per job)."""
    settings = get_settings()
    if not settings.outputs_cdn_url:
        return _outputs_store()
    if not (settings.outputs_cdn_key_pair_id and settings.outputs_cdn_signing_key_secret_id):
        raise ValidationFailed("the outputs CDN has no signing key configured", code="MISCONFIGURED")
    return CloudFrontOutputUrls(
        base_url=settings.outputs_cdn_url,
        key_pair_id=settings.outputs_cdn_key_pair_id,
        key=_cdn_signing_key(settings.outputs_cdn_signing_key_secret_id),
    )


@lru_cache(maxsize=1)
def _cdn_signing_key(secret_id: str) -> Any:
    """The CloudFront signing key, read once per container (``vidpipe cdn-key``
    wrote it: JSON with ``private_key`` and ``public_key`` in PEM)."""
    try:
        pem = secret_json(secret_id)["private_key"]
    except (KeyError, ValidationFailed) as exc:
        raise ValidationFailed(f"secret {secret_id} holds no private_key", code="MISCONFIGURED") from exc
    return load_private_key(pem)


def _caller() -> str:
    """The user the HTTP API's authorizer let in (every route but the page and
    the outputs sits behind it): a vidpipe token's user (Lambda authorizer), or
    the subject of an OIDC issuer's JWT (the OidcIssuer parameter)."""
    authorizer = app.current_event.request_context.authorizer
    user = (authorizer.get_lambda or {}).get("user") or authorizer.jwt_claim.get("sub")
    if not user:
        raise Unauthenticated("send an API token: Authorization: Bearer <token>")
    return str(user)


def _owned_job(job_id: str) -> Job:
    """The caller's job; someone else's is as unknown as a missing one."""
    job = _jobs().get(job_id)
    if job.owner != _caller():
        raise JobNotFound(f"no job {job_id}")
    correlate(job.job_id)
    return job


def _view(job: Job) -> dict[str, Any]:
    ttl = get_settings().output_url_ttl_s
    grant = output_grant(signing_keys(OUTPUT_GRANTS), job.job_id, ttl_s=ttl)
    return job_view(job, api_url=_api_url(), signer=_output_urls(), url_ttl_s=ttl, grant=grant)


def _api_url() -> str:
    """The clients' base URL of this API: the configured one (local stack), or
    the execute-api domain the request came in on (AWS)."""
    configured = get_settings().public_api_url
    if configured:
        return configured.rstrip("/")
    return f"https://{app.current_event.request_context.domain_name}"


# ------------------------------------------------------------------ uploads and jobs


@app.post("/uploads")
def post_upload(body: UploadBody) -> Response[dict[str, Any]]:
    settings = get_settings()
    created = create_upload(
        UploadRequest(filename=body.filename, content_type=body.content_type, size=body.size),
        limits=UploadLimits(
            max_bytes=settings.max_upload_bytes,
            url_ttl_s=settings.upload_url_ttl_s,
            multipart_threshold_bytes=settings.multipart_threshold_bytes,
        ),
        jobs=_jobs(),
        signer=_uploads_store(),
        owner=_caller(),
        quota=_owner_quota(),
    )
    correlate(created["job_id"])
    logger.info(
        "upload created", extra={"job_id": created["job_id"], "size": body.size, "method": created["upload"]["method"]}
    )
    _record(
        created["job_id"],
        "job.created",
        {"filename": body.filename, "size": body.size, "method": created["upload"]["method"]},
    )
    return Response(status_code=201, content_type="application/json", body=created)


@app.post("/uploads/<job_id>/parts")
def post_upload_parts(job_id: str, body: PartNumbersBody) -> dict[str, Any]:
    return sign_parts(
        _owned_job(job_id), body.part_numbers, store=_uploads_store(), ttl_s=get_settings().upload_url_ttl_s
    )


@app.get("/uploads/<job_id>/parts")
def get_upload_parts(job_id: str) -> dict[str, Any]:
    return uploaded_parts(_owned_job(job_id), store=_uploads_store())


@app.post("/uploads/<job_id>/complete")
def post_upload_complete(job_id: str, body: CompleteBody) -> dict[str, Any]:
    claimed = [part.model_dump() for part in body.parts]
    completed = complete_upload(_owned_job(job_id), claimed, store=_uploads_store())
    logger.info("multipart upload completed", extra={"job_id": job_id, "parts": len(claimed)})
    _record(job_id, "upload.completed", {"parts": len(claimed)})
    return completed


@app.delete("/uploads/<job_id>")
def delete_upload(job_id: str) -> dict[str, Any]:
    ended = end_awaiting_upload(
        _owned_job(job_id), status=JobStatus.FAILED, jobs=_jobs(), store=_uploads_store(), usage=_usage()
    )
    logger.info("upload cancelled", extra={"job_id": job_id})
    _record(job_id, "upload.cancelled", {"status": ended.status.value, "error": ended.error})
    return {"job_id": ended.job_id, "status": ended.status.value}


@app.get("/jobs")
def list_jobs() -> dict[str, Any]:
    params = app.current_event.query_string_parameters or {}
    try:
        limit = min(100, max(1, int(params.get("limit", "20"))))
    except ValueError as exc:
        raise ValidationFailed("limit must be a whole number") from exc
    jobs, next_token = _jobs().list_recent(_caller(), limit=limit, next_token=params.get("next_token"))
    return {"jobs": [_view(job) for job in jobs], "next_token": next_token}


@app.get("/jobs/<job_id>")
def get_job(job_id: str) -> dict[str, Any]:
    return _view(_owned_job(job_id))


@app.get("/jobs/<job_id>/events")
def get_job_events(job_id: str) -> dict[str, Any]:
    job = _owned_job(job_id)
    entries = DynamoTimeline(dynamodb_client(), get_settings().job_events_table).entries(job.job_id)
    return {"job_id": job.job_id, "status": job.status.value, "events": [entry.to_dict() for entry in entries]}


# ------------------------------------------------------------------ webhooks


def _webhooks() -> DynamoWebhookStore:
    return DynamoWebhookStore(dynamodb_client(), get_settings().webhooks_table)


# getaddrinfo; a test puts a stub here (tests never resolve real names).
resolve_host: Resolver = system_resolver


def _webhook_guard() -> OutboundGuard:
    settings = get_settings()
    policy = OutboundPolicy.build(
        allow_http=settings.webhook_allow_http,
        allowed_hosts=settings.webhook_allowed_hosts,
        own_endpoint_urls=settings.own_endpoint_urls,
    )
    return OutboundGuard(policy, resolve_host)


@app.post("/webhooks")
def post_webhook(body: WebhookBody) -> Response[dict[str, Any]]:
    registered = register_webhook(
        _caller(), body.url, registry=_webhooks(), signing_keys=signing_keys(WEBHOOK_SIGNING), guard=_webhook_guard()
    )
    logger.info("webhook registered", extra={"webhook_id": registered["webhook_id"]})
    return Response(status_code=201, content_type="application/json", body=registered)


@app.get("/webhooks")
def list_webhooks() -> dict[str, Any]:
    return {"webhooks": [hook.to_dict() for hook in _webhooks().list(_caller())]}


@app.delete("/webhooks/<webhook_id>")
def delete_webhook(webhook_id: str) -> dict[str, Any]:
    if not _webhooks().delete(_caller(), webhook_id):
        raise WebhookNotFound(f"no webhook {webhook_id}")
    logger.info("webhook deleted", extra={"webhook_id": webhook_id})
    return {"webhook_id": webhook_id, "deleted": True}


def _record(job_id: str, what: str, details: dict[str, Any]) -> None:
    """Best effort: the caller's request has succeeded, a missing timeline entry must not fail it."""
    invocation = Invocation.of(app.lambda_context)
    entry = TimelineEntry(
        job_id=job_id,
        at=utc_now(),
        what=what,
        function=invocation.function,
        request_id=invocation.request_id,
        identity=invocation.request_id,
        details=details,
    )
    try:
        DynamoTimeline(dynamodb_client(), get_settings().job_events_table).record(entry)
    except VidpipeError:
        logger.exception("could not write to the job's timeline", extra={"job_id": job_id, "what": what})


# ------------------------------------------------------------------ outputs


@app.get("/jobs/<job_id>/hls/master.m3u8")
def get_master_playlist(job_id: str) -> Response[str]:
    prefix, grant = _granted_outputs(job_id, Stage.TRANSCODE)
    master = _outputs_store().read_text(prefix + "master.m3u8")
    urls, ttl = _output_urls(), get_settings().output_url_ttl_s
    signed = sign_master_playlist(
        master, query=grant, key_prefix=prefix, sign=lambda key: urls.presigned_get(key, expires_s=ttl)
    )
    return _text(signed, "application/vnd.apple.mpegurl")


@app.get("/jobs/<job_id>/hls/<rendition>/index.m3u8")
def get_media_playlist(job_id: str, rendition: str) -> Response[str]:
    if not set(rendition) <= RENDITION_NAME_CHARS:
        raise JobNotFound(f"no rendition {rendition!r}")
    prefix = _granted_outputs(job_id, Stage.TRANSCODE)[0] + f"{rendition}/"
    return _text(_signed_text(prefix, "index.m3u8", sign_media_playlist), "application/vnd.apple.mpegurl")


# The MediaConvert backend writes every media playlist next to the master
# (hls/master_720p.m3u8): one folder per HLS group is all it can do.
@app.get("/jobs/<job_id>/hls/<playlist>")
def get_flat_media_playlist(job_id: str, playlist: str) -> Response[str]:
    name = playlist.removesuffix(".m3u8")
    if not playlist.endswith(".m3u8") or not name or not set(name) <= RENDITION_NAME_CHARS:
        raise JobNotFound(f"no playlist {playlist!r}")
    prefix = _granted_outputs(job_id, Stage.TRANSCODE)[0]
    return _text(_signed_text(prefix, playlist, sign_media_playlist), "application/vnd.apple.mpegurl")


@app.get("/jobs/<job_id>/thumbnails/storyboard.vtt")
def get_storyboard(job_id: str) -> Response[str]:
    prefix = _granted_outputs(job_id, Stage.THUMBNAILS)[0]
    return _text(_signed_text(prefix, "storyboard.vtt", sign_storyboard), "text/vtt")


def _signed_text(prefix: str, name: str, rewrite: Callable[..., str]) -> str:
    """The output file's text with the files it references replaced by presigned URLs."""
    urls, ttl = _output_urls(), get_settings().output_url_ttl_s
    return rewrite(
        _outputs_store().read_text(prefix + name),
        key_prefix=prefix,
        sign=lambda key: urls.presigned_get(key, expires_s=ttl),
    )


def _granted_outputs(job_id: str, stage: Stage) -> tuple[str, str]:
    """Where the stage wrote the job's outputs, and the request's output grant
    (as a query string). Unauthenticated unless the grant is valid for the job;
    JobNotFound until the stage has completed."""
    query = app.current_event.query_string_parameters or {}
    if not grant_is_valid(signing_keys(OUTPUT_GRANTS), job_id, query):
        raise Unauthenticated("this output URL is not valid (or has expired): get a fresh one from GET /jobs/{id}")
    state = _jobs().get(job_id).stages[stage]
    playable_early = state.status is StageStatus.RUNNING and state.outputs.get("playable")
    if state.status is not StageStatus.COMPLETED and not playable_early:
        raise JobNotFound(f"job {job_id} has no {stage.value} outputs yet")
    return str(state.outputs["prefix"]), f"expires={query['expires']}&kid={query['kid']}&grant={query['grant']}"


def _text(body: str, content_type: str) -> Response[str]:
    # Playlists carry presigned URLs that expire: never cache them for long.
    return Response(
        status_code=200, content_type=content_type, body=body, headers={"Cache-Control": "private, max-age=60"}
    )


# ------------------------------------------------------------------ web page


@app.get("/")
def get_web_page() -> Response[str]:
    return _static_file(WEB_ROOT / "index.html")


@app.get("/static/<name>")
def get_static(name: str) -> Response[str]:
    return _static_file(WEB_ROOT / "static" / name)


@app.get("/static/vendor/<name>")
def get_vendor_static(name: str) -> Response[str]:
    return _static_file(WEB_ROOT / "static" / "vendor" / name)


def _static_file(path: Path) -> Response[str]:
    resolved = path.resolve()
    if not resolved.is_file() or WEB_ROOT.resolve() not in resolved.parents:
        raise NotFoundError(f"no file {path.name}")
    content_type = mimetypes.guess_type(resolved.name)[0] or "application/octet-stream"
    if content_type.startswith("text/") or content_type in {"application/javascript", "text/javascript"}:
        content_type += "; charset=utf-8"
    return Response(status_code=200, content_type=content_type, body=resolved.read_text(encoding="utf-8"))


# ------------------------------------------------------------------ errors


def _error(status: int, code: str, message: str) -> Response:
    return Response(
        status_code=status, content_type="application/json", body={"error": {"code": code, "message": message}}
    )


def _our_failure(status: int, code: str) -> Response:
    """A 5xx that says nothing of our insides (bucket and table names, boto3's
    exception text): the details go to the log, under the request id the answer
    carries (the log lines' correlation_id), for whoever looks into it."""
    request_id = app.current_event.request_context.request_id
    return Response(
        status_code=status,
        content_type="application/json",
        body={
            "error": {
                "code": code,
                "request_id": request_id,
                "message": f"something went wrong on our side; try again later, or quote request id {request_id}",
            }
        },
    )


@app.exception_handler(VidpipeError)
def handle_vidpipe_error(exc: VidpipeError) -> Response:
    if exc.http_status >= 500:
        logger.exception("request failed", extra={"error_code": exc.code})
        return _our_failure(exc.http_status, exc.code)
    return _error(exc.http_status, exc.code, exc.message)


@app.exception_handler(Exception)
def handle_unexpected_error(exc: Exception) -> Response:
    logger.exception("request failed with an unexpected error")
    return _our_failure(500, VidpipeError.code)


@app.exception_handler(QuotaExceeded)
def handle_quota_exceeded(exc: QuotaExceeded) -> Response:
    # Retry-After: when asking again can succeed (the day's rollover, or a short
    # wait for an active job to end); the body says which limit and why.
    logger.info("request over a per-owner limit", extra={"limit": exc.limit, "retry_after_s": exc.retry_after_s})
    return Response(
        status_code=429,
        content_type="application/json",
        headers={"Retry-After": str(exc.retry_after_s)},
        body={"error": {**exc.to_dict(), "limit": exc.limit, "retry_after_s": exc.retry_after_s}},
    )


@app.exception_handler(ConcurrentUpdate)
def handle_concurrent_update(exc: ConcurrentUpdate) -> Response:
    # Someone else changed the job between our read and our write (the upload
    # arrived while it was being cancelled): the caller should look again.
    return _error(409, exc.code, "the job changed meanwhile; read it again and retry if still needed")


@app.exception_handler(RequestValidationError)
def handle_invalid_request(exc: RequestValidationError) -> Response:
    problems = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error.get("loc", ()) if part != "body")
        problems.append(f"{where or 'body'}: {error.get('msg', 'invalid')}")
    return _error(400, ValidationFailed.code, "; ".join(problems) or "invalid request")


@app.not_found
def handle_not_found(exc: NotFoundError) -> Response:
    return _error(404, "NOT_FOUND", "no such route or file")


# clear_state: a job id put on the lines of one request must not stay for the next.
@logger.inject_lambda_context(correlation_id_path="requestContext.requestId", clear_state=True)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
