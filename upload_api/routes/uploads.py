"""Uploads: ask for one (a presigned POST, or a multipart plan for a large
file), then for a multipart upload more part URLs, what S3 already has,
completing it, or cancelling it."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter
from pydantic import BaseModel, Field, StrictInt, StrictStr

from upload_api.domain_logic.uploads import (
    UploadLimits,
    UploadRequest,
    cancel_upload,
    complete_upload,
    create_upload,
    sign_parts,
    uploaded_parts,
)
from upload_api.routes.caller import API_TOKEN, caller, owned_job
from upload_api.routes.stores import jobs_store, owner_quota, uploads_store, usage_store
from upload_api.routes.timeline_record import record_on_timeline
from vidpipe.runtime.observability import correlate, logger
from vidpipe.runtime.settings import get_settings

router = APIGatewayHttpRouter()


class UploadBody(BaseModel):
    # Strict types: JSON `true` is not a size, and 12 is not a filename.
    filename: StrictStr = Field(min_length=1, max_length=255)
    content_type: StrictStr = Field(min_length=1, max_length=255)
    size: StrictInt = Field(gt=0)
    # Optional: the user's name for the video, and their own opaque string
    # (upload_api.domain_logic.job_details checks both).
    title: StrictStr | None = Field(default=None, max_length=200)
    passthrough: StrictStr | None = Field(default=None, max_length=255)


class PartNumbersBody(BaseModel):
    part_numbers: list[StrictInt] = Field(min_length=1, max_length=100)


class CompletedPart(BaseModel):
    part_number: StrictInt
    etag: StrictStr = Field(min_length=1, max_length=200)


class CompleteBody(BaseModel):
    parts: list[CompletedPart] = Field(min_length=1, max_length=10_000)


@router.post("/uploads", security=API_TOKEN)
def post_upload(body: UploadBody) -> Response[dict[str, Any]]:
    settings = get_settings()
    created = create_upload(
        UploadRequest(
            filename=body.filename,
            content_type=body.content_type,
            size=body.size,
            title=body.title,
            passthrough=body.passthrough,
        ),
        limits=UploadLimits(
            max_bytes=settings.max_upload_bytes,
            url_ttl_s=settings.upload_url_ttl_s,
            multipart_threshold_bytes=settings.multipart_threshold_bytes,
        ),
        jobs=jobs_store(),
        signer=uploads_store(),
        owner=caller(router.current_event),
        quota=owner_quota(),
    )
    method = created["upload"]["method"]
    correlate(created["job_id"])
    logger.info("upload created", extra={"job_id": created["job_id"], "size": body.size, "method": method})
    _record(created["job_id"], "job.created", {"filename": body.filename, "size": body.size, "method": method})
    return Response(status_code=201, content_type="application/json", body=created)


@router.post("/uploads/<job_id>/parts", security=API_TOKEN)
def post_upload_parts(job_id: str, body: PartNumbersBody) -> dict[str, Any]:
    job = owned_job(router.current_event, job_id)
    return sign_parts(job, body.part_numbers, store=uploads_store(), ttl_s=get_settings().upload_url_ttl_s)


@router.get("/uploads/<job_id>/parts", security=API_TOKEN)
def get_upload_parts(job_id: str) -> dict[str, Any]:
    return uploaded_parts(owned_job(router.current_event, job_id), store=uploads_store())


@router.post("/uploads/<job_id>/complete", security=API_TOKEN)
def post_upload_complete(job_id: str, body: CompleteBody) -> dict[str, Any]:
    claimed = [part.model_dump() for part in body.parts]
    completed = complete_upload(owned_job(router.current_event, job_id), claimed, store=uploads_store())
    logger.info("multipart upload completed", extra={"job_id": job_id, "parts": len(claimed)})
    _record(job_id, "upload.completed", {"parts": len(claimed)})
    return completed


@router.delete("/uploads/<job_id>", security=API_TOKEN)
def delete_upload(job_id: str) -> dict[str, Any]:
    job = owned_job(router.current_event, job_id)
    ended = cancel_upload(job, jobs=jobs_store(), store=uploads_store(), usage=usage_store())
    logger.info("upload cancelled", extra={"job_id": job_id})
    _record(job_id, "upload.cancelled", {"status": ended.status.value, "error": ended.error})
    return {"job_id": ended.job_id, "status": ended.status.value}


def _record(job_id: str, what: str, details: dict[str, Any]) -> None:
    record_on_timeline(router.lambda_context, job_id, what, details)
