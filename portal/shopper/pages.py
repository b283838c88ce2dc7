"""What every shopper's page starts from: the merchant of the URL, its invoice by public code, the branded render.

Apart from portal/views.py so that the page modules of portal/shopper/ use them without importing the views.
"""

from __future__ import annotations

from django.shortcuts import get_object_or_404, render
from django.utils.translation import gettext_lazy

from infra.logcontext import bind
from invoicing.models import Invoice
from portal.shopper.flash import flashed
from tickets.models import Merchant

RATE_LIMITED = gettext_lazy(
    "Hiciste demasiados intentos en poco tiempo. Espera unos minutos y vuelve a intentarlo; "
    "si tu ticket tiene código QR, escanéalo para entrar directo."
)

def _merchant(slug: str) -> Merchant:
    merchant = get_object_or_404(Merchant, slug=slug, is_active=True)
    bind(merchant_id=merchant.pk)  # every log line of the page names the merchant
    return merchant


def _invoice(merchant: Merchant, code: str) -> Invoice:
    return get_object_or_404(Invoice, merchant=merchant, public_code=code, kind=Invoice.Kind.INGRESO)


def brand_ink(color: str) -> str:
    """Black or white text on the merchant's colour, whichever contrasts more (WCAG relative luminance)."""
    try:
        channels = [int(color[i:i + 2], 16) / 255 for i in (1, 3, 5)]
    except (ValueError, IndexError):
        return "#fff"
    lin = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    luminance = 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]
    return "#000" if (luminance + 0.05) / 0.05 > 1.05 / (luminance + 0.05) else "#fff"


def _render(request, template: str, merchant: Merchant, context: dict | None = None, status: int = 200):
    # The notices waiting for this merchant's next page (portal/shopper/flash.py) are shown here, once.
    base = {"merchant": merchant, "brand_ink": brand_ink(merchant.brand_color), "flash": flashed(request, merchant.pk)}
    return render(request, template, {**base, **(context or {})}, status=status)
