"""Template filters for fiscal amounts shown to shoppers."""

from decimal import Decimal

from django import template

from tickets.zones import zone_name

register = template.Library()


@register.filter
def tipo_cambio(value) -> str:
    """An exchange rate as written in the CFDI, without trailing zeros: 17.250000 → 17.25."""
    if value is None or value == "":
        return ""
    return format(Decimal(value).normalize(), "f")


@register.filter
def fecha_venta(ticket) -> str:
    """The sale's date as its receipt prints it: in the branch's local zone (its postal code's)."""
    import zoneinfo

    from django.utils import timezone

    zone = zone_name(ticket.branch.postal_code, timezone.get_current_timezone_name())
    return timezone.localtime(ticket.sold_at, zoneinfo.ZoneInfo(zone)).strftime("%d/%m/%Y")


@register.filter
def tel_href(phone: str) -> str:
    """A phone as typed («55 1234 5678 ext. 2») as a tel: link's number (+ and digits, before any extension)."""
    import re

    number = re.split(r"[a-zA-Z]", phone or "", maxsplit=1)[0]
    return "".join(c for c in number if c.isdigit() or c == "+")
