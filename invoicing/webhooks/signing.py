"""Standard Webhooks signatures (https://www.standardwebhooks.com): our own code, kept small and pure.

A secret is ``whsec_`` + base64 of the key bytes. The signed content is ``"{webhook-id}.{webhook-timestamp}.{body}"``
and the ``webhook-signature`` header is ``v1,<base64 HMAC-SHA256>``; during a secret rotation it carries one
signature per active secret, space-separated, and a receiver accepts the message if any of them matches.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets

SECRET_PREFIX = "whsec_"
KEY_BYTES = 32


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode("ascii")


def secret_key(secret: str) -> bytes:
    """The HMAC key a secret stands for.

    Secrets issued before the Standard Webhooks format were ``whsec_`` + URL-safe base64 without padding; their key
    is read with that alphabet (a rotation replaces them with a standard one, see docs/webhooks.md).
    """
    encoded = secret.removeprefix(SECRET_PREFIX)
    padded = encoded + "=" * (-len(encoded) % 4)
    try:
        return base64.b64decode(padded, validate=True)
    except binascii.Error:
        return base64.urlsafe_b64decode(padded)


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """``v1,<base64>`` of HMAC-SHA256 over ``"{msg_id}.{timestamp}.{body}"``."""
    mac = hmac.new(secret_key(secret), f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256)
    return "v1," + base64.b64encode(mac.digest()).decode("ascii")


def signature_header(active_secrets: list[str], msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value: one ``v1,…`` per active secret (newest first), space-separated."""
    return " ".join(sign(secret, msg_id, timestamp, body) for secret in active_secrets)


def headers(active_secrets: list[str], msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature_header(active_secrets, msg_id, timestamp, body),
    }
