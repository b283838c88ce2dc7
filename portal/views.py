"""Shoppers' pages."""

from django.shortcuts import get_object_or_404, render

from tickets.models import Merchant


def home(request):
    merchants = Merchant.objects.filter(is_active=True).order_by("legal_name")[:20] if request.user.is_staff else []
    return render(request, "portal/home.html", {"merchants": merchants})


def merchant_landing(request, slug: str):
    merchant = get_object_or_404(Merchant.objects.prefetch_related("branches"), slug=slug, is_active=True)
    return render(request, "portal/merchant.html", {"merchant": merchant})
