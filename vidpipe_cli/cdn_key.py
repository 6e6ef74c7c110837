"""`vidpipe cdn-key`: the key pair CloudFront checks output URLs with, made once per stack.

CloudFormation cannot generate an RSA key, and the outputs distribution trusts
only the key group whose public key the template declares. So before the first
deploy with ``OutputsDelivery=cloudfront`` the operator runs, with the AWS
credentials and region of the deployment::

    vidpipe cdn-key --stack-name vidpipe-prod

It makes a 2048-bit RSA key pair on this machine and stores both halves in one
Secrets Manager secret, ``<stack>/cdn-signing-key``, as JSON ``{"private_key",
"public_key"}`` (PEM): the private key never touches the disk. The template
reads the public half from there (a dynamic reference); the API function reads
the private half to sign URLs (vidpipe.adapters.cloudfront_signing).

What can go wrong: CdnKeyError when the secret already exists (a second key
would not match the public key CloudFront already trusts; rotating needs a
second key in the key group, which this command does not do) or when Secrets
Manager refuses the call (credentials, permissions, region).
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from vidpipe.adapters.cloudfront_signing import generate_signing_key_pair


class CdnKeyError(Exception):
    """The signing key could not be stored; the message says why."""


def signing_key_secret_name(stack_name: str) -> str:
    """The secret the template and the API function look for (see infra/template.yaml)."""
    return f"{stack_name}/cdn-signing-key"


def create_cdn_signing_key(secrets: Any, stack_name: str) -> str:
    """Store a fresh key pair for ``stack_name``; returns the secret's name."""
    name = signing_key_secret_name(stack_name)
    pair = generate_signing_key_pair()
    try:
        secrets.create_secret(
            Name=name,
            Description=f"CloudFront signing key of the {stack_name} outputs (vidpipe cdn-key)",
            SecretString=json.dumps({"private_key": pair.private_key_pem, "public_key": pair.public_key_pem}),
        )
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ResourceExistsException":
            raise CdnKeyError(
                f"secret {name} already exists: the stack keeps its key (delete the secret only with the stack)"
            ) from exc
        raise CdnKeyError(f"Secrets Manager refused to store {name}: {exc}") from exc
    except BotoCoreError as exc:
        raise CdnKeyError(f"could not reach Secrets Manager to store {name}: {exc}") from exc
    return name
