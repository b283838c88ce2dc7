"""Self-signed CSDs in SAT's format, for the demo seed and the tests. NOT valid before SAT or any PAC.

``generate_test_csd("EKU9003173C9", "ESCUELA KEMPER URGATE")`` returns ``(cer_der, key_der, password)``:
the .cer is DER X.509 with the RFC in x500UniqueIdentifier, the branch in OU, keyUsage
digitalSignature + nonRepudiation and a serial that is the 20-digit NoCertificado written as ASCII (exactly
how SAT encodes it); the .key is PKCS#8 DER encrypted with the returned password, like SAT's .key files.
``load_csd(cer, key, password)`` accepts them. One RSA-2048 key is generated per process and reused, so a
call costs a few milliseconds; pass ``fiel=True`` to get an e.firma-like certificate (for rejection tests).
"""

from __future__ import annotations

import functools
import secrets
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from .csd import X500_UNIQUE_IDENTIFIER

TEST_PASSWORD = "12345678a"


@functools.cache
def _process_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def generate_test_csd(
    rfc: str,
    legal_name: str,
    valid_from: datetime | None = None,
    valid_to: datetime | None = None,
    serial_digits: str | None = None,
    *,
    password: str = TEST_PASSWORD,
    fiel: bool = False,
    new_key: bool = False,
) -> tuple[bytes, bytes, str]:
    """Return ``(cer_der, key_der_encrypted, password)`` for a self-signed test CSD (see module doc)."""
    valid_from = valid_from or datetime.now(UTC) - timedelta(days=1)
    valid_to = valid_to or valid_from + timedelta(days=4 * 365)
    serial_digits = serial_digits or "3000100000" + "".join(secrets.choice("0123456789") for _ in range(10))
    if len(serial_digits) != 20 or not serial_digits.isdigit():
        raise ValueError("serial_digits must be 20 digits")
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048) if new_key else _process_key()
    rfc = rfc.strip().upper()
    attrs = [
        x509.NameAttribute(NameOID.COMMON_NAME, legal_name),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, legal_name),
        x509.NameAttribute(X500_UNIQUE_IDENTIFIER, rfc),
    ]
    if not fiel:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "Sucursal 1"))
    subject = x509.Name(attrs)
    issuer = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "AC DE PRUEBAS (NO VALIDO ANTE EL SAT)")])
    usage = dict(
        digital_signature=True,
        content_commitment=True,
        key_encipherment=fiel,
        data_encipherment=fiel,
        key_agreement=fiel,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(int.from_bytes(serial_digits.encode("ascii"), "big"))
        .not_valid_before(valid_from)
        .not_valid_after(valid_to)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(**usage), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_der = key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(password.encode()),
    )
    return cert.public_bytes(serialization.Encoding.DER), key_der, password
