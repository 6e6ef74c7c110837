"""`vidpipe token`'s small rules: how a lifetime is written, and when `vidpipe up`
on a running stack mints the local user a new token."""

from __future__ import annotations

import time

import pytest

from vidpipe.domain.access import API_TOKENS, MAX_TOKEN_TTL_S, SigningKeys, mint_api_token
from vidpipe_cli.local_deploy import expires_soon
from vidpipe_cli.local_stack_settings import LOCAL_TOKEN_RENEW_S
from vidpipe_cli.tokens import TokenCommandError, parse_ttl

KEYS = SigningKeys(API_TOKENS, "k1", {"k1": "local-api-key-0123456789abcdefghijklmnop"})


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("3600", 3600), ("90m", 5400), ("12h", 43200), ("30d", 2592000), (" 7d ", 604800), ("366d", MAX_TOKEN_TTL_S)],
)
def test_GIVEN_a_lifetime_WHEN_parsed_THEN_seconds(text: str, seconds: int) -> None:
    assert parse_ttl(text) == seconds


@pytest.mark.parametrize("text", ["", "0", "0d", "367d", "forever", "1w", "-5", "1.5h", "12 h x"])
def test_GIVEN_a_lifetime_we_do_not_accept_WHEN_parsed_THEN_a_reason(text: str) -> None:
    with pytest.raises(TokenCommandError, match="--ttl"):
        parse_ttl(text)


def test_GIVEN_the_local_users_token_WHEN_up_runs_again_THEN_renewed_only_near_expiry_or_if_old_format() -> None:
    fresh = mint_api_token(KEYS, "local", ttl_s=30 * 86400).token
    nearly_gone = mint_api_token(KEYS, "local", ttl_s=LOCAL_TOKEN_RENEW_S - 60).token
    expired = mint_api_token(KEYS, "local", ttl_s=60, now=time.time() - 3600).token

    assert not expires_soon(fresh)
    assert expires_soon(nearly_gone) and expires_soon(expired)
    assert expires_soon("vp1.local.IeAohi6T3dYmyXjLnJIg1wssKV297lEsK41e45vLtSk")
