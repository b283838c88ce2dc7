"""Certificado de Sello Digital: load, check and sign (RULES.md §3.2–3.3).

Loading an encrypted SAT key costs ~27 ms (PBKDF), so loaded CSDs are cached per process by the digest of
(cer, key, password).
"""

from __future__ import annotations

import base64
import functools
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import ExtensionOID, NameOID

from .errors import CfdiError, ValidationIssue

X500_UNIQUE_IDENTIFIER = x509.ObjectIdentifier("2.5.4.45")

_PAD = padding.PKCS1v15()
_SHA256 = hashes.SHA256()


class CsdError(CfdiError):
    def __init__(self, code: str, message: str, path: str = "csd"):
        super().__init__([ValidationIssue(code, path, message)])


def no_certificado_from_serial(serial: int) -> str:
    """SAT writes the 20-digit certificate number as ASCII digits inside the hex serial."""
    hexed = f"{serial:x}"
    if len(hexed) % 2:
        hexed = "0" + hexed
    try:
        text = bytes.fromhex(hexed).decode("ascii")
    except UnicodeDecodeError:
        text = ""
    return text if text.isdigit() else str(serial)


def _subject_attr(cert: x509.Certificate, oid) -> str:
    values = cert.subject.get_attributes_for_oid(oid)
    if not values:
        return ""
    value = values[0].value
    return value.decode() if isinstance(value, bytes) else str(value)


@dataclass(frozen=True)
class CertificateInfo:
    certificate: x509.Certificate
    der: bytes
    no_certificado: str
    rfc: str
    legal_name: str
    valid_from: datetime
    valid_to: datetime
    is_csd: bool

    @property
    def base64(self) -> str:
        return base64.b64encode(self.der).decode("ascii")

    def verify(self, data: bytes, signature: bytes) -> bool:
        try:
            self.certificate.public_key().verify(signature, data, _PAD, _SHA256)
        except Exception:  # noqa: BLE001 - any failure means "does not verify"
            return False
        return True


def read_certificate(cer: bytes) -> CertificateInfo:
    """Parse a SAT .cer (DER; PEM accepted too) and read what SAT puts in it."""
    try:
        cert = x509.load_der_x509_certificate(cer)
    except ValueError:
        try:
            cert = x509.load_pem_x509_certificate(cer)
        except ValueError as exc:
            raise CsdError("CSD_CER", "El archivo .cer no es un certificado válido.") from exc
    der = cert.public_bytes(serialization.Encoding.DER)
    unique = _subject_attr(cert, X500_UNIQUE_IDENTIFIER)
    # A persona moral's certificate reads "RFC / RFC-of-legal-representative": the first one is the holder.
    rfc = unique.split("/")[0].strip().upper()
    name = _subject_attr(cert, NameOID.COMMON_NAME) or _subject_attr(cert, NameOID.ORGANIZATION_NAME)
    return CertificateInfo(
        certificate=cert,
        der=der,
        no_certificado=no_certificado_from_serial(cert.serial_number),
        rfc=rfc,
        legal_name=name,
        valid_from=cert.not_valid_before_utc,
        valid_to=cert.not_valid_after_utc,
        is_csd=_looks_like_csd(cert),
    )


def _looks_like_csd(cert: x509.Certificate) -> bool:
    """A CSD names its branch in OU and signs only (digitalSignature + nonRepudiation); a FIEL does more."""
    if not cert.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME):
        return False
    try:
        ku = cert.extensions.get_extension_for_oid(ExtensionOID.KEY_USAGE).value
    except x509.ExtensionNotFound:
        return False
    extra = ku.key_encipherment or ku.data_encipherment or ku.key_agreement or ku.key_cert_sign or ku.crl_sign
    return ku.digital_signature and ku.content_commitment and not extra


@dataclass(frozen=True)
class Csd:
    """A loaded, checked CSD ready to seal."""

    info: CertificateInfo
    private_key: rsa.RSAPrivateKey

    @property
    def no_certificado(self) -> str:
        return self.info.no_certificado

    @property
    def rfc(self) -> str:
        return self.info.rfc

    @property
    def legal_name(self) -> str:
        return self.info.legal_name

    @property
    def certificate_base64(self) -> str:
        return _cert_b64(self.info.der)

    def sign(self, data: bytes) -> str:
        """RSA PKCS#1 v1.5 over SHA-256, base64 (the Sello)."""
        return base64.b64encode(self.private_key.sign(data, _PAD, _SHA256)).decode("ascii")

    def check_usable(self, *, at: datetime | None = None, rfc: str | None = None) -> None:
        """Raise CsdError if the CSD cannot seal a document dated ``at`` for emisor ``rfc``."""
        at = at or datetime.now(UTC)
        if at < self.info.valid_from:
            raise CsdError(
                "CFDI40106",
                f"El certificado {self.no_certificado} aún no es válido: su vigencia inicia el "
                f"{self.info.valid_from:%d/%m/%Y}.",
            )
        if at > self.info.valid_to:
            raise CsdError(
                "CFDI40106",
                f"El certificado {self.no_certificado} venció el {self.info.valid_to:%d/%m/%Y}. "
                "Tramita un nuevo CSD en el portal del SAT y cárgalo aquí.",
            )
        if rfc is not None and rfc.strip().upper() != self.rfc:
            raise CsdError(
                "CFDI40139",
                f"El certificado pertenece al RFC {self.rfc}, no al RFC del emisor {rfc.strip().upper()}.",
            )


@functools.lru_cache(maxsize=64)
def _cert_b64(der: bytes) -> str:
    return base64.b64encode(der).decode("ascii")


def load_csd(
    cer: bytes,
    key: bytes,
    password: str | bytes,
    *,
    expected_rfc: str | None = None,
    at: datetime | None = None,
    check_validity: bool = True,
) -> Csd:
    """Load and check a CSD. Raises CsdError with a Spanish message for every way it can be wrong.

    ``check_validity=False`` skips the date check (to seal tests with SAT's expired test CSDs).
    """
    pw = password.encode() if isinstance(password, str) else password
    csd = _load_cached(hashlib.sha256(cer + b"\0" + key + b"\0" + pw).digest(), cer, key, pw)
    if check_validity:
        csd.check_usable(at=at, rfc=expected_rfc)
    elif expected_rfc is not None:
        csd.check_usable(at=csd.info.valid_from, rfc=expected_rfc)
    return csd


_CACHE: dict[bytes, Csd] = {}
_CACHE_MAX = 256


def _load_cached(digest: bytes, cer: bytes, key: bytes, pw: bytes) -> Csd:
    hit = _CACHE.get(digest)
    if hit is not None:
        return hit
    info = read_certificate(cer)
    if not info.is_csd:
        raise CsdError(
            "CSD_NO_ES_CSD",
            "El certificado es de e.firma (FIEL), no de sello digital (CSD). Para facturar se necesita el "
            "CSD que se tramita con la e.firma en el portal del SAT.",
        )
    private_key = _load_key(key, pw)
    if not isinstance(private_key, rsa.RSAPrivateKey):
        raise CsdError("CSD_KEY", "La llave privada no es RSA.")
    if private_key.public_key().public_numbers() != info.certificate.public_key().public_numbers():
        raise CsdError("CSD_PAR", "La llave privada (.key) no corresponde al certificado (.cer).")
    csd = Csd(info, private_key)
    if len(_CACHE) >= _CACHE_MAX:
        _CACHE.pop(next(iter(_CACHE)))
    _CACHE[digest] = csd
    return csd


def _load_key(key: bytes, pw: bytes):
    loaders = (serialization.load_der_private_key, serialization.load_pem_private_key)
    last: Exception | None = None
    for loader in loaders:
        try:
            return loader(key, password=pw or None)
        except TypeError as exc:  # key not encrypted but a password was given, or the reverse
            last = exc
        except ValueError as exc:
            last = exc
            if "password" in str(exc).lower() or "decrypt" in str(exc).lower():
                raise CsdError(
                    "CSD_PASSWORD", "La contraseña de la llave privada (.key) es incorrecta."
                ) from exc
    if isinstance(last, TypeError):
        raise CsdError("CSD_PASSWORD", "La llave privada (.key) debe venir cifrada con su contraseña.") from last
    raise CsdError("CSD_KEY", "El archivo .key no es una llave privada válida del SAT.") from last
