"""`vidpipe token`: mint and revoke the API tokens of a stack, the local one or
one deployed on AWS. The same functions serve both; only the boto3 clients
differ (ministack's root keys locally, the caller's own AWS credentials for a
deployed stack, which need cloudformation:DescribeStacks, GetSecretValue on
the api-tokens key set and, to revoke, dynamodb:UpdateItem on the revoked
tokens table).

What can go wrong: TokenCommandError with a reason (a stack without the
outputs we need, a malformed lifetime or token); boto3's own errors for
missing credentials or permissions, which the command line reports as they are.
"""

from __future__ import annotations

import re
import time
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from vidpipe.adapters.secrets import keys_secret_id
from vidpipe.adapters.token_revocations import DynamoTokenRevocations
from vidpipe.domain.access import (
    API_TOKENS,
    MAX_TOKEN_TTL_S,
    TOKEN_ID_PATTERN,
    IssuedToken,
    SigningKeys,
    TokenRefused,
    mint_api_token,
    unverified_claims,
)

TTL_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class TokenCommandError(RuntimeError):
    """`vidpipe token` cannot do what was asked; the message says why."""


def parse_ttl(text: str) -> int:
    """``3600``, ``90m``, ``12h`` or ``30d`` as seconds (at most MAX_TOKEN_TTL_S)."""
    match = re.fullmatch(r"\s*(\d+)\s*([smhd]?)\s*", text or "")
    if not match:
        raise TokenCommandError(f"--ttl wants a number of seconds or e.g. 90m, 12h, 30d, not {text!r}")
    seconds = int(match.group(1)) * TTL_UNITS[match.group(2) or "s"]
    if not 0 < seconds <= MAX_TOKEN_TTL_S:
        raise TokenCommandError(f"--ttl must be between 1 s and {MAX_TOKEN_TTL_S // 86400} days")
    return seconds


def stack_outputs(cloudformation: Any, stack_name: str) -> dict[str, str]:
    """The outputs of a deployed stack (TokenCommandError when it has none of ours)."""
    try:
        [stack] = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    except (BotoCoreError, ClientError) as exc:
        raise TokenCommandError(f"cannot read stack {stack_name}: {exc}") from exc
    outputs = {output["OutputKey"]: output["OutputValue"] for output in stack.get("Outputs", [])}
    missing = {"SigningKeysPrefix", "RevokedTokensTableName"} - set(outputs)
    if missing:
        raise TokenCommandError(
            f"stack {stack_name} has no {', '.join(sorted(missing))} output: is it a vidpipe stack of this version?"
        )
    return outputs


def mint_token(secrets: Any, outputs: dict[str, str], user: str, *, ttl_s: int) -> IssuedToken:
    """A new token of ``user``, signed with the stack's current api-tokens key."""
    secret_id = keys_secret_id(outputs["SigningKeysPrefix"], API_TOKENS)
    keys = SigningKeys.from_secret_string(API_TOKENS, str(secrets.get_secret_value(SecretId=secret_id)["SecretString"]))
    try:
        return mint_api_token(keys, user, ttl_s=ttl_s)
    except ValueError as exc:
        raise TokenCommandError(str(exc)) from exc


def revoke_token(
    dynamodb: Any, outputs: dict[str, str], token_or_id: str, *, now: float | None = None
) -> tuple[str, int]:
    """Revoke a token given whole or by its id; returns (token id, until when the
    revocation is kept). Given only the id we cannot know its expiry, so the
    revocation is kept for the longest lifetime a token can have."""
    given = token_or_id.strip()
    if given.count(".") == 3:
        try:
            claims = unverified_claims(given)
        except TokenRefused as exc:
            raise TokenCommandError(exc.message) from exc
        token_id, until = claims.token_id, claims.expires_at
    elif TOKEN_ID_PATTERN.match(given):
        token_id, until = given, int((time.time() if now is None else now) + MAX_TOKEN_TTL_S)
    else:
        raise TokenCommandError("--revoke wants a token id (printed when it was minted) or the token itself")
    DynamoTokenRevocations(dynamodb, outputs["RevokedTokensTableName"]).revoke(token_id, until=until)
    return token_id, until
