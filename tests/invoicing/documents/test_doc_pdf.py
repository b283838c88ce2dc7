"""The representación impresa: every element RULES.md §5 requires, read back from the PDF with poppler,
and the QR decoded from the rendered page."""

import re
import shutil
import subprocess
from decimal import Decimal
from pathlib import Path

import pytest
import zxingcpp
from django.core.files.base import ContentFile
from PIL import Image

from invoicing.cfdi.parser import parse_cfdi
from invoicing.cfdi.qr import qr_url
from invoicing.pdf import (
    LEYENDA,
    SANDBOX_WATERMARK,
    data_only_url_fetcher,
    fecha,
    logo_data_uri,
    money,
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


def test_doc_one_line_pdf_shows_every_required_element_and_a_decodable_qr(branch, make_stamped_invoice,
                                                                          artifacts_dir):
    invoice = make_stamped_invoice(branch, lines=1, pac="sandbox")
    path = _write(artifacts_dir, "one_line_sandbox", render_invoice_pdf(invoice))
    assert _pages(path) == 1
    text = _pdf_text(path)
    _assert_required_elements(text, invoice)
    assert _squash(SANDBOX_WATERMARK) in _squash(text)
    pngs = _to_png(path)
    assert len(pngs) == 1
    assert _has_diagonal_watermark(pngs[0])
    qr = _decode_qr(pngs[0])
    assert qr.text == _expected(invoice)[3]
    assert qr.ec_level in ("M", "Q", "H")
    # printed side ≥ 2.75 cm (the decoder's corner points are those of the symbol, quiet zone excluded)
    side_px = abs(qr.position.top_right.x - qr.position.top_left.x)
    assert side_px / DPI * 2.54 >= 2.75


def test_doc_120_line_pdf_flows_over_pages_with_the_header_repeated(branch, make_stamped_invoice, artifacts_dir):
    invoice = make_stamped_invoice(branch, lines=120, pac="sandbox")
    path = _write(artifacts_dir, "120_lines_sandbox", render_invoice_pdf(invoice))
    pages = _pages(path)
    assert pages >= 3
    pages_with_lines = 0
    for page in range(1, pages + 1):
        text = _pdf_text(path, page)
        assert _squash(SANDBOX_WATERMARK) in _squash(text), f"watermark missing on page {page}"
        assert f"Página {page} de {pages}" in text
        if "Objeto de impuesto" in text:
            pages_with_lines += 1
            assert "DESCRIPCIÓN" in text and "VALOR UNITARIO" in text, f"table header missing on page {page}"
    assert pages_with_lines >= 3
    full = _pdf_text(path)
    for n in (1, 60, 120):
        assert f"#{n}" in full
    _assert_required_elements(full, invoice)
    pngs = _to_png(path)
    assert len(pngs) == pages
    assert all(_has_diagonal_watermark(png) for png in pngs)
    assert _decode_qr(pngs[-1]).text == _expected(invoice)[3]


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
