"""Delivering a signed webhook: one HTTP POST to the URL a user registered,
through the outbound guard (:mod:`vidpipe.adapters.outbound_guard`). How a
delivery is signed: :mod:`vidpipe.domain.webhooks`.

What can go wrong: :meth:`HttpWebhookSender.post` raises
:class:`~vidpipe.domain.errors.WebhookDeliveryFailed` when no HTTP answer came
back, or when the URL now reaches a destination the guard refuses.
"""

from __future__ import annotations

import http.client
import ssl

from vidpipe.adapters.outbound_guard import OutboundGuard
from vidpipe.domain.errors import DestinationRefused, WebhookDeliveryFailed


class HttpWebhookSender:
    """POSTs a delivery with the standard library (no extra dependency in the
    Lambda layer), through an OutboundGuard: the URL is checked again at every
    delivery, since the name may resolve somewhere else than at registration
    (DNS rebinding), and the connection goes to the address just checked.

    Redirects are not followed: a redirect is an answer, not a delivery, and
    following it would send a signed body to a host the user never registered."""

    def __init__(self, guard: OutboundGuard, timeout_s: float = 10.0, tls: ssl.SSLContext | None = None) -> None:
        self.guard = guard
        self.timeout_s = timeout_s
        self.tls = tls

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        """The receiver's HTTP status. Raises WebhookDeliveryFailed when there is none:
        code WEBHOOK_DESTINATION_REFUSED when the URL now reaches a refused address
        (nothing was sent), WEBHOOK_DELIVERY_FAILED when refused, unreachable, timed out."""
        try:
            destination = self.guard.check(url)
        except DestinationRefused as exc:
            raise WebhookDeliveryFailed(f"not sent: {exc.message}", code="WEBHOOK_DESTINATION_REFUSED") from exc
        connection = self.guard.connect(destination, timeout_s=self.timeout_s, tls=self.tls)
        try:
            connection.request("POST", destination.target, body=body, headers=headers)
            return int(connection.getresponse().status)
        except (OSError, http.client.HTTPException) as exc:
            raise WebhookDeliveryFailed(f"no answer from the receiver: {exc}") from exc
        finally:
            connection.close()
