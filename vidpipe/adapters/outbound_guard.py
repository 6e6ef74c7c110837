"""Outbound HTTP to URLs our users give us: which destinations we refuse, and
connecting to exactly the address we checked.

A user-supplied URL (a webhook today, "import a video from a URL" next) must
never let a function reach inside: the cloud's metadata service (instance
credentials), the local stack's own API (``/_ministack/reset`` wipes every
user's data), a database on a private network. Three rules make that hold:

1. **Parse the host as the resolver and the HTTP client would.** ``2130706433``,
   ``0x7f000001``, ``0177.0.0.1``, ``127.1``, ``127.0.0.1.``, ``[::ffff:127.0.0.1]``
   and full-width digits (IDNA maps them to ASCII) all reach 127.0.0.1, so
   :func:`parse_host` turns every spelling into the one address it names
   (the ``inet_aton`` grammar for IPv4, which ``getaddrinfo`` uses); a host
   that ends in a number but is not a valid address is refused, not guessed.
2. **Check every address the name resolves to** (:func:`refusal_reason`), an
   explicit table of special-purpose ranges, and refuse the whole URL if any
   one is refused: the HTTP client could pick any of them.
3. **Connect to the checked address, never the name.** :meth:`OutboundGuard.connect`
   opens the TCP connection to an address :meth:`OutboundGuard.check` returned,
   so a DNS answer that changes between the check and the connection (DNS
   rebinding) changes nothing. TLS still verifies the certificate against the
   host name, which is also sent as SNI and in the Host header. Redirects are
   never followed here: a caller that follows one must :meth:`~OutboundGuard.check`
   the new URL as if it were the first.

An operator can exempt exact ``host:port`` pairs from rule 2
(:attr:`OutboundPolicy.allowed_hosts`: receivers on the developer's own
machine, for the local stack); the stack's own endpoints stay refused even then.

What can go wrong: :meth:`OutboundGuard.check` raises
:class:`~vidpipe.domain.errors.DestinationRefused` (a 400 with the reason) for a URL
we will not call; :meth:`OutboundGuard.connect` raises ``OSError`` (including
``ssl.SSLError``) when no checked address takes the connection.
:meth:`OutboundPolicy.build` raises ``ValidationFailed`` (code ``MISCONFIGURED``)
for a malformed setting.
"""

from __future__ import annotations

import http.client
import ipaddress
import re
import socket
import ssl
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from vidpipe.domain.errors import DestinationRefused, ValidationFailed

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# host (ASCII, as parse_host returns it) and port -> the addresses it resolves to.
Resolver = Callable[[str, int], Sequence[str]]

DEFAULT_PORTS = {"http": 80, "https": 443}
METADATA = "a cloud metadata service"  # refused even for an allowed host

# Checked in order; the first match names the reason. Cloud metadata services
# come first so the refusal says what was at stake.
_REFUSED_V4: tuple[tuple[str, str], ...] = (
    ("169.254.169.254/32", METADATA),  # AWS, GCP, Azure, OpenStack...
    ("169.254.170.2/32", METADATA),  # ECS task credentials
    ("100.100.100.200/32", METADATA),  # Alibaba Cloud
    ("168.63.129.16/32", METADATA),  # Azure WireServer (a public-looking address)
    ("192.0.0.192/32", METADATA),  # Oracle Cloud
    ("0.0.0.0/8", "an unspecified address (this host)"),
    ("127.0.0.0/8", "a loopback address"),
    ("10.0.0.0/8", "a private address"),
    ("172.16.0.0/12", "a private address"),
    ("192.168.0.0/16", "a private address"),
    ("100.64.0.0/10", "a shared (carrier-grade NAT) address"),
    ("169.254.0.0/16", "a link-local address"),
    ("192.0.0.0/24", "an IETF protocol assignment"),
    ("192.0.2.0/24", "a documentation address"),
    ("198.51.100.0/24", "a documentation address"),
    ("203.0.113.0/24", "a documentation address"),
    ("198.18.0.0/15", "a benchmarking address"),
    ("192.88.99.0/24", "a 6to4 relay address"),
    ("224.0.0.0/4", "a multicast address"),
    ("255.255.255.255/32", "the broadcast address"),
    ("240.0.0.0/4", "a reserved address"),
)
_REFUSED_V6: tuple[tuple[str, str], ...] = (
    ("fd00:ec2::254/128", METADATA),  # AWS over IPv6
    ("::/128", "an unspecified address (this host)"),
    ("::1/128", "a loopback address"),
    ("::ffff:0:0/96", "an IPv4-mapped address"),
    ("::/96", "an IPv4-compatible address"),
    ("::ffff:0:0:0/96", "an IPv4-translated address"),
    ("100::/64", "a discard-only address"),
    ("2001::/32", "a Teredo address (it tunnels to any IPv4 host)"),
    ("2002::/16", "a 6to4 address (it tunnels to any IPv4 host)"),
    ("2001:db8::/32", "a documentation address"),
    ("3fff::/20", "a documentation address"),
    ("2001:2::/48", "a benchmarking address"),
    ("2001::/23", "an IETF protocol assignment"),
    ("fc00::/7", "a unique local (private) address"),
    ("fe80::/10", "a link-local address"),
    ("fec0::/10", "a site-local address"),
    ("ff00::/8", "a multicast address"),
)
# NAT64 prefixes carry an IPv4 address in their last 32 bits: a DNS64 network
# (an IPv6-only VPC) gives them for every IPv4-only host, so they are judged by
# the IPv4 address inside.
_NAT64 = (ipaddress.IPv6Network("64:ff9b::/96"), ipaddress.IPv6Network("64:ff9b:1::/48"))
# Everything else outside global unicast is reserved by IANA.
_GLOBAL_UNICAST_V6 = ipaddress.IPv6Network("2000::/3")

_V4_TABLE = tuple((ipaddress.IPv4Network(net), why) for net, why in _REFUSED_V4)
_V6_TABLE = tuple((ipaddress.IPv6Network(net), why) for net, why in _REFUSED_V6)

_HOST_NAME = re.compile(r"[a-z0-9_-]+(\.[a-z0-9_-]+)*")
_NUMBER = re.compile(r"[0-9]+|0[xX][0-9a-fA-F]*")


def refusal_reason(address: IPAddress) -> str | None:
    """Why we never connect to ``address`` ("a loopback address"...), or None
    when it is an ordinary public address."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return f"an IPv4-mapped address (of {address.ipv4_mapped})"
        if any(address in prefix for prefix in _NAT64):
            inner = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
            inner_reason = refusal_reason(inner)
            return f"a NAT64 address of {inner}, {inner_reason}" if inner_reason else None
        table: Sequence[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, str]] = _V6_TABLE
    else:
        table = _V4_TABLE
    for network, why in table:
        if address in network:
            return why
    if isinstance(address, ipaddress.IPv6Address) and address not in _GLOBAL_UNICAST_V6:
        return "a reserved address"
    return None


def parse_ipv4(text: str) -> ipaddress.IPv4Address | None:
    """``text`` read as ``inet_aton`` (and so ``getaddrinfo``) reads it: one to
    four parts, each decimal, octal (leading 0) or hex (0x), the last part
    filling the remaining bytes (``127.1`` is 127.0.0.1, ``2130706433`` too).
    None when it is not such a number."""
    parts = text.split(".")
    # Forty characters hold any 32-bit number, even with leading zeros to spare.
    if not 1 <= len(parts) <= 4 or not all(len(part) <= 40 and _NUMBER.fullmatch(part) for part in parts):
        return None
    values = []
    for part in parts:
        if part[:2] in ("0x", "0X"):
            if len(part) == 2:
                return None  # a bare 0x is no number to inet_aton
            values.append(int(part[2:], 16))
        elif len(part) > 1 and part.startswith("0"):
            if not set(part) <= set("01234567"):
                return None
            values.append(int(part, 8))
        else:
            values.append(int(part))
    *leading, last = values
    if any(value > 255 for value in leading) or last >= 256 ** (5 - len(values)):
        return None
    number = last
    for index, value in enumerate(leading):
        number |= value << (24 - 8 * index)
    return ipaddress.IPv4Address(number)


def parse_host(raw: str) -> tuple[str, IPAddress | None]:
    """The host as we (and the resolver) use it, and the address it names if it
    is an IP literal. ASCII (IDNA), lower case, without a trailing dot.

    Raises DestinationRefused for a host we cannot read one way only: a zone id
    or percent sign, characters no host name has, a name that ends in a number
    but is not an IPv4 address (``1.2.3.4.5``, ``0x1g``)."""
    host = raw.strip("[]")
    if "%" in host:
        raise DestinationRefused(f"host {raw!r} has a zone id or a percent sign")
    if ":" in host:
        try:
            address = ipaddress.IPv6Address(host)
            return str(address), address
        except ValueError as exc:
            raise DestinationRefused(f"host {raw!r} is not a valid IPv6 address") from exc
    try:
        # The same IDNA step getaddrinfo takes: full-width digits and dots become ASCII.
        host = host.encode("idna").decode("ascii").lower()
    except UnicodeError as exc:
        raise DestinationRefused(f"host {raw!r} is not a valid host name") from exc
    host = host.removesuffix(".")
    if not _HOST_NAME.fullmatch(host):
        raise DestinationRefused(f"host {raw!r} is not a valid host name")
    if _NUMBER.fullmatch(host.rsplit(".", 1)[-1]):
        # Ends in a number: an address (in some spelling) or nothing we will guess at.
        ipv4 = parse_ipv4(host)
        if ipv4 is None:
            raise DestinationRefused(f"host {raw!r} ends in a number but is not a valid IPv4 address")
        return str(ipv4), ipv4
    return host, None


@dataclass(frozen=True)
class Destination:
    """A URL we checked: where to connect and what to ask for."""

    url: str
    scheme: str
    host: str  # as parse_host returns it: the Host header, SNI and certificate name
    port: int
    target: str  # path and query, the request line's target
    addresses: tuple[str, ...]  # every address the host resolved to, each one checked


@dataclass(frozen=True)
class OutboundPolicy:
    schemes: tuple[str, ...] = ("https",)
    # (host, port) pairs, hosts as parse_host returns them, exempt from the
    # address table: receivers the operator runs on purpose (the local stack's tests).
    allowed_hosts: frozenset[tuple[str, int]] = frozenset()
    # (host, port) of the endpoints our own functions call (the local stack's
    # gateway, the API): refused even when allowed, on any address that is not public.
    own_endpoints: frozenset[tuple[str, int]] = frozenset()

    @classmethod
    def build(
        cls, *, allow_http: bool, allowed_hosts: Iterable[str] = (), own_endpoint_urls: Iterable[str] = ()
    ) -> OutboundPolicy:
        """From settings: ``allowed_hosts`` as ``host:port`` (``[::1]:8123`` for
        IPv6), ``own_endpoint_urls`` as URLs (empty ones skipped)."""
        allowed = set()
        for entry in allowed_hosts:
            parts = urlsplit(f"//{entry.strip()}")
            try:
                port = parts.port
                host, _ = parse_host(parts.hostname or "")
            except (ValueError, DestinationRefused) as exc:
                raise ValidationFailed(f"allowed host {entry!r} is not host:port", code="MISCONFIGURED") from exc
            if port is None or parts.path or parts.username:
                raise ValidationFailed(f"allowed host {entry!r} is not host:port", code="MISCONFIGURED")
            allowed.add((host, port))
        own = set()
        for url in filter(None, (url.strip() for url in own_endpoint_urls)):
            parts = urlsplit(url)
            try:
                port = parts.port or DEFAULT_PORTS.get(parts.scheme)
                host, _ = parse_host(parts.hostname or "")
            except (ValueError, DestinationRefused) as exc:
                raise ValidationFailed(f"endpoint {url!r} is not a URL", code="MISCONFIGURED") from exc
            if port is None:
                raise ValidationFailed(f"endpoint {url!r} is not a URL", code="MISCONFIGURED")
            own.add((host, port))
        return cls(
            schemes=("https", "http") if allow_http else ("https",),
            allowed_hosts=frozenset(allowed),
            own_endpoints=frozenset(own),
        )


def system_resolver(host: str, port: int) -> list[str]:
    """Every address ``getaddrinfo`` gives for ``host`` (raises OSError when none)."""
    answers = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(sockaddr[0]) for *_, sockaddr in answers))


class OutboundGuard:
    """Checks URLs against a policy and connects to what it checked.

    One guard per caller (webhooks, imports); the resolver is injectable so tests
    answer with whatever address they need without any DNS."""

    def __init__(self, policy: OutboundPolicy, resolver: Resolver = system_resolver) -> None:
        self.policy = policy
        self.resolver = resolver

    def check(self, url: str) -> Destination:
        """Parse ``url``, resolve its host and check every address.

        Raises DestinationRefused with the reason: a scheme we do not call,
        credentials in the URL, control characters, a host that cannot be read
        or resolved, or any address that is refused."""
        url = url.strip()
        if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url) or "\\" in url:
            raise DestinationRefused("url contains spaces, control characters or backslashes")
        parts = urlsplit(url)
        if parts.scheme not in self.policy.schemes:
            raise DestinationRefused(f"url must start with {' or '.join(s + '://' for s in self.policy.schemes)}")
        if not parts.hostname:
            raise DestinationRefused("url has no host")
        if parts.username is not None or parts.password is not None:
            raise DestinationRefused("url must not carry a user name or password")
        try:
            port = parts.port or DEFAULT_PORTS[parts.scheme]
        except ValueError as exc:
            raise DestinationRefused("url has an invalid port") from exc
        host, literal = parse_host(parts.hostname)
        if literal is not None:
            addresses = [str(literal)]
        else:
            try:
                addresses = list(self.resolver(host, port))
            except (OSError, UnicodeError) as exc:
                raise DestinationRefused(f"host {host} cannot be resolved") from exc
            if not addresses:
                raise DestinationRefused(f"host {host} cannot be resolved")
        checked = tuple(self._check_address(host, port, answer, literal is not None) for answer in addresses)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        return Destination(url=url, scheme=parts.scheme, host=host, port=port, target=target, addresses=checked)

    def _check_address(self, host: str, port: int, answer: str, literal: bool) -> str:
        try:
            # A resolver adds a zone to a link-local IPv6 answer (fe80::1%eth0).
            address = ipaddress.ip_address(answer.split("%", 1)[0])
        except ValueError as exc:
            raise DestinationRefused(f"host {host} resolved to {answer!r}, not an address") from exc
        where = f"{address} is" if literal else f"host {host} resolves to {address},"
        reason = refusal_reason(address)
        # Our own port on any address of this machine or network is our own endpoint,
        # whichever spelling reaches it (localhost, 127.0.0.2, [::1], 0.0.0.0...).
        own = self.policy.own_endpoints
        if (host, port) in own or any(
            port == own_port and (reason or str(address) == own_host) for own_host, own_port in own
        ):
            raise DestinationRefused(f"{where} this stack's own endpoint (port {port})")
        if reason and (reason == METADATA or (host, port) not in self.policy.allowed_hosts):
            raise DestinationRefused(f"{where} {reason}")
        return str(address)

    def connect(
        self, destination: Destination, *, timeout_s: float, tls: ssl.SSLContext | None = None
    ) -> http.client.HTTPConnection:
        """An HTTP(S) connection to ``destination``, opened to one of its checked
        addresses (tried in order) and never to a fresh resolution of its name.
        For https the certificate is verified against ``destination.host``
        (``tls`` defaults to the system's trust store)."""
        if destination.scheme == "https":
            return _PinnedHTTPSConnection(destination, timeout_s, tls or ssl.create_default_context())
        return _PinnedHTTPConnection(destination, timeout_s)


def _open_socket(destination: Destination, timeout_s: float) -> socket.socket:
    problem: OSError | None = None
    for address in destination.addresses:
        try:
            return socket.create_connection((address, destination.port), timeout=timeout_s)
        except OSError as exc:
            problem = exc
    raise problem or OSError("no address to connect to")


class _PinnedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, destination: Destination, timeout_s: float) -> None:
        super().__init__(destination.host, destination.port, timeout=timeout_s)
        self.destination = destination
        self.timeout_s = timeout_s

    def connect(self) -> None:
        self.sock = _open_socket(self.destination, self.timeout_s)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, destination: Destination, timeout_s: float, tls: ssl.SSLContext) -> None:
        super().__init__(destination.host, destination.port, timeout=timeout_s, context=tls)
        self.destination = destination
        self.timeout_s = timeout_s
        self.tls = tls

    def connect(self) -> None:
        raw = _open_socket(self.destination, self.timeout_s)
        try:
            self.sock = self.tls.wrap_socket(raw, server_hostname=self.destination.host)
        except BaseException:
            raw.close()
            raise
