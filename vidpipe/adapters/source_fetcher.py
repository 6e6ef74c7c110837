"""Fetching a video from a URL a user gave us ("import from a URL"), through the
outbound guard (:mod:`vidpipe.adapters.outbound_guard`), as a stream.

The rules are the webhooks' rules, applied at every hop:

* https only; plain http only to a host:port on the operator's allow-list
  (the local stack's test servers on loopback), never anywhere else;
* every address the host resolves to is checked, and the connection goes to a
  checked address (a DNS answer that changes in between changes nothing);
* redirects are followed here, by hand, each new URL checked as if it were
  the first, at most :data:`MAX_REDIRECTS` of them.

What can go wrong: :meth:`SourceUrlPolicy.check` raises
:class:`~vidpipe.domain.errors.DestinationRefused` with code
``SOURCE_URL_REFUSED``; :meth:`GuardedSourceFetcher.open` raises that too for
a hop that leads inside, and :class:`~vidpipe.domain.errors.SourceUnreachable`
for no usable answer (``retryable`` for a connection failure, a 5xx, a 429);
reading the body raises SourceUnreachable (retryable) when the connection breaks.
"""

from __future__ import annotations

import http.client
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urljoin

from vidpipe.adapters.outbound_guard import Destination, OutboundGuard
from vidpipe.domain.errors import DestinationRefused, SourceUnreachable

SOURCE_URL_REFUSED = "SOURCE_URL_REFUSED"
MAX_REDIRECTS = 5
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
# Worth asking again later: the server is overloaded or restarting.
_RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
USER_AGENT = "vidpipe-import/1"


class SourceUrlPolicy:
    """Which source URLs we fetch: the guard's checks, and plain http only for
    the guard's allowed hosts (build the guard's policy with ``allow_http=True``;
    this class narrows it)."""

    def __init__(self, guard: OutboundGuard) -> None:
        self.guard = guard

    def check(self, url: str) -> Destination:
        """The checked destination. Raises DestinationRefused (SOURCE_URL_REFUSED) with the reason."""
        try:
            destination = self.guard.check(url)
        except DestinationRefused as exc:
            raise DestinationRefused(f"source_url refused: {exc.message}", code=SOURCE_URL_REFUSED) from exc
        if (
            destination.scheme != "https"
            and (destination.host, destination.port) not in self.guard.policy.allowed_hosts
        ):
            raise DestinationRefused("source_url must start with https://", code=SOURCE_URL_REFUSED)
        return destination


@dataclass
class FetchedSource:
    """An open answer to GET: its headers, and its body read in chunks. Close it."""

    url: str  # after redirects
    content_type: str  # lower case, without parameters; "" when the server sent none
    content_length: int | None
    _connection: http.client.HTTPConnection
    _response: http.client.HTTPResponse

    def chunks(self, size: int) -> Iterator[bytes]:
        """The body, ``size`` bytes at a time (the last chunk may be shorter).
        Raises SourceUnreachable (retryable) when the connection breaks or stalls."""
        while True:
            try:
                chunk = self._response.read(size)
            except (OSError, http.client.HTTPException) as exc:
                raise SourceUnreachable(f"the download broke off: {exc}", retryable=True) from exc
            if not chunk:
                return
            yield chunk

    def close(self) -> None:
        self._connection.close()


class GuardedSourceFetcher:
    """GETs a source URL through a SourceUrlPolicy. ``timeout_s`` bounds each
    connection and each read (a server that stops sending); the caller bounds
    the whole download."""

    def __init__(self, policy: SourceUrlPolicy, *, timeout_s: float = 30.0, tls: ssl.SSLContext | None = None) -> None:
        self.policy = policy
        self.timeout_s = timeout_s
        self.tls = tls

    def open(self, url: str) -> FetchedSource:
        """The answer to GET ``url`` once it is a 200, redirects followed (each hop checked)."""
        for _hop in range(MAX_REDIRECTS + 1):
            destination = self.policy.check(url)
            connection = self.policy.guard.connect(destination, timeout_s=self.timeout_s, tls=self.tls)
            try:
                connection.request(
                    "GET",
                    destination.target,
                    headers={"User-Agent": USER_AGENT, "Accept": "video/*, */*;q=0.5", "Accept-Encoding": "identity"},
                )
                response = connection.getresponse()
            except (OSError, http.client.HTTPException) as exc:
                connection.close()
                # A certificate that does not verify will not verify on the next attempt either.
                retryable = not isinstance(exc, ssl.SSLCertVerificationError)
                raise SourceUnreachable(f"{destination.host} did not answer: {exc}", retryable=retryable) from exc
            if response.status == 200:
                return FetchedSource(
                    url=url,
                    content_type=(response.getheader("Content-Type") or "").split(";")[0].strip().lower(),
                    content_length=_length(response.getheader("Content-Length")),
                    _connection=connection,
                    _response=response,
                )
            location = response.getheader("Location")
            connection.close()
            if response.status in _REDIRECTS and location:
                url = urljoin(url, location.strip())
                continue
            raise SourceUnreachable(
                f"{destination.host} answered HTTP {response.status} {response.reason}".strip(),
                retryable=response.status in _RETRYABLE_STATUSES,
            )
        raise SourceUnreachable(f"more than {MAX_REDIRECTS} redirects")


def _length(header: str | None) -> int | None:
    try:
        return int(header) if header is not None and int(header) >= 0 else None
    except ValueError:
        return None
