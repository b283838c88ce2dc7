"""The baseline of bench/portal.py: the shoppers' lookup (portal/shopper/lookup.py) without templates, forms or
session, to measure what the page adds on top of its database work."""

import datetime as dt
from decimal import Decimal

from django.http import JsonResponse
from django.shortcuts import get_object_or_404

from portal.shopper.lookup import ticket_lookup
from tickets.models import Merchant


def lookup_baseline(request, slug: str):
    merchant = get_object_or_404(Merchant, slug=slug, is_active=True)
    outcome = ticket_lookup(merchant=merchant, number=request.POST.get("number", ""),
                            total=Decimal(request.POST["total"]), sold_on=dt.date.fromisoformat(request.POST["sold_on"]))
    return JsonResponse({"outcome": outcome.kind})
