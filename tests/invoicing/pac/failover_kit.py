"""Helpers for the failover tests: a merchant on Finkok (primary) and SW (secondary), both fakes on loopback, and
a driver that runs the stamping pipeline in-process until the queue is done."""

import datetime as dt
import time
from decimal import Decimal

from django.db.models import Min
from django.utils import timezone
from fakes import FINKOK_PASSWORD, FINKOK_USER, SW_PASSWORD, SW_USER

from infra.models import Event
from invoicing.lifecycle import IN_FLIGHT
from invoicing.models import Cancellation, ExtraStamp, Invoice
from invoicing.services import invoice_issue
from invoicing.services.stamping import invoices_stamp_queued
from tickets.ingest.batch import Item, ingest
from tickets.models import Ticket
from tickets.services import LineInput


def finkok_primary_sw_secondary(monkeypatch, merchant, finkok_server, sw_server, sat_server) -> None:
    """Point the real Finkok and SW adapters at their loopback fakes; the merchant stamps with Finkok and falls
    over to SW."""
    from invoicing.pac import finkok, sat_status, sw

    monkeypatch.setitem(finkok.URLS, "test", finkok_server.url)
    monkeypatch.setitem(sw.URLS, "test", sw_server.url)
    monkeypatch.setitem(sw.API_URLS, "test", sw_server.url)
    monkeypatch.setattr(sat_status, "TEST_URL", f"{sat_server.url}/ConsultaCFDIService.svc")
    sw._tokens.clear()
    sw_server.sat = sat_server
    merchant.pac, merchant.pac_username, merchant.pac_password = "finkok", FINKOK_USER, FINKOK_PASSWORD
    merchant.pac_secondary, merchant.pac_secondary_username = "sw", SW_USER
    merchant.pac_secondary_password = SW_PASSWORD
    merchant.save()


def issue(branch, receptor, make_ticket, count: int, prefix: str) -> list[int]:
    """``count`` tickets pushed as one POS batch, then one invoice each, as shoppers would ask for them."""
    start = Ticket.objects.count()
    sold_at = (timezone.now() - dt.timedelta(hours=1)).isoformat()
    line = LineInput(product_code="50202306", unit_code="H87", description="REFRESCO", quantity=Decimal("1"),
                     unit_price=Decimal("116.00")).as_payload()
    items = [Item({"index": i}, {"branch": branch.code, "number": f"{prefix}{start + i}", "sold_at": sold_at,
                                 "currency": "MXN", "payment_form": "01", "lines": [line], "total": "116.00"})
             for i in range(count)]
    outcome = ingest(merchant=branch.merchant, items=items, source=Ticket.Source.API)
    assert outcome.created == count, outcome.entries[:3]
    return [invoice_issue(merchant=branch.merchant, receptor=receptor, ticket_ids=[entry["ticket_id"]]).pk
            for entry in outcome.entries]


def drain(ids: list[int], *, timeout: float = 30.0, time_passes: bool = True) -> float:
    """Stamp until none of ``ids`` is in flight; returns the seconds it took. ``time_passes``: an invoice backing
    off after a transient error is due at once (its backoff is not what these tests measure)."""
    started = time.monotonic()
    while Invoice.objects.filter(pk__in=ids, status__in=IN_FLIGHT).exists():
        assert time.monotonic() - started < timeout, "stamping did not finish"
        invoices_stamp_queued(budget_seconds=5)
        if time_passes:
            Invoice.objects.filter(pk__in=ids, status__in=IN_FLIGHT).update(next_attempt_at=None)
    return time.monotonic() - started


def first_stamp_by(ids: list[int], pac: str):
    """When the first of ``ids`` was stored as stamped by ``pac`` (its event row)."""
    stamped = Invoice.objects.filter(pk__in=ids, pac=pac).values_list("pk", flat=True)
    return Event.objects.filter(entity="invoice", object_id__in=list(stamped), to_status="stamped").aggregate(
        at=Min("created_at"))["at"]


def seal_to_stamp(ids: list[int]) -> dict:
    """Seconds from each invoice's seal to its stamp (its PAC calls, a failover included): median and max."""
    at: dict[tuple[int, str], object] = {}
    for pk, status, created in Event.objects.filter(entity="invoice", object_id__in=ids,
                                                    to_status__in=["sealed", "stamped"]).values_list(
            "object_id", "to_status", "created_at"):
        at[(pk, status)] = created
    spans = sorted((at[(pk, "stamped")] - at[(pk, "sealed")]).total_seconds() for pk in ids
                   if (pk, "stamped") in at and (pk, "sealed") in at)
    return {"seal_to_stamp_median_s": round(spans[len(spans) // 2], 3), "seal_to_stamp_max_s": round(spans[-1], 3)}


def ledger_check(ids: list[int], *fakes) -> dict:
    """Every UUID the fakes issued is an invoice's legal UUID or an extra stamp cancelled at the fake that made it;
    every invoice has exactly one UUID. Returns counts for the report."""
    invoices = list(Invoice.objects.filter(pk__in=ids).values_list("pk", "status", "uuid"))
    assert {status for _, status, _ in invoices} == {"stamped"}, "every invoice is stamped"
    legal = {str(uuid).upper() for _, _, uuid in invoices}
    assert len(legal) == len(ids), "one UUID per invoice, none shared"
    issued = set().union(*(fake.issued() for fake in fakes))
    assert legal <= issued, "every legal UUID was issued by a PAC"
    orphans = issued - legal
    extras = {str(u).upper(): pk for u, pk in ExtraStamp.objects.values_list("uuid", "pk")}
    assert orphans == set(extras), f"every extra stamp is known: {orphans ^ set(extras)}"
    for uuid in orphans:
        cancellation = Cancellation.objects.get(extra_stamp_id=extras[uuid])
        assert (cancellation.status, cancellation.motive) == ("cancelled", "02")
        assert any(fake_cancelled(fake, uuid) for fake in fakes), f"{uuid} cancelled at the PAC that made it"
    return {"issued": len(issued), "legal": len(legal), "extra_cancelled": len(orphans)}


def fake_cancelled(fake, uuid: str) -> bool:
    if hasattr(fake, "cancellations"):
        return fake.cancellations.get(uuid, {}).get("status") == "cancelled"
    document = fake.sat.documents.get(uuid) if fake.sat is not None else None
    return bool(document) and document.get("estado") == "Cancelado"
