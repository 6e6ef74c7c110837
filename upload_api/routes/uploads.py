"""Uploads: ask for one (a presigned POST, or a multipart plan for a large
file), then for a multipart upload more part URLs, what S3 already has,
completing it, or cancelling it. Or give a ``source_url`` instead, and the
service imports the video itself (upload_api.domain_logic.imports)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, model_validator

from upload_api.domain_logic.imports import create_import
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
from upload_api.routes.stores import import_queue, jobs_store, owner_quota, uploads_store, usage_store
from upload_api.routes.timeline_record import record_on_timeline
from vidpipe.adapters.outbound_guard import OutboundGuard, OutboundPolicy, Resolver, system_resolver
from vidpipe.adapters.source_fetcher import SourceUrlPolicy
from vidpipe.domain.errors import ValidationFailed
from vidpipe.runtime.observability import correlate, logger
from vidpipe.runtime.settings import get_settings

router = APIGatewayHttpRouter()

# getaddrinfo, for checking a source_url; a test puts a stub here (tests never resolve real names).
resolve_host: Resolver = system_resolver


class UploadBody(BaseModel):
    """A file to upload (filename, content_type, size), or a video to import (source_url)."""

    # The document states the two shapes; the validator below enforces them.
    model_config = ConfigDict(
        json_schema_extra={"oneOf": [{"required": ["filename", "content_type", "size"]}, {"required": ["source_url"]}]}
    )
    # Strict types: JSON `true` is not a size, and 12 is not a filename.
    filename: StrictStr | None = Field(default=None, min_length=1, max_length=255)
    content_type: StrictStr | None = Field(default=None, min_length=1, max_length=255)
    size: StrictInt | None = Field(default=None, gt=0)
    source_url: StrictStr | None = Field(default=None, min_length=1, max_length=2048)

    # Optional: the user's name for the video, and their own opaque string
    # (upload_api.domain_logic.job_details checks both).
    title: StrictStr | None = Field(default=None, max_length=200)
    passthrough: StrictStr | None = Field(default=None, max_length=255)

    @model_validator(mode="after")
    def one_kind_of_source(self) -> UploadBody:
        file_fields = (self.filename, self.content_type, self.size)
        if self.source_url is not None and any(field is not None for field in file_fields):
            raise ValueError("send source_url alone (a video to import) or filename, content_type and size, not both")
        if self.source_url is None and any(field is None for field in file_fields):
            raise ValueError("send filename, content_type and size (a file to upload), or source_url (to import)")
        return self


class PartNumbersBody(BaseModel):
    part_numbers: list[StrictInt] = Field(min_length=1, max_length=100)


class CompletedPart(BaseModel):
    part_number: StrictInt
    etag: StrictStr = Field(min_length=1, max_length=200)


class CompleteBody(BaseModel):
    parts: list[CompletedPart] = Field(min_length=1, max_length=10_000)


@router.post("/uploads", security=API_TOKEN)
def post_upload(body: UploadBody) -> Response[dict[str, Any]]:
    if body.source_url is not None:
        return _post_import(body.source_url, title=body.title, passthrough=body.passthrough)
    if body.filename is None or body.content_type is None or body.size is None:
        raise ValidationFailed("send filename, content_type and size, or source_url")  # the body model's rule
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


def _post_import(source_url: str, *, title: str | None, passthrough: str | None) -> Response[dict[str, Any]]:
    created = create_import(
        source_url,
        title=title,
        passthrough=passthrough,
        checker=source_url_policy(),
        jobs=jobs_store(),
        queue=import_queue(),
        owner=caller(router.current_event),
        quota=owner_quota(),
    )
    correlate(created["job_id"])
    logger.info("import created", extra={"job_id": created["job_id"]})
    # The host only: the URL's query may be a credential (a presigned URL).
    _record(created["job_id"], "job.created", {"method": "IMPORT", "host": _host_of(source_url)})
    return Response(status_code=201, content_type="application/json", body=created)


def source_url_policy() -> SourceUrlPolicy:
    """The import function's rules (source_import.handlers), checked at once:
    the webhooks' allow-list, https only except for its hosts."""
    settings = get_settings()
    policy = OutboundPolicy.build(
        allow_http=True, allowed_hosts=settings.webhook_allowed_hosts, own_endpoint_urls=settings.own_endpoint_urls
    )
    return SourceUrlPolicy(OutboundGuard(policy, resolve_host))


def _host_of(url: str) -> str:
    return urlsplit(url).netloc.rsplit("@", 1)[-1]


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
