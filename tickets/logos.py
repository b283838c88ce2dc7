"""Merchant logos: PNG or JPEG only, size-limited, decoded and re-encoded with Pillow, stored under a safe name.

The logo is shown on the shoppers' pages and in every PDF, and served from /media/: a file that is not really
an image (an HTML page, an SVG with a script, a polyglot) must never get there. Only the pixels survive the
re-encode (no metadata, no trailing bytes), and the stored name ends in .png or .jpg whatever the upload was
called.
"""

from __future__ import annotations

import io
import secrets
import warnings

from django import forms
from django.conf import settings
from django.core.files.base import ContentFile
from PIL import Image, ImageOps, UnidentifiedImageError

from infra.errors import InvalidInput

# Extension and MIME type of what we store, by Pillow's format name.
FORMATS = {"PNG": ("png", "image/png"), "JPEG": ("jpg", "image/jpeg")}
# Decoded size cap: a 1 MiB PNG of one colour can unpack to gigabytes.
MAX_PIXELS = 25_000_000
SIGNATURES = ((b"\x89PNG\r\n\x1a\n", "image/png"), (b"\xff\xd8\xff", "image/jpeg"))
# The end of a whole file. Checked by hand: WeasyPrint sets Pillow's LOAD_TRUNCATED_IMAGES for the whole
# process, and Pillow then fills a cut-off image with black instead of failing.
END_MARKERS = {"PNG": b"IEND\xaeB`\x82", "JPEG": b"\xff\xd9"}


def _refuse(message: str):
    raise InvalidInput(message, code="invalid_logo", details={"logo": [message]})


def human_size(size: int) -> str:
    if size >= 1024 * 1024:
        return f"{size / (1024 * 1024):.1f}".rstrip("0").rstrip(".") + " MiB"
    return f"{-(-size // 1024)} KiB"


def logo_prepare(upload) -> ContentFile:
    """The upload as a clean PNG or JPEG, named ``<random>.png|.jpg``; InvalidInput (Spanish) for anything else."""
    limit = settings.MERCHANT_LOGO_MAX_BYTES
    if upload.size is not None and upload.size > limit:
        _refuse(f"El logotipo pesa {human_size(upload.size)}; el máximo es {human_size(limit)}.")
    upload.seek(0)
    body = upload.read(limit + 1)
    if len(body) > limit:
        _refuse(f"El logotipo pesa más de {human_size(limit)}, el máximo permitido.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(body)) as image:
                if image.format not in FORMATS:
                    _refuse("El logotipo debe ser una imagen PNG o JPEG.")
                if END_MARKERS[image.format] not in body:
                    raise OSError("truncated image")
                if image.width * image.height > MAX_PIXELS:
                    _refuse(f"El logotipo mide {image.width}×{image.height} pixeles; usa uno más pequeño "
                            "(por ejemplo, 1000 pixeles de ancho).")
                image.load()
                return _reencode(ImageOps.exif_transpose(image), image.format)
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning):
        _refuse("El logotipo debe ser una imagen PNG o JPEG.")
    except (OSError, SyntaxError, ValueError):  # truncated or corrupt data
        _refuse("No se pudo leer la imagen del logotipo: el archivo está dañado o incompleto.")


def _reencode(image: Image.Image, fmt: str) -> ContentFile:
    out = io.BytesIO()
    if fmt == "PNG":
        keep_alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
        image.convert("RGBA" if keep_alpha else "RGB").save(out, format="PNG", optimize=True)
    else:
        image.convert("RGB").save(out, format="JPEG", quality=90, optimize=True)
    extension = FORMATS[fmt][0]
    return ContentFile(out.getvalue(), name=f"{secrets.token_hex(12)}.{extension}")


def logo_content_type(body: bytes) -> str | None:
    """The MIME type of a stored logo by its first bytes (PNG or JPEG), None for anything else."""
    for signature, mime in SIGNATURES:
        if body.startswith(signature):
            return mime
    return None


class LogoField(forms.FileField):
    """The merchant form's logo input: every new upload goes through ``logo_prepare``."""

    widget = forms.ClearableFileInput(attrs={"accept": "image/png,image/jpeg"})

    def to_python(self, data):
        upload = super().to_python(data)
        if upload is None:
            return None
        try:
            return logo_prepare(upload)
        except InvalidInput as exc:
            raise forms.ValidationError(exc.message, code="invalid_logo") from exc
