"""Check a stamped (or only sealed) CFDI: XSD, emisor's Sello, TFD ↔ Sello, and SAT's SelloSAT."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable
from dataclasses import dataclass, field

from .cadena import cadena_original, tfd_cadena_original
from .csd import CertificateInfo, CsdError, read_certificate
from .errors import CfdiError
from .parser import parse_cfdi
from .resources import CFDI_NS
from .seal import verify_seal
from .xsd import xsd_issues


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    message: str


@dataclass
class VerifyResult:
    checks: list[Check] = field(default_factory=list)
    uuid: str | None = None

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def add(self, name: str, ok: bool, message: str) -> None:
        self.checks.append(Check(name, ok, message))

    def summary(self) -> str:
        failed = [c for c in self.checks if not c.ok]
        if not failed:
            return "OK: " + "; ".join(c.message for c in self.checks)
        return "FALLA: " + "; ".join(c.message for c in failed)


def _certs(sat_cert) -> list[CertificateInfo]:
    if sat_cert is None:
        return []
    items = [sat_cert] if isinstance(sat_cert, bytes | CertificateInfo) else list(sat_cert)
    return [c if isinstance(c, CertificateInfo) else read_certificate(c) for c in items]


def verify(xml_bytes: bytes, sat_cert: bytes | CertificateInfo | Iterable | None = None) -> VerifyResult:
    """Verify a CFDI 4.0. ``sat_cert``: DER bytes (or several) of the SAT/PAC certificates to check SelloSAT."""
    result = VerifyResult()
    try:
        parsed = parse_cfdi(xml_bytes)
    except CfdiError as exc:
        result.add("xml", False, str(exc))
        return result
    if parsed.namespace != CFDI_NS:
        result.add("version", False, "Solo se verifican CFDI 4.0.")
        return result
    c = parsed.comprobante
    issues = xsd_issues(parsed.root)
    result.add("xsd", not issues, "XSD válido" if not issues else issues[0].message)

    try:
        cert = read_certificate(base64.b64decode(c.certificado, validate=True))
    except (CsdError, binascii.Error, ValueError):
        result.add("sello", False, "El atributo Certificado no contiene un certificado válido.")
        cert = None
    if cert is not None:
        if cert.no_certificado != c.no_certificado:
            result.add("certificado", False, "NoCertificado no corresponde al certificado incluido.")
        sello_ok = verify_seal(cadena_original(parsed.root), c.sello, cert)
        result.add("sello", sello_ok, "Sello del emisor válido" if sello_ok else "El sello del emisor NO corresponde a la cadena original (documento alterado o sello incorrecto).")

    t = parsed.timbre
    if t is None:
        result.add("timbre", True, "sin timbre (solo sellado)")
        return result
    result.uuid = t.uuid
    same = t.sello_cfd == c.sello
    result.add("timbre", same, f"UUID {t.uuid}" if same else "El SelloCFD del timbre no es el Sello del comprobante.")
    certs = [x for x in _certs(sat_cert) if x.no_certificado == t.no_certificado_sat]
    if not certs:
        # Not a failure: SelloSAT is checked when the certificate that signed it is known.
        result.add("sello_sat", True, f"SelloSAT sin verificar (falta el certificado {t.no_certificado_sat})")
        return result
    cadena = tfd_cadena_original(parsed.tfd_element)
    sat_ok = verify_seal(cadena, t.sello_sat, certs[0])
    result.add("sello_sat", sat_ok, "SelloSAT válido" if sat_ok else "El SelloSAT NO corresponde al timbre.")
    return result
