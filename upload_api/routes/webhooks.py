"""Webhooks: register a URL (its signing secret is shown this once), list, delete.
The job_lifecycle slice delivers to them when a job ends."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter
from pydantic import BaseModel, Field, StrictStr

from upload_api.domain_logic.webhooks import register_webhook
from upload_api.routes.caller import API_TOKEN, caller
from upload_api.routes.stores import webhooks_store
from vidpipe.adapters.outbound_guard import OutboundGuard, OutboundPolicy, Resolver, system_resolver
from vidpipe.adapters.secrets import signing_keys
from vidpipe.domain.access import WEBHOOK_SIGNING
from vidpipe.domain.errors import WebhookNotFound
from vidpipe.runtime.observability import logger
from vidpipe.runtime.settings import get_settings

router = APIGatewayHttpRouter()

# getaddrinfo; a test puts a stub here (tests never resolve real names).
resolve_host: Resolver = system_resolver


class WebhookBody(BaseModel):
    url: StrictStr = Field(min_length=1, max_length=2048)


@router.post("/webhooks", security=API_TOKEN)
def post_webhook(body: WebhookBody) -> Response[dict[str, Any]]:
    registered = register_webhook(
        caller(router.current_event),
        body.url,
        registry=webhooks_store(),
        signing_keys=signing_keys(WEBHOOK_SIGNING),
        guard=_webhook_guard(),
    )
    logger.info("webhook registered", extra={"webhook_id": registered["webhook_id"]})
    return Response(status_code=201, content_type="application/json", body=registered)


@router.get("/webhooks", security=API_TOKEN)
def list_webhooks() -> dict[str, Any]:
    return {"webhooks": [hook.to_dict() for hook in webhooks_store().list(caller(router.current_event))]}


@router.delete("/webhooks/<webhook_id>", security=API_TOKEN)
def delete_webhook(webhook_id: str) -> dict[str, Any]:
    if not webhooks_store().delete(caller(router.current_event), webhook_id):
        raise WebhookNotFound(f"no webhook {webhook_id}")
    logger.info("webhook deleted", extra={"webhook_id": webhook_id})
    return {"webhook_id": webhook_id, "deleted": True}


def _webhook_guard() -> OutboundGuard:
    settings = get_settings()
    policy = OutboundPolicy.build(
        allow_http=settings.webhook_allow_http,
        allowed_hosts=settings.webhook_allowed_hosts,
        own_endpoint_urls=settings.own_endpoint_urls,
    )
    return OutboundGuard(policy, resolve_host)
