"""One-time notices for the next page of the same merchant (POST/redirect/GET): "ticket added", "resent"…

Kept in the session per merchant, so a notice is shown once, on that merchant's next page, and never on
another merchant's page or the back office.
"""

from __future__ import annotations

SESSION_KEY = "portal_flash"


def flash(request, merchant_id: int, text: str) -> None:
    notices = dict(request.session.get(SESSION_KEY, {}))
    notices[str(merchant_id)] = [*notices.get(str(merchant_id), []), text][-5:]
    request.session[SESSION_KEY] = notices


def flashed(request, merchant_id: int) -> list[str]:
    """The notices waiting for this merchant's page; taken, so a reload does not show them again."""
    notices = request.session.get(SESSION_KEY)
    if not notices or str(merchant_id) not in notices:
        return []
    notices = dict(notices)
    texts = notices.pop(str(merchant_id))
    request.session[SESSION_KEY] = notices
    return texts
