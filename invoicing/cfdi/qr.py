"""The verification URL printed as QR on the PDF (RULES.md §5)."""

from __future__ import annotations

from decimal import Decimal

VERIFICA_URL = "https://verificacfdi.facturaelectronica.sat.gob.mx/default.aspx"


def format_total(total: Decimal) -> str:
    """Six decimals with non-significant zeros trimmed, keeping one decimal: 980.18, 1.0, 1234.5678."""
    text = format(Decimal(total).quantize(Decimal("0.000001")), "f").rstrip("0")
    return text + "0" if text.endswith(".") else text


def qr_url(*, uuid: str, rfc_emisor: str, rfc_receptor: str, total: Decimal, sello: str) -> str:
    """``&`` inside an RFC is written as ``&amp;`` (phpcfdi, checked against SAT's service)."""
    re_, rr = rfc_emisor.replace("&", "&amp;"), rfc_receptor.replace("&", "&amp;")
    return f"{VERIFICA_URL}?id={uuid}&re={re_}&rr={rr}&tt={format_total(total)}&fe={sello[-8:]}"
