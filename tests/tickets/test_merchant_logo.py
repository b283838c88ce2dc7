"""Merchant logos (issue 14, finding 8): PNG or JPEG only, size-limited, re-encoded, stored as .png/.jpg, and
/media/ never serves an upload as a page."""

import io

import pytest
from django.contrib.auth.models import Permission
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from PIL import Image, ImageFile

from infra.errors import InvalidInput
from tickets.logos import logo_prepare

HTML = b"<!doctype html><html><body><script>alert(document.cookie)</script></body></html>"


def image_bytes(fmt="PNG", size=(120, 40), mode="RGB", **save):
    out = io.BytesIO()
    Image.new(mode, size, (11, 122, 95) if mode == "RGB" else None).save(out, format=fmt, **save)
    return out.getvalue()


@pytest.fixture
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return tmp_path / "media"


@pytest.fixture
def staff(other_merchant, make_staff):
    client = Client()
    client.force_login(make_staff(other_merchant, "ana", permissions=Permission.objects.all()))
    return client


def change_form(merchant, **extra):
    data = {"slug": merchant.slug, "legal_name": merchant.legal_name, "rfc": merchant.rfc,
            "tax_regime": merchant.tax_regime, "time_zone": merchant.time_zone, "brand_color": "#0B5FFF",
            "self_invoice_window": "month_end", "self_invoice_days": 30, "global_periodicity": "04",
            "self_correction_window": "month", "self_correction_days": 30,
            "global_grouping": "branch", "late_request_policy": "credit_note", "pac": "sandbox",
            "pac_environment": "test", "branches-TOTAL_FORMS": 0, "branches-INITIAL_FORMS": 0}
    data.update(extra)
    return data


def test_a_png_is_decoded_and_re_encoded_under_a_random_png_name():
    original = image_bytes("PNG") + b"<html>trailing bytes of a polyglot</html>"
    cleaned = logo_prepare(SimpleUploadedFile("Mi Logo.PNG", original))
    body = cleaned.read()
    assert cleaned.name.endswith(".png") and "Logo" not in cleaned.name and len(cleaned.name) == 28
    assert body.startswith(b"\x89PNG") and b"<html>" not in body
    with Image.open(io.BytesIO(body)) as image:
        assert image.format == "PNG" and image.size == (120, 40)


def test_a_jpeg_loses_its_metadata_and_keeps_its_orientation():
    exif = Image.Exif()
    exif[0x010E] = "<script>descripcion</script>"  # ImageDescription
    exif[0x0112] = 6  # rotated 90°: the cleaned copy is turned upright
    cleaned = logo_prepare(SimpleUploadedFile("foto.jpeg", image_bytes("JPEG", exif=exif.tobytes())))
    body = cleaned.read()
    assert cleaned.name.endswith(".jpg") and b"descripcion" not in body
    with Image.open(io.BytesIO(body)) as image:
        assert image.format == "JPEG" and image.size == (40, 120) and not image.getexif()


def test_a_png_with_transparency_keeps_it():
    cleaned = logo_prepare(SimpleUploadedFile("a.png", image_bytes("PNG", mode="RGBA")))
    with Image.open(io.BytesIO(cleaned.read())) as image:
        assert image.mode == "RGBA"


@pytest.mark.parametrize(("name", "body", "message"), [
    ("logo.png", HTML, "PNG o JPEG"),
    ("logo.html", HTML, "PNG o JPEG"),
    ("logo.svg", b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>', "PNG o JPEG"),
    ("logo.gif", image_bytes("GIF"), "PNG o JPEG"),
    ("logo.webp", image_bytes("WEBP"), "PNG o JPEG"),
    ("logo.png", image_bytes("PNG")[:60], "dañado"),
    ("bomba.png", image_bytes("PNG", size=(6000, 6000), mode="1"), "6000×6000 pixeles"),
])
def test_anything_but_a_sound_png_or_jpeg_is_refused_in_spanish(name, body, message):
    with pytest.raises(InvalidInput) as err:
        logo_prepare(SimpleUploadedFile(name, body))
    assert err.value.code == "invalid_logo" and message in err.value.message
    assert err.value.details == {"logo": [err.value.message]}


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_a_cut_off_image_is_refused_even_where_pillow_would_fill_it_in(fmt, monkeypatch):
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)  # what importing WeasyPrint does
    whole = image_bytes(fmt, size=(400, 300))
    with pytest.raises(InvalidInput) as err:
        logo_prepare(SimpleUploadedFile("logo", whole[: len(whole) * 2 // 3]))
    assert "dañado o incompleto" in err.value.message


def test_a_logo_over_the_size_limit_is_refused(settings):
    settings.MERCHANT_LOGO_MAX_BYTES = 1024
    with pytest.raises(InvalidInput) as err:
        logo_prepare(SimpleUploadedFile("grande.png", image_bytes("PNG") + b"\0" * 2048))
    assert err.value.message.startswith("El logotipo pesa 3 KiB; el máximo es 1 KiB")


def test_the_admin_refuses_an_html_logo_and_stores_nothing(staff, other_merchant, media_root):
    url = f"/admin/tickets/merchant/{other_merchant.pk}/change/"
    response = staff.post(url, change_form(other_merchant, logo=SimpleUploadedFile("logo.png", HTML,
                                                                                   content_type="image/png")))
    assert response.status_code == 200
    assert "El logotipo debe ser una imagen PNG o JPEG." in response.content.decode()
    other_merchant.refresh_from_db()
    assert not other_merchant.logo and not (media_root / "logos").exists()


def test_the_admin_stores_a_clean_copy_that_media_serves_as_an_image(staff, other_merchant, media_root):
    url = f"/admin/tickets/merchant/{other_merchant.pk}/change/"
    response = staff.post(url, change_form(other_merchant, logo=SimpleUploadedFile("logo.html", image_bytes())))
    assert response.status_code == 302
    other_merchant.refresh_from_db()
    assert other_merchant.logo.name.startswith("logos/") and other_merchant.logo.name.endswith(".png")
    served = Client().get(other_merchant.logo.url)
    assert served.status_code == 200 and served["Content-Type"] == "image/png"
    assert served["X-Content-Type-Options"] == "nosniff" and "sandbox" in served["Content-Security-Policy"]
    assert served.content == other_merchant.logo.read()


def test_media_never_serves_an_old_html_upload_as_a_page(merchant, media_root):
    """A logo stored before the check (any name, any bytes) gets a 404, not text/html."""
    merchant.logo.save("logo.html", ContentFile(HTML))
    merchant.logo.save("logo.png", ContentFile(HTML))
    for url in ("/media/logos/logo.html", merchant.logo.url):
        response = Client().get(url)
        assert response.status_code == 404 and b"<script>" not in response.content


def test_media_serves_logos_only(merchant, media_root):
    (media_root / "invoices").mkdir(parents=True)
    (media_root / "invoices" / "EKU9003173C9_F1_X.pdf").write_bytes(b"%PDF-1.7 secret")
    (media_root / "logos").mkdir()
    (media_root / "logos" / "ok.png").write_bytes(image_bytes())
    client = Client()
    assert client.get("/media/logos/ok.png").status_code == 200
    for url in ("/media/invoices/EKU9003173C9_F1_X.pdf", "/media/logos/../invoices/EKU9003173C9_F1_X.pdf",
                "/media/logos/..%2finvoices%2fEKU9003173C9_F1_X.pdf", "/media/logos/missing.png"):
        assert client.get(url).status_code == 404, url
    assert client.post("/media/logos/ok.png").status_code == 405
