"""/media/: only merchant logos are public, and only as the PNG or JPEG they are.

Everything else under MEDIA_ROOT (stored invoice PDFs) is reached through the downloads that check who asks.
A logo is served with the type its bytes say (never guessed from the name: an old upload named logo.html was
served as text/html), ``nosniff`` and a sandboxing CSP, so even a file that slipped in cannot run as a page.
"""

from __future__ import annotations

import posixpath

from django.conf import settings
from django.core.files.storage import default_storage
from django.http import Http404, HttpResponse
from django.views.decorators.http import require_safe

from tickets.logos import logo_content_type

LOGO_DIR = "logos/"


@require_safe
def merchant_logo(request, name: str):
    path = posixpath.normpath(LOGO_DIR + name)
    if not path.startswith(LOGO_DIR) or "\\" in name or "\x00" in name:
        raise Http404("No existe.")
    limit = settings.MERCHANT_LOGO_MAX_BYTES
    try:
        with default_storage.open(path, "rb") as fh:
            body = fh.read(limit + 1)
    except (OSError, ValueError) as exc:  # ValueError: a name the storage refuses (e.g. outside MEDIA_ROOT)
        raise Http404("No existe.") from exc
    content_type = logo_content_type(body) if len(body) <= limit else None
    if content_type is None:
        raise Http404("No existe.")
    response = HttpResponse(body, content_type=content_type)
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["Cache-Control"] = "public, max-age=3600"
    return response
