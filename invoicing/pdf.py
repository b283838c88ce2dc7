"""Representación impresa (PDF) of a stamped CFDI, with everything RULES.md §5 asks for.

The PDF is drawn by WeasyPrint from ``templates/invoicing/pdf.html``. Everything it shows comes from the
stamped XML (read with the CFDI engine's parser), never from the database snapshot, so the paper always
says what the legal document says. Branding (logo, colour) comes from the merchant.

Safety: WeasyPrint gets a URL fetcher that only accepts ``data:`` URIs; the logo is read through Django's
storage and inlined, the QR is generated here. No file:// or network access while rendering.
Speed: a float/table layout (no flexbox), one font family in two weights, a QR with a fixed mask pattern.
"""

from __future__ import annotations

import base64
import logging
import struct
import zlib
from dataclasses import dataclass
from decimal import Decimal
from functools import cache

import qrcode
from django.template.loader import get_template, render_to_string
from django.utils import timezone

from invoicing.cfdi import catalogs as cat
from invoicing.cfdi.cadena import tfd_cadena_original
from invoicing.cfdi.cancellation import MOTIVES
from invoicing.cfdi.parser import ParsedCfdi, parse_cfdi
from invoicing.cfdi.qr import qr_url
from invoicing.cfdi.words import amount_in_words
from invoicing.models import Cancellation, Invoice
from tickets.catalogs import ProductKey, UnitKey

LEYENDA = "Este documento es una representación impresa de un CFDI"
SANDBOX_WATERMARK = "SANDBOX – sin validez fiscal"
MAX_LOGO_BYTES = 2 * 1024 * 1024
QR_BORDER = 4  # quiet zone in modules (ISO/IEC 18004)
DEFAULT_COLOR = "#0B5FFF"

# WeasyPrint logs every rendering step at INFO and fontTools every subsetting step (when HarfBuzz-subset is
# missing): thousands of lines a minute from a worker, and measurable time. Warnings still get through.
for _name in ("weasyprint.progress", "fontTools"):
    logging.getLogger(_name).setLevel(logging.WARNING)

_TITLES = {"I": "Factura", "E": "Nota de crédito", "T": "Traslado", "P": "Recibo de pago", "N": "Nómina"}


@cache
def _fetcher_class():
    # WeasyPrint is imported lazily: it costs ~0.7 s, and the web process imports this module via the admin.
    from weasyprint.urls import URLFetcher

    class DataOnlyURLFetcher(URLFetcher):
        """Refuses every URL except ``data:``: no file://, no http(s), no relative paths."""

        def fetch(self, url, headers=None):
            if not url.lower().startswith("data:"):
                raise ValueError(f"Recurso externo no permitido en el PDF: {url[:80]}")
            return super().fetch(url, headers)

    return DataOnlyURLFetcher


def data_only_url_fetcher():
    """WeasyPrint URL fetcher that only serves ``data:`` URIs (what the template inlines)."""
    return _fetcher_class()(allowed_protocols=("data",))


# ---------------------------------------------------------------- QR


def qr_matrix(data: str) -> list[list[bool]]:
    """QR modules for ``data``: error correction M, fixed mask pattern (skips the 8-mask search: ~3x faster)."""
    qr = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=QR_BORDER, mask_pattern=0)
    qr.add_data(data)
    qr.make(fit=True)
    return qr.get_matrix()


def _png_gray(matrix: list[list[bool]]) -> bytes:
    """An 8-bit grayscale PNG, one pixel per module (written by hand: cheaper than going through Pillow).
    8-bit rather than 1-bit: WeasyPrint converts a 1-bit image to RGB and re-encodes it on every render."""
    rows = b"".join(b"\x00" + bytes(0 if dark else 255 for dark in row) for row in matrix)  # filter: none
    size = len(matrix)

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", size, size, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(
        b"IEND", b""
    )


def qr_png(data: str) -> bytes:
    return _png_gray(qr_matrix(data))


def _data_uri(mime: str, body: bytes) -> str:
    return f"data:{mime};base64,{base64.b64encode(body).decode('ascii')}"


# ---------------------------------------------------------------- logo

_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)


def _sniff_image(body: bytes) -> str | None:
    for signature, mime in _SIGNATURES:
        if body.startswith(signature):
            return mime
    if body[:4] == b"RIFF" and body[8:12] == b"WEBP":
        return "image/webp"
    head = body[:512].lstrip().lower()
    if head.startswith(b"<svg") or (head.startswith(b"<?xml") and b"<svg" in head):
        return "image/svg+xml"
    return None


def logo_data_uri(merchant) -> str | None:
    """The merchant's logo read through Django's storage (any backend) and inlined; None if unusable."""
    logo = getattr(merchant, "logo", None)
    if not logo:
        return None
    try:
        with logo.storage.open(logo.name, "rb") as fh:
            body = fh.read(MAX_LOGO_BYTES + 1)
    except OSError:
        return None
    if len(body) > MAX_LOGO_BYTES:
        return None
    mime = _sniff_image(body)
    return _data_uri(mime, body) if mime else None


# ---------------------------------------------------------------- formatting


def money(value: Decimal | None) -> str:
    """1,234.56 — keeps extra decimals the XML carries (concept values may have up to six)."""
    if value is None:
        return ""
    exponent = value.as_tuple().exponent
    places = max(2, -exponent) if isinstance(exponent, int) and exponent < 0 else 2
    return f"{value:,.{places}f}"


def places_needed(values, *, low: int = 2, high: int = 6) -> int:
    """Decimals that show every value exactly (trailing zeros aside), between ``low`` and ``high``: a column
    printed with one precision, the one its most precise value was sold at (76.725000 next to 17.320000)."""
    needed = low
    for value in values:
        if value is None:
            continue
        exponent = value.normalize().as_tuple().exponent
        if isinstance(exponent, int) and -exponent > needed:
            needed = min(-exponent, high)
    return needed


def fixed(value: Decimal | None, places: int) -> str:
    """1,234.500000 — ``value`` with exactly ``places`` decimals (never rounds: ``places`` fits the value)."""
    if value is None:
        return ""
    return f"{value:,.{places}f}"


def quantity(value: Decimal) -> str:
    return format(value.normalize(), "f")


def tax_label(impuesto: str, factor: str, value: Decimal | None) -> str:
    """How a tax reads on paper: "IVA 16 %", "IEPS 8 %", "IEPS cuota 1.6451 por unidad", "IVA exento".
    The space before % is a no-break space: a narrow column never leaves the sign alone on a line."""
    name = cat.IMPUESTOS.get(impuesto, impuesto)
    if factor == "Exento" or value is None:
        return f"{name} exento"
    if factor == "Cuota":
        return f"{name} cuota {quantity(value)} por unidad"
    return f"{name} {quantity(value * 100)}\u00a0%"


def breakable(text: str, every: int = 6) -> str:
    """A zero-width space every few characters, so a sello fills its lines: WeasyPrint breaks a long word only
    where Unicode allows (after "/" in base64) and otherwise leaves ragged lines a fifth empty. Pango draws
    no glyph for it, so the PDF's text (and a copy of it) is the sello exactly."""
    return "\u200b".join(text[i : i + every] for i in range(0, len(text), every))


def fecha(value: str) -> str:
    """2026-11-21T12:30:05 → 21/11/2026 12:30:05 (the XML carries local time without a zone)."""
    if len(value) >= 19 and value[4] == "-" and value[10] == "T":
        return f"{value[8:10]}/{value[5:7]}/{value[0:4]} {value[11:19]}"
    return value


def _with_description(code: str | None, table: dict) -> str:
    if not code:
        return ""
    entry = table.get(code)
    description = getattr(entry, "description", entry)
    return f"{code} – {description}" if description else code


def _contrast(color: str) -> str:
    r, g, b = (int(color[i : i + 2], 16) for i in (1, 3, 5))
    return "#111111" if (0.299 * r + 0.587 * g + 0.114 * b) > 160 else "#ffffff"


def _luminance(r: int, g: int, b: int) -> float:
    def channel(c: int) -> float:
        c = c / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)


def _ink(color: str) -> str:
    """The brand colour for text on white: darkened until it reads (WCAG contrast ≥ 4.5), so a yellow brand
    still gets legible titles and captions."""
    r, g, b = (int(color[i : i + 2], 16) for i in (1, 3, 5))
    for step in range(11):
        k = 1 - step / 10
        rgb = (round(r * k), round(g * k), round(b * k))
        if 1.05 / (_luminance(*rgb) + 0.05) >= 4.5:
            break
    return "#{:02x}{:02x}{:02x}".format(*rgb)


def _tint(color: str, amount: float = 0.9) -> str:
    """Mix the colour with white: a pale background for boxes."""
    r, g, b = (int(color[i : i + 2], 16) for i in (1, 3, 5))
    return "#{:02x}{:02x}{:02x}".format(*(round(c + (255 - c) * amount) for c in (r, g, b)))


# ---------------------------------------------------------------- SAT key names


def sat_key_names(product_keys, unit_keys) -> dict[str, str]:
    """Names of c_ClaveProdServ and c_ClaveUnidad keys as loaded by ``load_sat_catalogs``, in one query for
    the whole document. A key the tables lack (or tables never loaded) is simply absent: the PDF prints it
    alone. Product keys have 8 digits and unit keys at most 3 characters, so one dict holds both."""
    products, units = set(filter(None, product_keys)), set(filter(None, unit_keys))
    if not products and not units:
        return {}
    query = ProductKey.objects.filter(code__in=products).values_list("code", "description").union(
        UnitKey.objects.filter(code__in=units).values_list("code", "name"), all=True)
    return dict(query)


# ---------------------------------------------------------------- context


@dataclass(frozen=True)
class Branding:
    name: str
    color: str = DEFAULT_COLOR
    logo_uri: str | None = None


def _concept_taxes(k) -> list[str]:
    out = []
    for t in k.traslados:
        label = tax_label(t.impuesto, t.tipo_factor, t.tasa_o_cuota)
        out.append(label if t.importe is None else f"{label}: {money(t.importe)}")
    for t in k.retenciones:
        out.append(f"Ret. {tax_label(t.impuesto, t.tipo_factor, t.tasa_o_cuota)}: {money(t.importe)}")
    return out


def _lines(conceptos, names: dict[str, str]) -> tuple[list[dict], bool]:
    price_places = places_needed(k.valor_unitario for k in conceptos)
    amount_places = places_needed(k.importe for k in conceptos)
    discount_places = places_needed(k.descuento for k in conceptos)
    lines = []
    for k in conceptos:
        unit_name = names.get(k.clave_unidad, "")
        # The merchant's own Unidad text is printed too when it says something the catalog name does not.
        own_unit = k.unidad or ""
        lines.append({
            "clave": k.clave_prod_serv,
            "clave_nombre": names.get(k.clave_prod_serv, ""),
            "no_identificacion": k.no_identificacion or "",
            "cantidad": quantity(k.cantidad),
            "clave_unidad": k.clave_unidad,
            "unidad_nombre": unit_name,
            "unidad": own_unit if own_unit.casefold() != unit_name.casefold() else "",
            "descripcion": k.descripcion,
            "objeto_imp": k.objeto_imp,
            "valor_unitario": fixed(k.valor_unitario, price_places),
            "importe": fixed(k.importe, amount_places),
            "descuento": fixed(k.descuento, discount_places) if k.descuento else "",
            "impuestos": _concept_taxes(k),
        })
    return lines, any(k.descuento for k in conceptos)


def _tax_rows(impuestos) -> list[dict]:
    rows = []
    if impuestos is None:
        return rows
    for tr in impuestos.traslados:
        rows.append({"label": tax_label(tr.impuesto, tr.tipo_factor, tr.tasa_o_cuota), "base": money(tr.base),
                     "importe": money(tr.importe) if tr.importe is not None else "—"})
    for rt in impuestos.retenciones:
        rows.append({"label": f"{cat.IMPUESTOS.get(rt.impuesto, rt.impuesto)} retenido", "base": "",
                     "importe": money(rt.importe)})
    return rows


def importe_con_letra(total: Decimal, moneda: str) -> str:
    """The total in words in its currency; nothing for XXX (a document without amounts)."""
    if moneda == "XXX":
        return ""
    return amount_in_words(total, moneda, cat.currency_places(moneda))


def document_context(parsed: ParsedCfdi, *, branding: Branding, sandbox: bool,
                     key_names: dict[str, str] | None = None) -> dict:
    """What the template prints. ``key_names`` (SAT key → name) defaults to a look-up in the loaded catalogs."""
    c = parsed.comprobante
    t = parsed.timbre
    if t is None:
        raise ValueError("El CFDI no está timbrado (no tiene TimbreFiscalDigital).")
    tfd_el = parsed.tfd_element
    verification_url = qr_url(
        uuid=t.uuid, rfc_emisor=c.emisor.rfc, rfc_receptor=c.receptor.rfc, total=c.total, sello=c.sello
    )
    if key_names is None:
        key_names = sat_key_names((k.clave_prod_serv for k in c.conceptos), (k.clave_unidad for k in c.conceptos))
    lines, has_discount = _lines(c.conceptos, key_names)
    info = c.informacion_global
    color = safe_color(branding.color)
    return {
        "c": c,
        "t": t,
        "title": "Factura global" if info is not None else _TITLES.get(c.tipo_de_comprobante, "CFDI"),
        "serie_folio": "-".join(x for x in (c.serie, c.folio) if x),
        "tipo": _with_description(c.tipo_de_comprobante, cat.TIPOS_COMPROBANTE),
        "fecha_emision": fecha(c.fecha),
        "fecha_timbrado": fecha(t.fecha_timbrado),
        "emisor_regimen": _with_description(c.emisor.regimen_fiscal, cat.REGIMENES_FISCALES),
        "receptor_regimen": _with_description(c.receptor.regimen_fiscal, cat.REGIMENES_FISCALES),
        "uso_cfdi": _with_description(c.receptor.uso_cfdi, cat.USOS_CFDI),
        "forma_pago": _with_description(c.forma_pago, cat.FORMAS_PAGO),
        "metodo_pago": _with_description(c.metodo_pago, cat.METODOS_PAGO),
        "exportacion": _with_description(c.exportacion, cat.EXPORTACIONES),
        "moneda": c.moneda + (f" (tipo de cambio {quantity(c.tipo_cambio)})" if c.tipo_cambio is not None
                              and c.moneda not in ("MXN", "XXX") else ""),
        "global_info": (
            {
                "periodicidad": _with_description(info.periodicidad, cat.PERIODICIDADES),
                "meses": _with_description(info.meses, cat.MESES),
                "anio": info.anio,
            }
            if info is not None
            else None
        ),
        "relacionados": [
            {"tipo": _with_description(r.tipo_relacion, cat.TIPOS_RELACION), "uuids": r.uuids}
            for r in c.relacionados
        ],
        "lines": lines,
        "has_discount": has_discount,
        "tax_rows": _tax_rows(c.impuestos),
        "subtotal": money(c.subtotal),
        "descuento": money(c.descuento) if c.descuento else "",
        "total_traslados": money(c.impuestos.total_traslados) if c.impuestos and c.impuestos.total_traslados
        is not None else "",
        "total_retenidos": money(c.impuestos.total_retenidos) if c.impuestos and c.impuestos.total_retenidos
        is not None else "",
        "total": money(c.total),
        "importe_letra": importe_con_letra(c.total, c.moneda),
        "verification_url": verification_url,
        "qr_uri": _data_uri("image/png", qr_png(verification_url)),
        "tfd_cadena": breakable(tfd_cadena_original(tfd_el)) if tfd_el is not None else "",
        "sello": breakable(c.sello),
        "sello_sat": breakable(t.sello_sat),
        "leyenda": LEYENDA,
        "sandbox": sandbox,
        "watermark": SANDBOX_WATERMARK,
        "brand_name": branding.name,
        "brand_color": color,
        "brand_text": _contrast(color),
        "brand_tint": _tint(color),
        "brand_ink": _ink(color),
        "logo_uri": branding.logo_uri,
    }


def safe_color(color: str | None) -> str:
    """The merchant's #RRGGBB, or our default when it is anything else (it ends up inside CSS)."""
    ok = color and len(color) == 7 and color[0] == "#" and all(ch in "0123456789abcdefABCDEF" for ch in color[1:])
    return color if ok else DEFAULT_COLOR


# ---------------------------------------------------------------- rendering


@cache
def _font_config():
    # One per process: building it costs ~6 ms a render, and we declare no @font-face that could change it.
    from weasyprint.text.fonts import FontConfiguration

    return FontConfiguration()


@cache
def _stylesheet():
    # Parsed once per process: the stylesheet does not depend on the invoice (colours come in the HTML).
    from weasyprint import CSS

    template = get_template("invoicing/pdf.css")
    return CSS(string=template.template.source, url_fetcher=data_only_url_fetcher(), font_config=_font_config())


def render_cfdi_pdf(xml: bytes, *, branding: Branding, sandbox: bool = False, cancellation: dict | None = None,
                    key_names: dict[str, str] | None = None) -> bytes:
    """PDF bytes for any stamped CFDI 4.0 (our invoices, or samples in tests). ``cancellation`` (date, motive,
    motive_name, replacement_uuid) marks a cancelled CFDI on every page; ``key_names`` as document_context."""
    context = document_context(parse_cfdi(xml), branding=branding, sandbox=sandbox, key_names=key_names)
    context["cancellation"] = cancellation
    html = render_to_string("invoicing/pdf.html", context)
    from weasyprint import HTML

    return HTML(string=html, url_fetcher=data_only_url_fetcher()).write_pdf(
        stylesheets=[_stylesheet()], font_config=_font_config()
    )


def invoice_branding(merchant) -> Branding:
    return Branding(name=merchant.legal_name, color=merchant.brand_color or DEFAULT_COLOR,
                    logo_uri=logo_data_uri(merchant))


def render_invoice_pdf(invoice) -> bytes:
    """The PDF of a stamped ``Invoice``; watermarked when the sandbox PAC stamped it."""
    if not invoice.stamped_xml:
        raise ValueError(f"La factura {invoice.pk} no está timbrada.")
    return render_cfdi_pdf(bytes(invoice.stamped_xml), branding=invoice_branding(invoice.merchant),
                           sandbox=invoice.pac == "sandbox", cancellation=cancellation_context(invoice))


def cancellation_context(invoice) -> dict | None:
    """What the PDF of a cancelled invoice says: when, why, and what replaced it."""
    if invoice.status != Invoice.Status.CANCELLED:
        return None
    done = (Cancellation.objects.filter(invoice=invoice, status=Cancellation.Status.CANCELLED)
            .select_related("replacement").order_by("-pk").first())
    when = (done.finished_at if done else None) or invoice.updated_at
    replacement = done.replacement if done else None
    return {
        "date": timezone.localtime(when, invoice.merchant.tzinfo).strftime("%d/%m/%Y %H:%M"),
        "motive": done.motive if done else "",
        "motive_name": MOTIVES.get(done.motive, "") if done else "",
        "replacement_uuid": str(replacement.uuid).upper() if replacement is not None and replacement.uuid else "",
    }
