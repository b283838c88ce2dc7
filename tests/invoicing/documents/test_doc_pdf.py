"""The representación impresa: every element RULES.md §5 requires, read back from the PDF with poppler,
and the QR decoded from the rendered page; what makes it read like a commercial invoice (SAT's names next to
the keys, the amount in words, clean tax wording, one precision per price column, the QR and sellos on page 1
when the concepts fit, no page 1 left a third empty)."""

import re
import shutil
import subprocess
from decimal import Decimal
from pathlib import Path

import pytest
import zxingcpp
from django.core.files.base import ContentFile
from PIL import Image

from invoicing.cfdi.inputs import IVA_16, IVA_EXENTO, TicketLine, ieps_cuota, ieps_tasa
from invoicing.cfdi.parser import parse_cfdi
from invoicing.cfdi.qr import qr_url
from invoicing.cfdi.words import amount_in_words
from invoicing.pdf import (
    LEYENDA,
    SANDBOX_WATERMARK,
    data_only_url_fetcher,
    fecha,
    fixed,
    logo_data_uri,
    money,
    places_needed,
    qr_png,
    render_invoice_pdf,
)

pytestmark = pytest.mark.skipif(shutil.which("pdftoppm") is None, reason="poppler-utils is not installed")
DPI = 150


def _pdf_text(path: Path, page: int | None = None) -> str:
    args = ["pdftotext", "-enc", "UTF-8"]
    if page is not None:
        args += ["-f", str(page), "-l", str(page)]
    return subprocess.run([*args, str(path), "-"], check=True, capture_output=True, text=True).stdout


def _pages(path: Path) -> int:
    info = subprocess.run(["pdfinfo", str(path)], check=True, capture_output=True, text=True).stdout
    return int(re.search(r"^Pages:\s+(\d+)", info, re.M).group(1))


def _to_png(pdf_path: Path) -> list[Path]:
    prefix = pdf_path.with_suffix("")
    for old in pdf_path.parent.glob(f"{prefix.name}-*.png"):
        old.unlink()
    subprocess.run(["pdftoppm", "-r", str(DPI), "-png", str(pdf_path), str(prefix)], check=True)
    return sorted(pdf_path.parent.glob(f"{prefix.name}-*.png"))


def _squash(text: str) -> str:
    return "".join(text.split())


def _words(text: str) -> str:
    return " ".join(text.split())


def _write(artifacts_dir: Path, name: str, body: bytes) -> Path:
    path = artifacts_dir / f"{name}.pdf"
    path.write_bytes(body)
    return path


def _expected(invoice):
    parsed = parse_cfdi(bytes(invoice.stamped_xml))
    c, t = parsed.comprobante, parsed.timbre
    from invoicing.cfdi.cadena import tfd_cadena_original

    url = qr_url(uuid=t.uuid, rfc_emisor=c.emisor.rfc, rfc_receptor=c.receptor.rfc, total=c.total, sello=c.sello)
    return c, t, tfd_cadena_original(parsed.tfd_element), url


def _decode_qr(png: Path):
    results = zxingcpp.read_barcodes(Image.open(png), formats=zxingcpp.BarcodeFormat.QRCode)
    assert len(results) == 1, f"expected one QR on {png.name}, found {len(results)}"
    return results[0]


def _has_diagonal_watermark(png: Path) -> bool:
    """poppler does not extract diagonal text, so look for the watermark's red in the middle of the page."""
    image = Image.open(png).convert("RGB")
    w, h = image.size
    middle = image.crop((w // 4, h // 3, 3 * w // 4, 2 * h // 3)).resize((200, 200))
    reddish = sum(1 for r, g, b in middle.get_flattened_data() if r > g + 25 and r > b + 25)
    return reddish > 400


def _assert_required_elements(text: str, invoice):
    c, t, cadena, _url = _expected(invoice)
    squashed = _squash(text)
    assert t.uuid in text
    assert c.no_certificado in text  # NoCertificado (CSD del emisor)
    assert t.no_certificado_sat in text  # NoCertificadoSAT
    assert LEYENDA in " ".join(text.split())
    assert _squash(c.sello) in squashed  # sello digital del CFDI (wrapped over several lines)
    assert _squash(t.sello_sat) in squashed  # sello del SAT
    assert _squash(cadena) in squashed  # cadena original del complemento de certificación (TFD)
    assert fecha(c.fecha) in text and fecha(t.fecha_timbrado) in text  # issue and stamp times
    assert f"${money(c.total)}" in text and money(c.subtotal) in text
    for phrase in ("EMISOR", "RECEPTOR", c.emisor.rfc, c.receptor.rfc, "612 – Personas Físicas",
                   "G03 – Gastos en general", "04 – Tarjeta de crédito", "PUE – Pago en una sola exhibición",
                   f"C.P. {c.lugar_expedicion}", f"{c.serie}-{c.folio}"):
        assert " ".join(phrase.split()) in " ".join(text.split()), phrase


def _qr_count(png: Path) -> int:
    return len(zxingcpp.read_barcodes(Image.open(png), formats=zxingcpp.BarcodeFormat.QRCode))


def test_doc_one_line_pdf_shows_every_required_element_and_a_decodable_qr(branch, make_stamped_invoice,
                                                                          artifacts_dir, sat_keys):
    invoice = make_stamped_invoice(branch, lines=1, pac="sandbox")
    path = _write(artifacts_dir, "one_line_sandbox", render_invoice_pdf(invoice))
    assert _pages(path) == 1
    text = _pdf_text(path)
    _assert_required_elements(text, invoice)
    assert _squash(SANDBOX_WATERMARK) in _squash(text)
    # SAT's names next to the keys, the amount in words, the tax as people write it
    for phrase in ("H87 Pieza", "14111514 Blocs o cuadernos de papel", "CUARENTA Y CINCO PESOS 50/100 M.N.",
                   "IVA 16 %: 6.28", "Objeto de impuesto 02"):
        assert phrase in _words(text), phrase
    pngs = _to_png(path)
    assert len(pngs) == 1
    assert _has_diagonal_watermark(pngs[0])
    qr = _decode_qr(pngs[0])
    assert qr.text == _expected(invoice)[3]
    assert qr.ec_level in ("M", "Q", "H")
    # printed side ≥ 2.75 cm (the decoder's corner points are those of the symbol, quiet zone excluded)
    side_px = abs(qr.position.top_right.x - qr.position.top_left.x)
    assert side_px / DPI * 2.54 >= 2.75


MIXED_LINES = (
    TicketLine("Refresco de cola 600 ml", Decimal("1.8"), Decimal("31.50"), "50202306", "LTR", unidad="Litro",
               sku="R-600", taxes=(ieps_cuota("1.6451"), IVA_16)),
    TicketLine("Papas fritas 45 g", Decimal("3"), Decimal("17.32"), "50192100", "H87", unidad="pza",
               taxes=(ieps_tasa("0.08"), IVA_16)),
    TicketLine("Consulta de nutrición", Decimal("1"), Decimal("450.00"), "01010101", "E48", taxes=(IVA_EXENTO,)),
    TicketLine("Mouse óptico inalámbrico", Decimal("1"), Decimal("349.00"), "43211708", "H87", unidad="Pieza"),
    TicketLine("Cuaderno profesional", Decimal("3"), Decimal("76.725"), "14111514", "H87", unidad="Pieza"),
) * 2


def test_doc_one_page_invoice_reads_like_a_commercial_one(branch, make_stamped_invoice, artifacts_dir, sat_keys):
    """Ten lines with IEPS by rate and by cuota, an exempt service, a key the catalog lacks and prices with up
    to six decimals: one page, QR and sellos on it, and every new element in the text."""
    invoice = make_stamped_invoice(branch, lines=MIXED_LINES, pac="finkok")
    path = _write(artifacts_dir, "one_page_mixed_taxes", render_invoice_pdf(invoice))
    assert _pages(path) == 1
    text = _words(_pdf_text(path))
    _assert_required_elements(text, invoice)
    c = parse_cfdi(bytes(invoice.stamped_xml)).comprobante
    for phrase in ("LTR Litro", "H87 Pieza", "E48 Unidad de servicio", "01010101 No existe en el catálogo",
                   "50192100 Botanas", "IVA 16 %", "IEPS 8 %", "IEPS cuota 1.6451 por unidad", "IVA exento",
                   amount_in_words(c.total, "MXN")):
        assert phrase in text, phrase
    assert "43211708 ·" in text  # not in the loaded catalog: the key alone, then the No. identificación
    assert "pza" in text  # the merchant's own Unidad, when it says something the catalog name does not
    lowered = text.lower()
    for wrong in ("cuota cuota", "exento exento", "tasa"):
        assert wrong not in lowered, wrong
    # one precision for the whole unit-price column: the most precise line's (six here), never fewer than two
    places = places_needed(k.valor_unitario for k in c.conceptos)
    assert places == 6
    for k in c.conceptos:
        assert fixed(k.valor_unitario, places) in text
    assert "450.000000" in text and "300.860000" in text
    pngs = _to_png(path)
    assert len(pngs) == 1
    assert _decode_qr(pngs[0]).text == _expected(invoice)[3]


def test_doc_120_line_pdf_flows_over_pages_with_the_header_repeated(branch, make_stamped_invoice, artifacts_dir,
                                                                     sat_keys):
    invoice = make_stamped_invoice(branch, lines=120, pac="sandbox")
    path = _write(artifacts_dir, "120_lines_sandbox", render_invoice_pdf(invoice))
    pages = _pages(path)
    assert pages >= 3
    pages_with_lines = 0
    c, t, _cadena, url = _expected(invoice)
    for page in range(1, pages + 1):
        text = _pdf_text(path, page)
        assert _squash(SANDBOX_WATERMARK) in _squash(text), f"watermark missing on page {page}"
        assert f"Página {page} de {pages}" in text
        if "Objeto de impuesto" in text:
            pages_with_lines += 1
            assert "DESCRIPCIÓN" in text and "VALOR UNITARIO" in text, f"table header missing on page {page}"
            assert "H87 Pieza" in _words(text)
        # the sellos and the amount in words close the document, after the last concept
        assert (_squash(t.sello_sat) in _squash(text)) == (page == pages), page
        assert (amount_in_words(c.total) in _words(text)) == (page == pages), page
    assert pages_with_lines >= 3
    full = _pdf_text(path)
    for n in (1, 60, 120):
        assert f"#{n}" in full
    _assert_required_elements(full, invoice)
    pngs = _to_png(path)
    assert len(pngs) == pages
    assert all(_has_diagonal_watermark(png) for png in pngs)
    assert [_qr_count(png) for png in pngs] == [0] * (pages - 1) + [1]
    assert _decode_qr(pngs[-1]).text == url


PAGE_TOP_MM, PAGE_BOTTOM_MM = 10, 279.4 - 13  # the @page margins of pdf.css


def _ink_bottom_mm(png: Path, dpi: int) -> float:
    """Where the last ink above the footer is, in mm from the top of the sheet."""
    image = Image.open(png).convert("L")
    width, height = image.size
    pixels = image.load()
    for y in range(min(int(PAGE_BOTTOM_MM / 25.4 * dpi), height) - 1, -1, -1):
        if any(pixels[x, y] < 200 for x in range(0, width, 2)):
            return y / dpi * 25.4
    return 0.0


def test_doc_no_first_page_is_left_a_third_empty(branch, make_stamped_invoice, artifacts_dir):
    """When the document needs a second page the first one is still filled: the QR and sellos block moves
    whole to the next page only when it does not fit, and it is small. Checked where it is worst, at the first
    number of concepts that needs two pages (found by bisection), and a few concepts later."""
    dpi = 30

    def render(lines: int) -> Path:
        invoice = make_stamped_invoice(branch, lines=lines, pac="finkok")
        return _write(artifacts_dir, f"fill_{lines}_lines", render_invoice_pdf(invoice))

    one_page, two_pages = 1, 24
    assert _pages(render(two_pages)) > 1
    while two_pages - one_page > 1:
        middle = (one_page + two_pages) // 2
        if _pages(render(middle)) == 1:
            one_page = middle
        else:
            two_pages = middle
    assert one_page >= 10  # ten ordinary concepts fit with the QR and sellos on page 1
    for lines in (two_pages, two_pages + 3, two_pages + 8):
        path = render(lines) if lines != two_pages else artifacts_dir / f"fill_{lines}_lines.pdf"
        subprocess.run(["pdftoppm", "-r", str(dpi), "-f", "1", "-l", "1", "-singlefile", "-png", str(path),
                        str(path.with_suffix(""))], check=True)
        empty = (PAGE_BOTTOM_MM - _ink_bottom_mm(path.with_suffix(".png"), dpi)) / (PAGE_BOTTOM_MM - PAGE_TOP_MM)
        assert empty < 1 / 3, f"{lines} lines: {empty:.0%} of page 1 left empty"


def test_doc_pdf_of_a_real_pac_has_no_watermark(branch, make_stamped_invoice, artifacts_dir):
    invoice = make_stamped_invoice(branch, lines=3, pac="finkok")
    path = _write(artifacts_dir, "three_lines_finkok", render_invoice_pdf(invoice))
    text = _pdf_text(path)
    assert "SANDBOX" not in text
    assert not _has_diagonal_watermark(_to_png(path)[0])
    assert LEYENDA in " ".join(text.split())


def test_doc_pdf_uses_the_merchant_logo_from_storage(branch, make_stamped_invoice, media_root, artifacts_dir):
    logo = Image.new("RGB", (240, 80), (11, 122, 95))
    from io import BytesIO

    buffer = BytesIO()
    logo.save(buffer, format="PNG")
    merchant = branch.merchant
    merchant.logo.save("logo.png", ContentFile(buffer.getvalue()))
    merchant.brand_color = "#0B7A5F"
    merchant.save()
    invoice = make_stamped_invoice(branch, lines=2)
    assert logo_data_uri(merchant).startswith("data:image/png;base64,")
    path = _write(artifacts_dir, "with_logo", render_invoice_pdf(invoice))
    images = subprocess.run(["pdfimages", "-list", str(path)], check=True, capture_output=True, text=True).stdout
    assert len(images.strip().splitlines()) - 2 == 2  # the logo and the QR


def test_doc_logo_that_is_not_an_image_is_left_out(branch, media_root):
    merchant = branch.merchant
    merchant.logo.save("logo.png", ContentFile(b"<html>not an image</html>"))
    assert logo_data_uri(merchant) is None


@pytest.mark.parametrize("url", ["file:///etc/passwd", "http://127.0.0.1:9/logo.png", "https://example.com/x.css",
                                 "FILE:///etc/hostname", "ftp://example.com/a"])
def test_doc_url_fetcher_refuses_files_and_remote_urls(url):
    with pytest.raises(ValueError):
        data_only_url_fetcher().fetch(url)


def test_doc_url_fetcher_serves_data_uris():
    response = data_only_url_fetcher().fetch("data:text/plain;base64,aG9sYQ==")
    assert response.read() == b"hola"


def test_doc_qr_png_decodes_to_its_text():
    url = qr_url(uuid="AF124DC7-BD75-5EFF-8EDF-28C1E7D43B1D", rfc_emisor="EKU9003173C9",
                 rfc_receptor="ICV060329BY0", total=Decimal("1191.95"), sello="x" * 300 + "4n/Tw==")
    image = Image.open(__import__("io").BytesIO(qr_png(url))).convert("L").resize((400, 400), Image.NEAREST)
    result = zxingcpp.read_barcodes(image)[0]
    assert result.text == url
    assert result.ec_level == "M"
