"""vidpipe.adapters.outbound_guard: every spelling of an address inside is refused, every
resolved address is checked, the allow-list is exact, the stack's own endpoint
is never reachable. No test resolves a real name: the resolver is a stub."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vidpipe.adapters.outbound_guard import OutboundGuard, OutboundPolicy, parse_ipv4, refusal_reason
from vidpipe.domain.errors import DestinationRefused, ValidationFailed

PUBLIC = "93.184.215.14"  # never connected to: these tests only check


class StubResolver:
    """Answers from a table and remembers what it was asked."""

    def __init__(self, answers: dict[str, Sequence[str]] | None = None) -> None:
        self.answers = answers or {}
        self.asked: list[str] = []

    def __call__(self, host: str, port: int) -> Sequence[str]:
        self.asked.append(host)
        if host not in self.answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return self.answers[host]


def guard(resolver: StubResolver | None = None, **policy: object) -> OutboundGuard:
    settings = {"allow_http": True, **policy}
    return OutboundGuard(OutboundPolicy.build(**settings), resolver or StubResolver())  # type: ignore[arg-type]


# ------------------------------------------------------------------ literal spellings

REFUSED_SPELLINGS = [
    # loopback, in every spelling getaddrinfo accepts
    ("http://127.0.0.1/", "loopback"),
    ("http://2130706433/", "loopback"),
    ("http://0x7f000001/", "loopback"),
    ("http://0X7F.0.0.1/", "loopback"),
    ("http://0177.0.0.1/", "loopback"),
    ("http://0177.0000.0000.0001/", "loopback"),
    ("http://017700000001/", "loopback"),
    ("http://127.1/", "loopback"),
    ("http://127.0.1/", "loopback"),
    ("http://127.0.0.1./", "loopback"),
    ("http://127.255.255.254/", "loopback"),
    ("http://１２７．０．０．１/", "loopback"),  # full-width digits and dot: IDNA maps them to ASCII
    ("http://127。0。0。1/", "loopback"),  # ideographic full stops
    ("http://[::1]/", "loopback"),
    ("http://[0:0:0:0:0:0:0:1]/", "loopback"),
    ("http://[::ffff:127.0.0.1]/", "IPv4-mapped"),
    ("http://[::ffff:7f00:1]/", "IPv4-mapped"),
    ("http://[::ffff:169.254.169.254]/", "IPv4-mapped"),
    ("http://[::127.0.0.1]/", "IPv4-compatible"),
    ("http://[::ffff:0:7f00:1]/", "IPv4-translated"),
    ("http://[64:ff9b::127.0.0.1]/", "NAT64 address of 127.0.0.1"),
    ("http://[64:ff9b::a00:1]/", "NAT64 address of 10.0.0.1"),
    ("http://[64:ff9b:1::a9fe:a9fe]/", "NAT64 address of 169.254.169.254"),
    ("http://[2002:7f00:1::1]/", "6to4"),
    ("http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/", "Teredo"),
    # private, shared, link-local
    ("http://10.0.0.1/", "private"),
    ("http://10.1/", "private"),
    ("http://167772161/", "private"),
    ("http://012.0.0.1/", "private"),
    ("http://172.16.0.1/", "private"),
    ("http://172.31.255.255/", "private"),
    ("http://192.168.1.1/", "private"),
    ("http://0xc0.0xa8.1.1/", "private"),
    ("http://[fc00::1]/", "unique local"),
    ("http://[fd12:3456::1]/", "unique local"),
    ("http://100.64.0.1/", "shared"),
    ("http://100.127.255.254/", "shared"),
    ("http://169.254.1.1/", "link-local"),
    ("http://[fe80::1]/", "link-local"),
    ("http://[fec0::1]/", "site-local"),
    # metadata services
    ("http://169.254.169.254/latest/meta-data/", "metadata"),
    ("http://0xa9fea9fe/", "metadata"),
    ("http://2852039166/", "metadata"),
    ("http://169.254.43518/", "metadata"),
    ("http://[fd00:ec2::254]/", "metadata"),
    ("http://100.100.100.200/", "metadata"),
    ("http://169.254.170.2/v2/credentials", "metadata"),
    ("http://168.63.129.16/", "metadata"),
    ("http://192.0.0.192/", "metadata"),
    # unspecified, multicast, broadcast, reserved, benchmarking, documentation
    ("http://0.0.0.0/", "unspecified"),
    ("http://0/", "unspecified"),
    ("http://[::]/", "unspecified"),
    ("http://224.0.0.1/", "multicast"),
    ("http://239.255.255.250/", "multicast"),
    ("http://[ff02::1]/", "multicast"),
    ("http://255.255.255.255/", "broadcast"),
    ("http://4294967295/", "broadcast"),
    ("http://240.0.0.1/", "reserved"),
    ("http://[4000::1]/", "reserved"),
    ("http://[100::1]/", "discard-only"),
    ("http://198.18.0.1/", "benchmarking"),
    ("http://198.19.255.255/", "benchmarking"),
    ("http://[2001:2::1]/", "benchmarking"),
    ("http://192.0.2.1/", "documentation"),
    ("http://198.51.100.7/", "documentation"),
    ("http://203.0.113.9/", "documentation"),
    ("http://[2001:db8::1]/", "documentation"),
    ("http://[3fff::1]/", "documentation"),
    ("http://192.0.0.8/", "IETF protocol"),
    ("http://192.88.99.1/", "6to4 relay"),
    # hosts we cannot read one way only
    ("http://[fe80::1%25eth0]/", "zone id"),
    ("http://127.0.0.%31/", "percent"),
    ("http://1.2.3.4.5/", "not a valid IPv4"),
    ("http://256.0.0.1/", "not a valid IPv4"),
    ("http://127.0.0.256/", "not a valid IPv4"),
    ("http://4294967296/", "not a valid IPv4"),
    ("http://08.0.0.1/", "not a valid IPv4"),
    ("http://example.123/", "not a valid IPv4"),
    ("http://exa mple.com/", "spaces"),
    ("http://example.com\\@127.0.0.1/", "backslash"),
    ("http://user@127.0.0.1/", "user name"),
    ("http://evil.example:pw@127.0.0.1/", "user name"),
    ("http://127.0.0.1:99999/", "port"),
    ("http://ex*ample.com/", "not a valid host name"),
    ("ftp://example.com/", "http"),
    ("file:///etc/passwd", "http"),
    ("gopher://127.0.0.1:6379/", "http"),
    ("http:///path", "no host"),
]


@pytest.mark.parametrize(("url", "reason"), REFUSED_SPELLINGS, ids=[url for url, _ in REFUSED_SPELLINGS])
def test_GIVEN_an_address_inside_in_any_spelling_WHEN_checked_THEN_refused_with_the_reason_without_any_dns(
    url: str, reason: str
) -> None:
    resolver = StubResolver()

    with pytest.raises(DestinationRefused, match=reason):
        guard(resolver).check(url)

    assert resolver.asked == []  # a literal is never looked up: no resolver sees it


def test_GIVEN_https_only_WHEN_an_http_url_is_checked_THEN_refused() -> None:
    with pytest.raises(DestinationRefused, match="https://"):
        guard(StubResolver({"example.com": [PUBLIC]}), allow_http=False).check("http://example.com/")


@pytest.mark.parametrize(
    ("url", "host", "port", "target"),
    [
        ("https://Example.COM./hooks?a=1#frag", "example.com", 443, "/hooks?a=1"),
        ("http://example.com:8080", "example.com", 8080, "/"),
        ("https://bücher.example/h", "xn--bcher-kva.example", 443, "/h"),
    ],
)
def test_GIVEN_a_public_name_WHEN_checked_THEN_its_resolved_address_and_request_target_come_back(
    url: str, host: str, port: int, target: str
) -> None:
    resolver = StubResolver({host: [PUBLIC, "2606:2800:21f:cb07:6820:80da:af6b:8b2c"]})

    checked = guard(resolver).check(url)

    assert (checked.host, checked.port, checked.target) == (host, port, target)
    assert checked.addresses == (PUBLIC, "2606:2800:21f:cb07:6820:80da:af6b:8b2c")
    assert resolver.asked == [host]


# ------------------------------------------------------------------ names that resolve inside


@pytest.mark.parametrize(
    ("answers", "reason"),
    [
        (["127.0.0.1"], "loopback"),
        ([PUBLIC, "10.0.0.1"], "private"),
        (["::1", PUBLIC], "loopback"),
        (["169.254.169.254"], "metadata"),
        (["fe80::1%eth0"], "link-local"),
        (["::ffff:10.0.0.1"], "IPv4-mapped"),
        (["0.0.0.0"], "unspecified"),
        (["not-an-address"], "not an address"),
        ([], "cannot be resolved"),
    ],
)
def test_GIVEN_a_name_with_any_answer_inside_WHEN_checked_THEN_refused(answers: list[str], reason: str) -> None:
    with pytest.raises(DestinationRefused, match=reason):
        guard(StubResolver({"hooks.example": answers})).check("https://hooks.example/")


def test_GIVEN_a_name_that_does_not_resolve_WHEN_checked_THEN_refused() -> None:
    with pytest.raises(DestinationRefused, match="cannot be resolved"):
        guard(StubResolver()).check("https://nowhere.example/")


# ------------------------------------------------------------------ allow-list and own endpoint


def test_GIVEN_an_allowed_host_and_port_WHEN_checked_THEN_its_loopback_address_passes_and_nothing_else_does() -> None:
    resolver = StubResolver({"localhost": ["127.0.0.1", "::1"]})
    allowing = guard(resolver, allowed_hosts=["localhost:8123", "127.0.0.1:9000", "[::1]:7000"])

    assert allowing.check("http://localhost:8123/h").addresses == ("127.0.0.1", "::1")
    assert allowing.check("http://2130706433:9000/").addresses == ("127.0.0.1",)  # the same place, spelled otherwise
    assert allowing.check("http://[0::1]:7000/").addresses == ("::1",)
    for other in (
        "http://localhost:8124/",
        "http://127.0.0.1:8123/",
        "http://127.0.0.2:9000/",
        "http://10.0.0.1:8123/",
    ):
        with pytest.raises(DestinationRefused):
            allowing.check(other)


def test_GIVEN_the_stacks_own_endpoint_allowed_by_mistake_WHEN_checked_THEN_refused_in_every_spelling() -> None:
    resolver = StubResolver({"localhost": ["127.0.0.1"], "hooks.example": ["127.0.0.1"]})
    allowing_itself = guard(
        resolver,
        allowed_hosts=["127.0.0.1:4566", "localhost:4566", "hooks.example:4566"],
        own_endpoint_urls=["http://127.0.0.1:4566", ""],
    )

    for url in (
        "http://127.0.0.1:4566/_ministack/reset",
        "http://localhost:4566/_ministack/reset",
        "http://127.1:4566/",
        "http://[::1]:4566/",
        "http://0.0.0.0:4566/",
        "http://127.0.0.2:4566/",
        "http://hooks.example:4566/",
    ):
        with pytest.raises(DestinationRefused, match="own endpoint"):
            allowing_itself.check(url)


def test_GIVEN_the_metadata_service_allowed_by_mistake_WHEN_checked_THEN_still_refused() -> None:
    with pytest.raises(DestinationRefused, match="metadata"):
        guard(allowed_hosts=["169.254.169.254:80"]).check("http://169.254.169.254/latest/meta-data/")


@pytest.mark.parametrize("entry", ["localhost", "localhost:http", "http://localhost:80/", "user@h:80", "1.2.3.4.5:80"])
def test_GIVEN_a_malformed_allowed_host_WHEN_the_policy_is_built_THEN_misconfigured(entry: str) -> None:
    with pytest.raises(ValidationFailed) as raised:
        OutboundPolicy.build(allow_http=False, allowed_hosts=[entry])
    assert raised.value.code == "MISCONFIGURED"


# ------------------------------------------------------------------ properties

REFUSED_V4_NETWORKS = [
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.0.0.0/24",
    "192.0.2.0/24",
    "192.168.0.0/16",
    "198.18.0.0/15",
    "198.51.100.0/24",
    "203.0.113.0/24",
    "224.0.0.0/4",
    "240.0.0.0/4",
]


@st.composite
def refused_ipv4(draw: st.DrawFn) -> ipaddress.IPv4Address:
    network = ipaddress.IPv4Network(draw(st.sampled_from(REFUSED_V4_NETWORKS)))
    return network[draw(st.integers(0, network.num_addresses - 1))]


def _number(value: int, form: str) -> str:
    return {"dec": str(value), "hex": hex(value), "HEX": f"0X{value:X}", "oct": f"0{value:o}"}[form]


@st.composite
def spelled(draw: st.DrawFn, address: ipaddress.IPv4Address) -> str:
    """``address`` as inet_aton reads it: 1 to 4 parts, each in any base."""
    value = int(address)
    octets = list(address.packed)
    parts_count = draw(st.integers(1, 4))
    leading = octets[: parts_count - 1]
    last = value & (0xFFFFFFFF >> (8 * (parts_count - 1)))
    forms = st.sampled_from(["dec", "hex", "HEX", "oct"])
    return ".".join(_number(part, draw(forms)) for part in [*leading, last])


@given(st.data())
def test_GIVEN_any_address_in_a_refused_range_WHEN_spelled_any_way_inet_aton_reads_THEN_refused(
    data: st.DataObject,
) -> None:
    address = data.draw(refused_ipv4())
    spelling = data.draw(spelled(address))
    as_url = data.draw(
        st.sampled_from(
            [
                f"http://{spelling}/",
                f"http://{spelling}.:8080/x",
                f"http://[::ffff:{address}]/",
                f"http://[64:ff9b::{address}]/",
            ]
        )
    )

    with pytest.raises(DestinationRefused):
        guard().check(as_url)


@given(st.data())
def test_GIVEN_any_number_spelling_WHEN_parsed_THEN_the_same_address_as_the_system_inet_aton(
    data: st.DataObject,
) -> None:
    address = ipaddress.IPv4Address(data.draw(st.integers(0, 2**32 - 1)))
    spelling = data.draw(spelled(address))

    assert parse_ipv4(spelling) == address
    assert socket.inet_aton(spelling) == address.packed  # the C library reads it as we do


@given(st.from_regex(r"(0[xX][0-9a-fA-F]{0,9}|[0-9]{1,12})(\.(0[xX][0-9a-fA-F]{0,3}|[0-9]{1,4})){0,4}", fullmatch=True))
def test_GIVEN_any_dotted_number_WHEN_parsed_THEN_we_agree_with_the_system_inet_aton(text: str) -> None:
    try:
        system = ipaddress.IPv4Address(socket.inet_aton(text))
    except OSError:
        system = None

    assert parse_ipv4(text) == system


@given(st.ip_addresses(v=4))
def test_GIVEN_any_ipv4_address_WHEN_classified_THEN_refused_exactly_when_it_is_not_global(
    address: ipaddress.IPv4Address,
) -> None:
    # The standard library's view (IANA's special-purpose registry) as a second opinion;
    # ours also refuses a few global ones: metadata services, AS112/AMT-like IETF assignments, 6to4 relays.
    ours_refuses = refusal_reason(address) is not None
    if not address.is_global or address.is_multicast:
        assert ours_refuses, address
    elif ours_refuses:
        assert refusal_reason(address) in {
            "a cloud metadata service",
            "an IETF protocol assignment",
            "a 6to4 relay address",
        }, address
