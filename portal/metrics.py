"""/metrics for Prometheus: the product's own figures plus django-prometheus's per-process request metrics.

Who may read it: a scraper sending ``Authorization: Bearer <METRICS_TOKEN>``, or a logged-in superuser (the
figures cover every merchant, so a merchant's staff may not). Anyone else gets a 404 (no token configured, or
none sent: the endpoint does not advertise itself) or a 403 (a wrong token, a signed-in non-superuser).

Multi-process and multi-host, by construction:
- the product's gauges are computed at scrape time from PostgreSQL and the brokers, so any web process of any
  host answers the same;
- the stamping counters (``autofactura_stamp_latency_seconds``, ``autofactura_pac_errors_total``) are rows the
  workers write in the same transaction as the stamps (invoicing/metrics.py): workers run on other hosts, fork,
  recycle and serve no HTTP, so a counter in their memory would never reach a scrape; in the database it is exact,
  survives restarts and is the same from every web process;
- django-prometheus's request counters and latencies are per process: with several gunicorn workers on a host,
  set PROMETHEUS_MULTIPROC_DIR (an empty directory per host, emptied at each start) and every worker's figures
  are added up here; each host is its own scrape target for those.
The ``autofactura_*`` families are cluster-wide: scrape them from one target (or drop the duplicates by label).
"""

from __future__ import annotations

import datetime as dt
import hmac
import os

from django.conf import settings
from django.db.models import Count, Exists, Min, OuterRef, Q
from django.http import Http404, HttpResponse, HttpResponseForbidden
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from infra import queues
from invoicing.lifecycle import FINAL, IN_FLIGHT
from invoicing.metrics import (
    PAC_ERRORS,
    STAMP_LATENCY,
    STAMP_LATENCY_BUCKETS,
    counter_totals,
    labels_key,
    labels_of,
)
from invoicing.models import GlobalPeriod, Invoice, InvoiceDelivery
from tickets.models import Merchant

PREFIX = "autofactura"
# Statuses counted exactly at each scrape: the work in progress, found through the (merchant, status) index.
# stamped, failed and cancelled only grow: their flow is in the counters (stamps are the latency histogram's
# count, PAC refusals pac_errors_total), and a count(*) of millions of rows per scrape is not a gauge's job.
OPEN_STATUSES = tuple(s for s in Invoice.Status.values if s not in FINAL and s != Invoice.Status.STAMPED)
GLOBAL_LOOKBACK = dt.timedelta(days=7)  # periods whose deadline passed longer ago are history, not risk


class ProductCollector:
    """The product's figures, computed when scraped."""

    def collect(self):
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

        now = timezone.now()
        depth = GaugeMetricFamily(f"{PREFIX}_queue_tasks", "Tasks waiting in each queue's broker.", labels=["queue"])
        for queue in queues.QUEUES:
            depth.add_metric([queue], queues.backlog(queue))
        yield depth

        invoices = GaugeMetricFamily(f"{PREFIX}_invoices", "Invoices in each open status (work in progress).",
                                     labels=["status"])
        counts = dict(Invoice.objects.filter(merchant_id__in=Merchant.objects.values("pk"), status__in=OPEN_STATUSES)
                      .values_list("status").annotate(n=Count("pk")).order_by())
        for status in OPEN_STATUSES:
            invoices.add_metric([status], counts.get(status, 0))
        yield invoices

        oldest = Invoice.objects.filter(status__in=IN_FLIGHT).aggregate(m=Min("created_at"))["m"]
        yield GaugeMetricFamily(f"{PREFIX}_stamp_queue_oldest_seconds",
                                "Age of the oldest invoice waiting to be stamped (0 when none).",
                                value=max((now - oldest).total_seconds(), 0.0) if oldest else 0.0)
        yield GaugeMetricFamily(f"{PREFIX}_deliveries_pending", "Stamped invoices whose PDF or email is still due.",
                                value=InvoiceDelivery.objects.filter(status=InvoiceDelivery.Status.PENDING).count())

        risk = GaugeMetricFamily(
            f"{PREFIX}_global_deadlines_at_risk",
            "Factura global periods within GLOBAL_INVOICE_ALERT_HOURS of their deadline (due_soon) or past it in the "
            "last 7 days (overdue) with no stamped global, or a global still being stamped.", labels=["state"])
        stamped = Invoice.objects.filter(global_periods=OuterRef("pk"), status=Invoice.Status.STAMPED)
        in_flight = Invoice.objects.filter(global_periods=OuterRef("pk"), status__in=IN_FLIGHT)
        window = dt.timedelta(hours=settings.GLOBAL_INVOICE_ALERT_HOURS)
        at_risk = (GlobalPeriod.objects.filter(deadline__lte=now + window, deadline__gte=now - GLOBAL_LOOKBACK)
                   .filter(~Exists(stamped) | Exists(in_flight))
                   .aggregate(due_soon=Count("pk", filter=Q(deadline__gt=now)),
                              overdue=Count("pk", filter=Q(deadline__lte=now))))
        for state in ("due_soon", "overdue"):
            risk.add_metric([state], at_risk[state] or 0)
        yield risk

        totals = counter_totals()
        latency = HistogramMetricFamily(f"{PREFIX}_{STAMP_LATENCY}",
                                        "Seconds from an invoice's creation to its stamp stored, by kind.",
                                        labels=["kind"])
        kinds = sorted({labels_of(labels)["kind"] for (name, labels) in totals if name == f"{STAMP_LATENCY}_count"})
        for kind in kinds:
            per_bucket = {labels_of(labels)["le"]: value for (name, labels), value in totals.items()
                          if name == f"{STAMP_LATENCY}_bucket" and labels_of(labels).get("kind") == kind}
            cumulative, buckets = 0.0, []
            for le in (*map(repr, STAMP_LATENCY_BUCKETS), "+Inf"):
                cumulative += per_bucket.get(le, 0.0)
                buckets.append((le, cumulative))
            latency.add_metric([kind], buckets, sum_value=totals.get((f"{STAMP_LATENCY}_sum", labels_key(kind=kind)),
                                                                     0.0))
        yield latency

        errors = CounterMetricFamily(f"{PREFIX}_pac_errors", "Errors PAC answered to stamping calls, by PAC and code.",
                                     labels=["pac", "code"])
        for (name, labels), value in sorted(totals.items()):
            if name == PAC_ERRORS:
                found = labels_of(labels)
                errors.add_metric([found.get("pac", ""), found.get("code", "")], value)
        yield errors


def _allowed(request) -> bool:
    """True, or raises the 404/403 the module's docstring describes."""
    expected = settings.METRICS_TOKEN
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if header:
        scheme, _, given = header.partition(" ")
        if expected and scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), expected.encode()):
            return True
        raise PermissionError
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        if user.is_active and user.is_superuser:
            return True
        raise PermissionError
    raise Http404("No existe.")


def registry():
    """django-prometheus's (per process, or every process of the host with PROMETHEUS_MULTIPROC_DIR) and ours."""
    from prometheus_client import REGISTRY, CollectorRegistry, multiprocess

    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        out = CollectorRegistry()
        multiprocess.MultiProcessCollector(out)
    else:
        out = CollectorRegistry()
        out.register(_Forward(REGISTRY))
    out.register(ProductCollector())
    return out


class _Forward:
    """The process's default registry inside ours (a registry cannot be registered in another as it is)."""

    def __init__(self, source):
        self.source = source

    def collect(self):
        return self.source.collect()


@never_cache
@require_safe
def metrics(request):
    try:
        _allowed(request)
    except PermissionError:
        return HttpResponseForbidden("Prohibido.")
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    return HttpResponse(generate_latest(registry()), content_type=CONTENT_TYPE_LATEST)
