"""Benchmark-only settings and views live in bench/ (bench/settings.py, bench/urls.py), never in production."""

import datetime as dt

from django.conf import settings
from django.test import override_settings
from django.urls import get_resolver

from portal import settings as production_settings


def _routes(resolver, prefix=""):
    for pattern in resolver.url_patterns:
        route = prefix + str(pattern.pattern)
        if hasattr(pattern, "url_patterns"):
            yield from _routes(pattern, route)
        else:
            yield route, getattr(pattern, "name", None) or "", getattr(pattern.callback, "__module__", "")


def test_production_routes_no_benchmark_view():
    assert settings.ROOT_URLCONF == "portal.urls"
    offenders = [r for r in _routes(get_resolver("portal.urls")) if "bench" in " ".join(r).lower()]
    assert offenders == []


def test_production_settings_hold_no_benchmark_switch():
    assert not hasattr(production_settings, "INVOICE_POST_STAMP_TASKS")
    assert not hasattr(production_settings, "PORTAL_BENCH_VIEW")


@override_settings(ROOT_URLCONF="bench.urls")
def test_the_benchmark_overlay_routes_the_lookup_baseline_beside_the_product(client, branch, make_ticket):
    make_ticket(branch, number="B1", sold_at=dt.datetime(2026, 1, 2, 12, tzinfo=dt.UTC))
    response = client.post(f"/{branch.merchant.slug}/bench-lookup",
                           {"number": "B1", "total": "116.00", "sold_on": "2026-01-02"})
    assert response.status_code == 200 and response.json()["outcome"]
    assert client.get(f"/{branch.merchant.slug}/").status_code == 200  # the product's pages still answer
