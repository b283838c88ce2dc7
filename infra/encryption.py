"""Encryption at rest for secrets we must be able to read back (CSD keys and passwords, PAC credentials).

Fernet (AES-128-CBC + HMAC-SHA256) with the key from FIELD_ENCRYPTION_KEY. Several keys may be given,
comma-separated: the first encrypts, all decrypt, so a key can be rotated without downtime.
"""

from functools import cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models


@cache
def _fernet() -> MultiFernet:
    keys = [k.strip() for k in settings.FIELD_ENCRYPTION_KEY.split(",") if k.strip()]
    try:
        return MultiFernet([Fernet(k.encode()) for k in keys])
    except (ValueError, TypeError) as exc:
        raise ImproperlyConfigured(
            "FIELD_ENCRYPTION_KEY must be one or more Fernet keys (32 url-safe base64-encoded bytes); "
            'generate one with: python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"'
        ) from exc


def encrypt(data: bytes) -> bytes:
    return _fernet().encrypt(data)


def decrypt(token: bytes) -> bytes:
    try:
        return _fernet().decrypt(bytes(token))
    except InvalidToken as exc:
        raise ImproperlyConfigured(
            "Stored secret cannot be decrypted: FIELD_ENCRYPTION_KEY differs from the key it was written with."
        ) from exc


class EncryptedBinaryField(models.BinaryField):
    """Bytes in Python, Fernet token in the database."""

    def from_db_value(self, value, expression, connection):
        if value is None:
            return None
        return decrypt(value)

    def get_db_prep_value(self, value, connection, prepared=False):
        if value is None:
            return None
        if isinstance(value, memoryview):
            value = bytes(value)
        return super().get_db_prep_value(encrypt(value), connection, prepared)


class EncryptedTextField(models.BinaryField):
    """Text in Python, Fernet token in the database."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("editable", True)
        super().__init__(*args, **kwargs)

    def from_db_value(self, value, expression, connection):
        if value is None:
            return None
        return decrypt(value).decode("utf-8")

    def to_python(self, value):
        if isinstance(value, (bytes, memoryview)):
            return bytes(value).decode("utf-8")
        return value

    def get_db_prep_value(self, value, connection, prepared=False):
        if value is None:
            return None
        return super().get_db_prep_value(encrypt(str(value).encode("utf-8")), connection, prepared)
