"""Signed webhook deliveries: how we sign them, and how a receiver checks them.

A delivery is an HTTP POST whose body is JSON bytes, with the header::

    Vidpipe-Signature: t=1741944461,v1=5257a869e7ecebeda32affa62cdca3fa51cad7e77a0e56ff536d0ce8e108d8bd

``v1`` is the hex HMAC-SHA256, keyed with the webhook's signing secret, of
``"{t}." + raw body``. Signing the timestamp with the body stops replays: a
receiver refuses a delivery whose ``t`` is more than five minutes away from
its own clock, and an attacker cannot change ``t`` without the secret. Each
retry is signed afresh (new ``t``, same body, same ``id`` in the body, so a
receiver can drop a delivery it already handled).

A receiver verifies with :func:`verify_signature` before parsing the body
(see docs/WEBHOOKS.md). Secrets look like ``whsec_...``; ours are derived, not
stored: HMAC of a webhook-signing key (Secrets Manager, vidpipe.domain.access) over
the owner and the webhook's id, so a copy of the webhooks table holds none.
Registration shows the secret under the current kid; a delivery carries one
``v1`` per kid of the key set, so while a key is being rotated out the
receivers that still hold its secret keep verifying (docs/WEBHOOKS.md).

The POST itself: :mod:`vidpipe.adapters.webhook_sender`.

What can go wrong: :func:`verify_signature` raises
:class:`~vidpipe.domain.errors.WebhookSignatureInvalid` with the reason; it never
raises anything else.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from dataclasses import dataclass
from typing import Any

from vidpipe.domain.access import WEBHOOK_SIGNING, SigningKeys
from vidpipe.domain.errors import WebhookSignatureInvalid

SIGNATURE_HEADER = "Vidpipe-Signature"
SECRET_PREFIX = "whsec_"
TOLERANCE_S = 300


@dataclass(frozen=True)
class Webhook:
    owner: str
    webhook_id: str
    url: str
    created_at: str

    def to_dict(self) -> dict[str, Any]:
        """As the API shows it (never with its secret: that is shown once, at registration)."""
        return {"webhook_id": self.webhook_id, "url": self.url, "created_at": self.created_at}


def signing_secret(root_key: str, owner: str, webhook_id: str) -> str:
    """The secret of one webhook under one webhook-signing key: the same for
    every delivery, different for every webhook. (Unchanged since keys had ids:
    a webhook registered before keeps its secret when the old deployment secret
    is kept as a kid of the webhook-signing keys.)"""
    digest = hmac.new(root_key.encode(), f"webhook:{owner}:{webhook_id}".encode(), hashlib.sha256).digest()
    return SECRET_PREFIX + base64.urlsafe_b64encode(digest).decode().rstrip("=")


def current_signing_secret(keys: SigningKeys, owner: str, webhook_id: str) -> str:
    """The secret shown at registration: under the current kid."""
    _check_purpose(keys)
    return signing_secret(keys.keys[keys.current], owner, webhook_id)


def signing_secrets(keys: SigningKeys, owner: str, webhook_id: str) -> list[str]:
    """The webhook's secret under every kid still in the key set, current first."""
    _check_purpose(keys)
    kids = [keys.current] + sorted(kid for kid in keys.keys if kid != keys.current)
    return [signing_secret(keys.keys[kid], owner, webhook_id) for kid in kids]


def _check_purpose(keys: SigningKeys) -> None:
    if keys.purpose != WEBHOOK_SIGNING:
        raise ValueError(f"webhook secrets come from the {WEBHOOK_SIGNING} keys, not {keys.purpose}")


def _mac(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()


def sign(secret: str | list[str], body: bytes, *, timestamp: int | None = None) -> str:
    """The ``Vidpipe-Signature`` header value for ``body`` sent now (or at
    ``timestamp``): one ``v1`` per secret (several while a key is rotated)."""
    moment = int(time.time()) if timestamp is None else int(timestamp)
    secrets = [secret] if isinstance(secret, str) else secret
    return f"t={moment}," + ",".join(f"v1={_mac(each, moment, body)}" for each in secrets)


def verify_signature(
    secret: str, body: bytes, header: str | None, *, tolerance_s: int = TOLERANCE_S, now: float | None = None
) -> None:
    """Check a delivery: ``body`` exactly as received (bytes, before any JSON
    parsing), ``header`` the ``Vidpipe-Signature`` value. Returns None when it
    is ours and fresh; raises WebhookSignatureInvalid otherwise."""
    fields: dict[str, list[str]] = {}
    for part in (header or "").split(","):
        name, sign_, value = part.strip().partition("=")
        if sign_:
            fields.setdefault(name, []).append(value)
    try:
        timestamp = int(fields["t"][0])
    except (KeyError, ValueError) as exc:
        raise WebhookSignatureInvalid("no timestamp (t=...) in the signature header") from exc
    if not fields.get("v1"):
        raise WebhookSignatureInvalid("no v1 signature in the signature header")
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_s:
        raise WebhookSignatureInvalid(f"the timestamp is {current - timestamp:+.0f} s from now (a replay?)")
    expected = _mac(secret, timestamp, body)
    # Several v1 values are allowed, so a secret can be rolled over without a gap.
    if not any(hmac.compare_digest(expected.encode(), given.encode()) for given in fields["v1"]):
        raise WebhookSignatureInvalid("the signature does not match the body")
