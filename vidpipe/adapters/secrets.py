"""The secrets of a deployment, read from Secrets Manager: each purpose's
signing key set (:class:`~vidpipe.domain.access.SigningKeys`, cached per
container) and the CloudFront signing key.

What can go wrong: :func:`signing_keys` raises RuntimeError when not
configured and ValueError for a malformed key set; :func:`secret_json` raises
ValidationFailed (code MISCONFIGURED) for a secret that is not a JSON object;
the client's own errors pass through.
"""

from __future__ import annotations

import json
import os
import threading
import time
from typing import Any

# The client is looked up at call time, so a test can put a fake one on aws_clients.
from vidpipe.adapters import aws_clients
from vidpipe.domain.access import KEYS_CACHE_S, SigningKeys
from vidpipe.domain.errors import ValidationFailed

_cache: dict[str, tuple[float, SigningKeys]] = {}
_cache_lock = threading.Lock()


def keys_secret_id(prefix: str, purpose: str) -> str:
    """The Secrets Manager name of a purpose's key set (the template names them so)."""
    return f"{prefix}{purpose}"


def signing_keys(purpose: str) -> SigningKeys:
    """The key set of ``purpose``, read from Secrets Manager (``SIGNING_KEYS_PREFIX``
    + purpose) and trusted for KEYS_CACHE_S seconds per container: a rotation
    reaches every function within that time (docs/DEPLOY.md). Raises
    RuntimeError when not configured, ValueError for a malformed key set."""
    with _cache_lock:
        cached = _cache.get(purpose)
        if cached and time.monotonic() - cached[0] < KEYS_CACHE_S:
            return cached[1]
    prefix = os.environ.get("SIGNING_KEYS_PREFIX", "")
    if not prefix:
        raise RuntimeError("SIGNING_KEYS_PREFIX is not set")
    answer = aws_clients.secrets_client().get_secret_value(SecretId=keys_secret_id(prefix, purpose))
    keys = SigningKeys.from_secret_string(purpose, str(answer["SecretString"]))
    with _cache_lock:
        _cache[purpose] = (time.monotonic(), keys)
    return keys


def forget_signing_keys() -> None:
    """Drop the cached key sets (tests)."""
    with _cache_lock:
        _cache.clear()


def secret_json(secret_id: str) -> dict[str, Any]:
    """The JSON object a secret holds (``vidpipe cdn-key`` writes the CloudFront
    key pair so)."""
    answer = aws_clients.secrets_client().get_secret_value(SecretId=secret_id)
    try:
        value = json.loads(answer["SecretString"])
    except (KeyError, ValueError) as exc:
        raise ValidationFailed(f"secret {secret_id} holds no JSON", code="MISCONFIGURED") from exc
    if not isinstance(value, dict):
        raise ValidationFailed(f"secret {secret_id} holds no JSON object", code="MISCONFIGURED")
    return value
