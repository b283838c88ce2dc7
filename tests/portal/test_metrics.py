"""/metrics: Prometheus text for a bearer token or a superuser (404/403 otherwise), the product's gauges computed
from the database and the brokers, and the stamping counters the workers write in their transactions."""

import datetime as dt

import pytest
from django.test import Client
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from invoicing.metrics import stamping_record
from invoicing.models import GlobalPeriod, Invoice, MetricCounter
from invoicing.services import invoice_issue
from invoicing.services.stamping import invoices_stamp_queued

TOKEN = "t0k3n-de-prometheus"


@pytest.fixture
def scrape(settings, db):
    settings.METRICS_TOKEN = TOKEN
    settings.INVOICE_STAMP_LINGER_MS = 0

    def get() -> dict[tuple[str, tuple], float]:
        response = Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
        assert response.status_code == 200, response.content
        assert response["Content-Type"].startswith("text/plain")
        return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
                for family in text_string_to_metric_families(response.content.decode())
                for sample in family.samples}

    return get


def test_metrics_answer_only_the_token_or_a_superuser(settings, db, make_staff, merchant, django_user_model):
    settings.METRICS_TOKEN = TOKEN
    assert Client().get("/metrics").status_code == 404  # no credentials: nothing there
    assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer otro").status_code == 403
    assert Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 200
    staff = Client()
    staff.force_login(make_staff(merchant, "dueno"))  # a merchant's staff: the figures are every merchant's
    assert staff.get("/metrics").status_code == 403
    root = Client()
    root.force_login(django_user_model.objects.create_superuser("root", "root@example.com", "x"))
    assert root.get("/metrics").status_code == 200
    settings.METRICS_TOKEN = ""  # no token configured: no bearer is ever right
    assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 403


def test_metrics_stamping_latency_and_open_invoices(scrape, merchant, branch, certificate, make_ticket, receptor):
    for i in range(3):
        invoice_issue(merchant=merchant, ticket_ids=[make_ticket(branch, number=f"M{i}").pk], receptor=receptor)
    assert invoices_stamp_queued() == 3
    waiting = invoice_issue(merchant=merchant, ticket_ids=[make_ticket(branch, number="M9").pk], receptor=receptor)
    Invoice.objects.filter(pk=waiting.pk).update(created_at=timezone.now() - dt.timedelta(seconds=90))
    got = scrape()
    kind = (("kind", "ingreso"),)
    assert got[("autofactura_stamp_latency_seconds_count", kind)] == 3
    assert got[("autofactura_stamp_latency_seconds_bucket", (*kind, ("le", "+Inf")))] == 3
    assert 0 < got[("autofactura_stamp_latency_seconds_sum", kind)] < 60
    assert got[("autofactura_invoices", (("status", "pending"),))] == 1
    assert got[("autofactura_invoices", (("status", "sealed"),))] == 0
    assert ("autofactura_invoices", (("status", "stamped"),)) not in got  # a total, not work in progress
    assert got[("autofactura_stamp_queue_oldest_seconds", ())] >= 90
    assert got[("autofactura_deliveries_pending", ())] == 3  # PDF and email of the three, not sent here
    for queue in ("stamp", "deliver", "bulk"):
        assert ("autofactura_queue_tasks", (("queue", queue),)) in got


def test_metrics_pac_errors_by_code(scrape, settings, merchant, branch, certificate, make_ticket, receptor):
    settings.SANDBOX_PAC_FAILURE_RATE = 2  # every call fails before stamping (half the rate fails first)
    invoice_issue(merchant=merchant, ticket_ids=[make_ticket(branch, number="E1").pk], receptor=receptor)
    invoices_stamp_queued()
    got = scrape()
    assert got[("autofactura_pac_errors_total", (("code", "sandbox_failure"), ("pac", "sandbox")))] == 1
    assert ("autofactura_stamp_latency_seconds_count", (("kind", "ingreso"),)) not in got


def test_metrics_counters_add_up_every_process(scrape, monkeypatch, merchant, branch):
    """Workers on several hosts write their own rows (shards): a scrape of any web process adds them up."""
    invoice = Invoice(kind="global", created_at=timezone.now() - dt.timedelta(seconds=3))
    for pid in (1001, 1002, 1003):
        monkeypatch.setattr("invoicing.metrics.os.getpid", lambda pid=pid: pid)
        stamping_record(pac="finkok", stamped=[invoice], errors=["307", "307"])
    assert MetricCounter.objects.values("shard").distinct().count() == 3
    got = scrape()
    kind = (("kind", "global"),)
    assert got[("autofactura_stamp_latency_seconds_count", kind)] == 3
    assert got[("autofactura_stamp_latency_seconds_bucket", (*kind, ("le", "2.0")))] == 0
    assert got[("autofactura_stamp_latency_seconds_bucket", (*kind, ("le", "5.0")))] == 3
    assert got[("autofactura_pac_errors_total", (("code", "307"), ("pac", "finkok")))] == 6


def test_metrics_global_deadlines_at_risk(scrape, settings, merchant, other_merchant):
    settings.GLOBAL_INVOICE_ALERT_HOURS = 6
    now = timezone.now()

    def period(owner, day, deadline):
        return GlobalPeriod.objects.create(merchant=owner, periodicity="01", first_day=day, last_day=day,
                                           starts_at=now - dt.timedelta(days=1), ends_at=now, deadline=deadline)

    today = timezone.localdate()
    period(merchant, today, now + dt.timedelta(hours=2))  # no global stamped, 2 h left
    period(other_merchant, today, now - dt.timedelta(hours=1))  # deadline passed
    period(merchant, today - dt.timedelta(days=1), now + dt.timedelta(hours=20))  # far from its deadline
    period(merchant, today - dt.timedelta(days=30), now - dt.timedelta(days=20))  # history
    got = scrape()
    assert got[("autofactura_global_deadlines_at_risk", (("state", "due_soon"),))] == 1
    assert got[("autofactura_global_deadlines_at_risk", (("state", "overdue"),))] == 1


def test_metrics_include_request_metrics_of_the_process(scrape):
    Client().get("/healthz")
    got = scrape()
    assert any(name.startswith("django_http_requests_total_by_method") for name, _ in got)


def test_metrics_of_every_worker_of_a_host_with_a_multiprocess_dir(scrape, monkeypatch, tmp_path):
    from portal.metrics import registry

    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    collectors = registry()._collector_to_names
    assert any(type(c).__name__ == "MultiProcessCollector" for c in collectors)
    assert ("autofactura_queue_tasks", (("queue", "stamp"),)) in scrape()
