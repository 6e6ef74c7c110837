"""CloudFront signed URLs for a job's outputs: one signature per response, not per file.

The outputs distribution trusts one key group (``OutputsKeyGroup`` in the
template), so it serves nothing without a valid signature. We sign a *custom
policy* whose resource is the job's whole prefix with a wildcard
(``https://dxxx.cloudfront.net/jobs/<job id>/*``) and whose only condition is an
expiry: the same three query parameters then open every segment, image and
init segment of that job, and of no other, until the expiry. A media playlist
of 900 segments costs one RSA signature, not 900.

The private key lives in Secrets Manager (``<stack>/cdn-signing-key``, written
by ``vidpipe cdn-key``); CloudFront knows the public half as the key group's
public key, whose id is the ``Key-Pair-Id`` here.

What can go wrong: ``ValidationFailed`` (code MISCONFIGURED) for a private key
that is not an RSA key in PEM; ``ValidationFailed`` for a resource CloudFront
would read as something else than a job prefix, or an expiry not after now.
"""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import quote

from vidpipe.domain.errors import ValidationFailed
from vidpipe.domain.storage_keys import job_of_output_key, job_outputs_prefix

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

# CloudFront's own URL-safe base64: '+', '=' and '/' are not safe in its query
# parameters, so it reads '-', '_' and '~' in their place.
_CLOUDFRONT_BASE64 = str.maketrans({"+": "-", "=": "_", "/": "~"})


def cloudfront_base64(data: bytes) -> str:
    """Base64 in CloudFront's alphabet (``-`` ``_`` ``~`` for ``+`` ``=`` ``/``)."""
    return base64.b64encode(data).decode("ascii").translate(_CLOUDFRONT_BASE64)


def custom_policy(resource: str, *, expires_at: int) -> str:
    """The policy JSON CloudFront checks: ``resource`` (``*`` matches any run of
    characters, ``/`` included) readable until ``expires_at`` (epoch seconds).
    Compact on purpose: the policy travels base64-encoded in every URL."""
    statement = {"Resource": resource, "Condition": {"DateLessThan": {"AWS:EpochTime": expires_at}}}
    return json.dumps({"Statement": [statement]}, separators=(",", ":"))


def load_private_key(pem: str) -> RSAPrivateKey:
    """The RSA private key in ``pem``. Raises ValidationFailed (MISCONFIGURED) otherwise."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    try:
        key = serialization.load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError) as exc:
        raise ValidationFailed("the CDN signing key is not a PEM private key", code="MISCONFIGURED") from exc
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValidationFailed("the CDN signing key is not an RSA key (CloudFront wants RSA)", code="MISCONFIGURED")
    return key


def rsa_sha1_signature(key: RSAPrivateKey, message: str) -> bytes:
    """PKCS#1 v1.5 over SHA-1: the only signature CloudFront signed URLs accept."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    return key.sign(message.encode(), padding.PKCS1v15(), hashes.SHA1())  # noqa: S303 - CloudFront's choice


def signed_query(resource: str, *, expires_at: int, key_pair_id: str, key: RSAPrivateKey) -> str:
    """``Policy=...&Signature=...&Key-Pair-Id=...`` granting ``resource`` until ``expires_at``."""
    policy = custom_policy(resource, expires_at=expires_at)
    signature = rsa_sha1_signature(key, policy)
    encoded_policy, encoded_signature = cloudfront_base64(policy.encode()), cloudfront_base64(signature)
    return f"Policy={encoded_policy}&Signature={encoded_signature}&Key-Pair-Id={key_pair_id}"


@dataclass
class CloudFrontOutputUrls:
    """Output URLs through the outputs distribution, each carrying a signature
    that expires: the same ``presigned_get`` shape as ``S3ObjectStore``, so the
    API picks one or the other at wiring time.

    Make one per response: the clock is read once, so every URL of a job in that
    response shares one expiry and therefore one signature (cached per job)."""

    base_url: str
    key_pair_id: str
    key: RSAPrivateKey
    issued_at: int = field(default_factory=lambda: int(time.time()))
    _grants: dict[tuple[str, int], str] = field(default_factory=dict, repr=False)

    def presigned_get(self, key: str, *, expires_s: int) -> str:
        if expires_s <= 0:
            raise ValidationFailed(f"bad output URL request: expires_s={expires_s}")
        job_prefix = job_outputs_prefix(job_of_output_key(key))
        expires_at = self.issued_at + expires_s
        if (job_prefix, expires_at) not in self._grants:
            resource = f"{self.base_url.rstrip('/')}/{quote(job_prefix)}*"
            self._grants[job_prefix, expires_at] = signed_query(
                resource, expires_at=expires_at, key_pair_id=self.key_pair_id, key=self.key
            )
        return f"{self.base_url.rstrip('/')}/{quote(key)}?{self._grants[job_prefix, expires_at]}"


@dataclass(frozen=True)
class SigningKeyPair:
    private_key_pem: str
    public_key_pem: str


def generate_signing_key_pair() -> SigningKeyPair:
    """A fresh 2048-bit RSA key pair (the size CloudFront requires) as PEM."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return SigningKeyPair(private_key_pem=private_pem.decode(), public_key_pem=public_pem.decode())
