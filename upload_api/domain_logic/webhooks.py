"""Registering webhooks: a user gives up to five URLs that are told, signed,
when one of their jobs is ready or has failed (the delivery itself is the
webhook function's, in job_lifecycle).

What can go wrong: ValidationFailed for a URL we refuse (DestinationRefused when
it reaches inside: loopback, private, metadata...) or for too many webhooks.
"""

from __future__ import annotations

import uuid
from typing import Any, Protocol

from vidpipe.adapters.outbound_guard import OutboundGuard
from vidpipe.domain.access import SigningKeys
from vidpipe.domain.errors import ValidationFailed
from vidpipe.domain.events import utc_now
from vidpipe.domain.webhooks import Webhook, current_signing_secret

MAX_WEBHOOKS_PER_USER = 5


class WebhookRegistry(Protocol):
    def create(self, hook: Webhook) -> None: ...
    def list(self, owner: str) -> list[Webhook]: ...


def check_webhook_url(url: str, *, guard: OutboundGuard) -> str:
    """The URL, stripped. Raises DestinationRefused (a ValidationFailed) for
    anything but an absolute https URL (http too where allowed: the local
    stack) without credentials whose host resolves only to public addresses
    (see vidpipe.adapters.outbound_guard). Delivery checks again: DNS answers change."""
    return guard.check(url).url


def register_webhook(
    owner: str,
    url: str,
    *,
    registry: WebhookRegistry,
    signing_keys: SigningKeys,
    guard: OutboundGuard,
    new_id: str | None = None,
) -> dict[str, Any]:
    """Register ``url`` for ``owner``; the answer carries the signing secret, shown this once."""
    url = check_webhook_url(url, guard=guard)
    if len(registry.list(owner)) >= MAX_WEBHOOKS_PER_USER:
        raise ValidationFailed(f"a user may register at most {MAX_WEBHOOKS_PER_USER} webhooks; delete one first")
    hook = Webhook(owner=owner, webhook_id=new_id or uuid.uuid4().hex, url=url, created_at=utc_now())
    registry.create(hook)
    return {**hook.to_dict(), "secret": current_signing_secret(signing_keys, owner, hook.webhook_id)}
