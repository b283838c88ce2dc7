"""Seal a Comprobante with a CSD and verify seals (RULES.md §3.2)."""

from __future__ import annotations

import base64
import binascii

from lxml import etree

from . import document as d
from .cadena import fast_cadena
from .csd import CertificateInfo, Csd
from .xml import render


def seal_document(c: d.Comprobante, csd: Csd) -> etree._Element:
    """Fill NoCertificado, Certificado and Sello of ``c`` and return the rendered, sealed element."""
    c.no_certificado = csd.no_certificado
    c.certificado = csd.certificate_base64
    c.sello = csd.sign(fast_cadena(c).encode("utf-8"))
    return render(c)


def verify_seal(cadena: str, sello_b64: str, cert: CertificateInfo) -> bool:
    try:
        signature = base64.b64decode(sello_b64, validate=True)
    except (binascii.Error, ValueError):
        return False
    return cert.verify(cadena.encode("utf-8"), signature)
