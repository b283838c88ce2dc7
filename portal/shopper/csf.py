"""Prefill the fiscal data form from a Constancia de Situación Fiscal (PDF). Optional, never required: since
1 January 2026 (CFF art. 83 IX) a merchant may not make the invoice depend on the shopper handing it over.

The PDF is read in memory with pypdf (pure Python), text only, with size and page caps. Whatever cannot
be read is simply left for the shopper to type: this only saves typing, it decides nothing.
"""

from __future__ import annotations

import io
import logging
import re
import unicodedata

from django.utils.translation import gettext as _

from invoicing.cfdi.catalogs import REGIMENES_FISCALES
from invoicing.cfdi.rfc import RFC_BODY

MAX_BYTES = 2 * 1024 * 1024
MAX_PAGES = 5

log = logging.getLogger(__name__)

_RFC = re.compile(rf"RFC:\s*({RFC_BODY})\b")
_CP = re.compile(r"C[oó]digo\s+Postal:\s*([0-9]{5})", re.IGNORECASE)
_RAZON = re.compile(r"(?:Denominaci[oó]n\s*/\s*Raz[oó]n\s+Social|Raz[oó]n\s+Social):\s*(.+)", re.IGNORECASE)
_PARTS = {
    "nombres": re.compile(r"Nombre\s*\(s\):\s*(.+)", re.IGNORECASE),
    "primer": re.compile(r"Primer\s+Apellido:\s*(.+)", re.IGNORECASE),
    "segundo": re.compile(r"Segundo\s+Apellido:\s*(.+)", re.IGNORECASE),
}
# The next label on the same line ends a value ("Primer Apellido: PEREZ Segundo Apellido: LOPEZ").
_NEXT_LABEL = re.compile(r"\s+[A-ZÁÉÍÓÚ][a-záéíóúñ]+(?:\s+[A-Za-záéíóúñ()/]+){0,4}\s*:.*$")


class ConstanciaError(Exception):
    """The file is not a readable PDF; the message is for the shopper."""


def _plain(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) != "Mn").upper()


def _value(pattern: re.Pattern, text: str) -> str:
    match = pattern.search(text)
    if not match:
        return ""
    return _NEXT_LABEL.sub("", match.group(1)).strip()


def pdf_text(data: bytes) -> str:
    if len(data) > MAX_BYTES:
        raise ConstanciaError(_("El archivo es demasiado grande (máximo 2 MB)."))
    if not data.startswith(b"%PDF"):
        raise ConstanciaError(_("El archivo no es un PDF. Sube la constancia tal como la descargaste del SAT."))
    try:
        from pypdf import PdfReader

        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise ConstanciaError(_("El PDF está protegido con contraseña; escribe tus datos a mano."))
        return "\n".join((page.extract_text() or "") for page in reader.pages[:MAX_PAGES])
    except ConstanciaError:
        raise
    except Exception as exc:  # any parser failure on untrusted input is the shopper's "could not read"
        log.info("constancia ilegible: %s", exc)
        raise ConstanciaError(_("No pudimos leer el PDF; escribe tus datos a mano.")) from exc


def parse_constancia(text: str) -> dict:
    """Fields found in a Constancia's text: rfc, name, postal_code, tax_regime (any may be missing); when it lists
    several regímenes, ``regimenes`` (their codes, in order) instead of tax_regime."""
    found: dict = {}
    if m := _RFC.search(text):
        found["rfc"] = m.group(1)
    razon = _value(_RAZON, text)
    if razon:
        found["name"] = razon
    else:
        parts = [_value(p, text) for p in _PARTS.values()]
        if parts[0]:
            found["name"] = " ".join(p for p in parts if p)
    if m := _CP.search(text):
        found["postal_code"] = m.group(1)
    regimenes = constancia_regimenes(text)
    if len(regimenes) == 1:
        found["tax_regime"] = regimenes[0]
    elif regimenes:  # the shopper chooses which one this invoice is for (never silently the first)
        found["regimenes"] = regimenes
    return found


def constancia_regimenes(text: str) -> list[str]:
    """The régimen codes a Constancia lists, in its order (a person may have several: salaries and rentals…)."""
    plain = re.sub(r"\s+", " ", _plain(text))  # a long description may wrap onto the next line of the PDF
    start = plain.find("REGIMENES")
    section = plain[start:] if start >= 0 else plain
    # Longest descriptions first, and a match inside a longer one is not another régimen: "...Personas Morales
    # con Fines no Lucrativos" is not also "...Personas Morales".
    taken: list[tuple[int, int, str]] = []
    for r in sorted(REGIMENES_FISCALES.values(), key=lambda r: -len(r.description)):
        needle = _plain(r.description)
        pos = section.find(needle)
        while pos >= 0:
            end = pos + len(needle)
            if not any(pos < t_end and t_pos < end for t_pos, t_end, _ in taken):
                taken.append((pos, end, r.code))
            pos = section.find(needle, end)
    return list(dict.fromkeys(code for _, _, code in sorted(taken)))


def read_constancia(data: bytes) -> dict:
    fields = parse_constancia(pdf_text(data))
    if not fields:
        raise ConstanciaError(_("No encontramos tus datos en ese PDF; ¿es la Constancia de Situación Fiscal?"))
    return fields
