"""Captions: add a SubRip or WebVTT file to a READY job (a presigned upload,
like a video's); the job lists it under ``captions`` with its status."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter
from pydantic import BaseModel, Field, StrictInt, StrictStr

from upload_api.domain_logic.captions import CaptionRequest, add_caption
from upload_api.routes.caller import API_TOKEN, owned_job
from upload_api.routes.stores import jobs_store, uploads_store
from vidpipe.runtime.observability import logger
from vidpipe.runtime.settings import get_settings

router = APIGatewayHttpRouter()


class CaptionBody(BaseModel):
    language: StrictStr = Field(min_length=2, max_length=35)
    label: StrictStr = Field(min_length=1, max_length=100)
    filename: StrictStr = Field(min_length=1, max_length=255)
    content_type: StrictStr = Field(min_length=1, max_length=100)
    size: StrictInt = Field(gt=0)


@router.post("/jobs/<job_id>/captions", security=API_TOKEN)
def post_caption(job_id: str, body: CaptionBody) -> Response[dict[str, Any]]:
    job = owned_job(router.current_event, job_id)
    request = CaptionRequest(body.language, body.label, body.filename, body.content_type, body.size)
    created = add_caption(
        job, request, jobs=jobs_store(), signer=uploads_store(), url_ttl_s=get_settings().upload_url_ttl_s
    )
    logger.info("caption requested", extra={"job_id": job_id, "caption_id": created["caption_id"]})
    return Response(status_code=201, content_type="application/json", body=created)
