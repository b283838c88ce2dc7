"""Seal and stamp invoices, a batch at a time: the body of the ``stamp_batch`` task (see stamp_queue.py).

pending → sealed: build, validate (business rules, then XSD), seal, persist the sealed XML — under row locks,
so two workers never seal one invoice twice with different Fecha.
sealed → stamped: send the persisted sealed XML to the PAC. A retry resends the same bytes, so a PAC that
already stamped them answers with the same UUID: never two UUIDs for one sale.
Transient PAC errors retry with exponential backoff (the queue hands them out again when due); permanent ones
fail the invoice with the code and a Spanish message, and release its tickets.

A batch costs a handful of statements and two short transactions whatever its size; a document's problem
fails that document only.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from infra.events import record_event, transition
from infra.logcontext import log_context
from infra.outages import hand_back_after_outage
from infra.queues import STAMP, enqueue_on_commit
from invoicing import pac as pacs
from invoicing.cfdi.errors import CfdiError, ValidationIssue, errors_only
from invoicing.cfdi.seal import seal_document
from invoicing.cfdi.validation import validate
from invoicing.cfdi.xml import to_bytes
from invoicing.cfdi.xsd import xsd_issues
from invoicing.delivery_queue import deliveries_create, deliveries_wake_on_commit
from invoicing.engine_inputs import engine_csd
from invoicing.lifecycle import IN_FLIGHT, LIVE, invoice_transition, invoice_transitions_bulk
from invoicing.metrics import stamping_record
from invoicing.models import Certificate, Invoice
from invoicing.pac import PacError
from invoicing.services.compose import (
    border_vat_allowed,
    comprobante_inputs,
    invoice_comprobante,
    issuing_zone,
)
from invoicing.services.duplicates import extra_stamp_found
from invoicing.services.failover import doubts_after_failure, stamp_with_failover
from invoicing.stamp_queue import invoices_claim_leased, invoices_release, stamp_queue_wake
from invoicing.webhooks.services import invoice_webhook_emit, invoices_webhook_emit
from tickets.catalogs import tax_rate_catalog
from tickets.models import Ticket

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 12  # with the default backoff (5 s doubling): about three hours of a PAC outage before giving up
BACKOFF_MAX_SECONDS = 3600

_SEALED_FIELDS = ["sealed_xml", "certificate", "issued_at", "subtotal", "discount", "tax_total", "withheld_total",
                  "total", "payment_form"]
_STAMPED_FIELDS = ["stamped_xml", "uuid", "stamped_at", "pac", "attempts", "next_attempt_at", "lease_until",
                   "last_error_code", "last_error_message", "last_error_permanent"]


def backoff_seconds(attempts: int) -> int:
    return min(settings.INVOICE_RETRY_BACKOFF_SECONDS * 2 ** max(attempts - 1, 0), BACKOFF_MAX_SECONDS)


def invoice_stamp(*, invoice_id: int) -> str:
    """Seal and stamp one invoice now, ahead of the queue (a batch of one); returns its status.

    It is claimed like a batch claims (lease), so a batch task never works on it at the same time; an invoice
    that is not claimable (a batch holds it, its retry is not due, it is already stamped or failed) is left
    as it is.
    """
    ids, lease = invoices_claim_leased(ids=[invoice_id])
    if ids:
        _stamp_claimed(ids, lease)
    return Invoice.objects.values_list("status", flat=True).get(pk=invoice_id)


def invoice_retry_now(*, invoice_id: int, actor: str) -> bool:
    """Staff's "reintentar ahora": an invoice backing off after a PAC error is sent again now, not at its
    retry time (after an outage ends, the backoff can be up to an hour away). Returns whether it was queued.

    Only an invoice waiting out a transient error qualifies: not one on hold (a late request's, until its
    global is corrected), and nothing stamped or failed. The same sealed XML is resent, as on any retry.
    """

    now = timezone.now()
    with transaction.atomic():
        invoice = (
            Invoice.objects.select_for_update()
            .filter(pk=invoice_id, status__in=IN_FLIGHT, attempts__gt=0,
                    last_error_permanent=False, next_attempt_at__gt=now)
            .first()
        )
        if invoice is None:
            return False
        waited = timezone.localtime(invoice.next_attempt_at, invoice.merchant.tzinfo)
        Invoice.objects.filter(pk=invoice.pk).update(next_attempt_at=now, updated_at=now)
        record_event(merchant_id=invoice.merchant_id, entity="invoice", object_id=invoice.pk,
                     from_status=invoice.status, to_status=invoice.status, actor=actor,
                     reason=f"reintento de timbrado solicitado (esperaba hasta {waited:%d/%m/%Y %H:%M:%S})")
        # Due now: with the broker away, the stamping cluster's tick claims it as soon as it answers again.
        enqueue_on_commit("invoicing.tasks.stamp_invoice", invoice.pk, queue=STAMP, repaired=True)
    return True


def invoices_stamp(invoice_ids: list[int]) -> list[int]:
    """Seal the pending ones, then stamp the sealed ones whose retry is due. Returns the ids stamped."""
    sealed = _seal_many(invoice_ids)
    return _stamp_many(invoice_ids, sealed)


def invoices_stamp_queued(*, budget_seconds: float | None = None) -> int:
    """Claim and stamp batches until the queue stays empty; returns how many were stamped.

    After a short batch it waits INVOICE_STAMP_LINGER_MS before claiming again: while invoices keep arriving
    that gathers them into fuller batches (each batch costs about the same whatever its size) instead of
    starting a task per trickle. After ``budget_seconds`` (INVOICE_STAMP_TASK_SECONDS) it wakes the queue and
    returns, so a task stays far below django-q2's timeout and the rest goes to a fresh task.
    """
    budget = settings.INVOICE_STAMP_TASK_SECONDS if budget_seconds is None else budget_seconds
    linger = settings.INVOICE_STAMP_LINGER_MS / 1000
    started = time.monotonic()
    stamped = 0
    while True:
        ids, lease = invoices_claim_leased()
        if not ids:
            break
        stamped += len(_stamp_claimed(ids, lease))
        if time.monotonic() - started > budget:
            stamp_queue_wake()
            break
        if len(ids) < settings.INVOICE_STAMP_BATCH and linger:
            time.sleep(linger)
    return stamped


def _stamp_claimed(ids: list[int], lease: dt.datetime) -> list[int]:
    """``invoices_stamp`` for invoices this task claimed under ``lease``. If PostgreSQL goes away meanwhile,
    they go back to the queue once it is back, not when the lease runs out; what was committed stays (sealed
    XML, stamps), and the next claim resends the same sealed XML."""
    try:
        return invoices_stamp(ids)
    except Exception as exc:
        hand_back_after_outage(exc, lambda: invoices_release(ids, lease),
                               wait_seconds=settings.INVOICE_STUCK_AFTER_SECONDS,
                               what=f"stamping {len(ids)} invoice(s)")
        raise


# --- pending → sealed -----------------------------------------------------------------------------------


@transaction.atomic
def _seal_many(invoice_ids: list[int]) -> list[Invoice]:
    """Seal the pending invoices among ``invoice_ids``; returns those it sealed, as stored."""
    invoices = list(
        Invoice.objects.select_for_update(of=("self",)).select_related("merchant", "branch")
        .defer("sealed_xml", "stamped_xml")
        .filter(pk__in=invoice_ids, status=Invoice.Status.PENDING)
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=timezone.now()))  # not parked or backing off
        .order_by("pk")
    )
    if not invoices:
        return []  # another worker sealed them meanwhile
    certificates = {c.merchant_id: c for c in Certificate.objects.filter(
        merchant_id__in={i.merchant_id for i in invoices}, is_active=True)}
    tickets, relations = comprobante_inputs([i.pk for i in invoices])
    sealed, reasons = [], []
    for invoice in invoices:
        certificate = certificates.get(invoice.merchant_id)
        try:
            problems = _seal(invoice, certificate, tickets[invoice.pk], relations[invoice.pk])
        except CfdiError as exc:
            problems = exc.issues
        except Exception as exc:  # noqa: BLE001 - one document's surprise must not block the batch forever
            with log_context(merchant_id=invoice.merchant_id, invoice_id=invoice.pk):
                log.exception("invoice %s could not be sealed", invoice.pk)
            invoice.attempts += 1
            if invoice.attempts < MAX_ATTEMPTS:
                _retry_later(invoice, "internal", f"Error interno al generar el CFDI ({type(exc).__name__}); "
                             "se reintentará.", what="Error interno")
                continue
            problems = [ValidationIssue("internal", "", "No pudimos generar el CFDI por un error interno.")]
        if problems:
            _fail(invoice, problems)
            continue
        sealed.append(invoice)
        reasons.append(f"sellado con el CSD {certificate.number}")
    invoice_transitions_bulk(sealed, from_status=Invoice.Status.PENDING, to=Invoice.Status.SEALED,
                             fields=_SEALED_FIELDS, reasons=reasons)
    return sealed


def _seal(invoice: Invoice, certificate: Certificate | None, tickets, relations) -> list[ValidationIssue]:
    """Seal ``invoice`` in memory (the caller stores it); returns the problems that stop it instead."""
    if certificate is None:
        return [ValidationIssue("sin_csd", "emisor", "El comercio no tiene un certificado de sello digital (CSD) activo.")]
    csd = engine_csd(certificate, expected_rfc=invoice.merchant.rfc)
    comprobante = invoice_comprobante(invoice, tickets=tickets, relations=relations)
    zone = issuing_zone(invoice)
    problems = errors_only(validate(comprobante, csd=csd, tz=zone, tasas=tax_rate_catalog(),
                                    iva_frontera=border_vat_allowed(invoice)))
    if problems:
        return problems
    root = seal_document(comprobante, csd)
    problems = xsd_issues(root)
    if problems:
        return problems
    impuestos = comprobante.impuestos
    invoice.sealed_xml = to_bytes(root)
    invoice.certificate = certificate
    invoice.issued_at = dt.datetime.fromisoformat(comprobante.fecha).replace(tzinfo=ZoneInfo(zone))
    invoice.subtotal = comprobante.subtotal
    invoice.discount = comprobante.descuento or 0
    invoice.tax_total = (impuestos.total_traslados or 0) if impuestos else 0
    invoice.withheld_total = (impuestos.total_retenidos or 0) if impuestos else 0
    invoice.total = comprobante.total
    invoice.payment_form = comprobante.forma_pago or invoice.payment_form
    return []


# --- sealed → stamped -----------------------------------------------------------------------------------


def _stamp_many(invoice_ids: list[int], just_sealed: list[Invoice]) -> list[int]:
    """Stamp the sealed invoices among ``invoice_ids`` whose retry is due; ``just_sealed`` are already in memory
    (their sealed XML need not come back from the database)."""
    now = timezone.now()
    known = {invoice.pk for invoice in just_sealed}
    others = [pk for pk in invoice_ids if pk not in known]  # sealed earlier: a retry, or a batch that died
    invoices = just_sealed + (list(
        Invoice.objects.select_related("merchant").defer("stamped_xml")
        .filter(pk__in=others, status=Invoice.Status.SEALED)
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
    ) if others else [])
    invoices.sort(key=lambda invoice: invoice.pk)
    by_merchant: dict[int, list[Invoice]] = {}
    for invoice in invoices:
        by_merchant.setdefault(invoice.merchant_id, []).append(invoice)
    stamped: list[int] = []
    for group in by_merchant.values():
        merchant = group[0].merchant
        if merchant.pac_secondary and merchant.pac_secondary != (merchant.pac or "sandbox"):
            stamped += _stamp_with_failover(merchant, group)
            continue
        pac_name = group[0].merchant.pac or "sandbox"
        # Outside any transaction: a real PAC answers in seconds, and no lock is held meanwhile.
        started = time.monotonic()
        try:
            pac = pacs.get_pac(group[0].merchant)  # through the module: tests point it at a fake provider
            pac_name = pac.name
            outcomes = pac.stamp_many([bytes(invoice.sealed_xml) for invoice in group])
        except PacError as exc:  # e.g. an unknown provider configured: every document gets the answer
            outcomes = [exc] * len(group)
        except Exception as exc:  # noqa: BLE001 - an adapter's surprise is retried like an outage
            log.exception("PAC %s failed on a batch of %d", pac_name, len(group))
            outcomes = [PacError("internal", f"Error inesperado al timbrar ({type(exc).__name__}); se reintentará.",
                                 permanent=False)] * len(group)
        # The PAC's answer time, per document of the call, goes into each outcome's event (the dashboard's PAC health).
        pac_ms = round((time.monotonic() - started) * 1000 / max(len(group), 1))
        stamped += _store_outcomes(pac_name, group, outcomes, pac_ms=pac_ms)
    return stamped


def _stamp_with_failover(merchant, group: list[Invoice]) -> list[int]:
    """A merchant with a secondary PAC: services/failover.py decides where each document goes."""
    try:
        answered = stamp_with_failover(merchant, group)
    except PacError as exc:  # e.g. an unknown provider configured: nothing was sent anywhere
        answered = [(merchant.pac or "sandbox", group, [exc] * len(group), None, {})]
    stamped: list[int] = []
    for pac_name, invoices, outcomes, pac_ms, notes in answered:
        stamped += _store_outcomes(pac_name, invoices, outcomes, pac_ms=pac_ms, notes=notes)
    return stamped


@transaction.atomic
def _store_outcomes(pac_name: str, invoices: list[Invoice], outcomes: list, pac_ms: int | None = None,
                    notes: dict[int, str] | None = None) -> list[int]:
    still_sealed = set(Invoice.objects.select_for_update().filter(
        pk__in=[i.pk for i in invoices], status=Invoice.Status.SEALED).values_list("pk", flat=True))
    stamped, reasons, errors, failed = [], [], [], []
    for invoice, outcome in zip(invoices, outcomes, strict=True):
        if invoice.pk not in still_sealed:
            # Another worker got here first (an expired lease): its outcome stands. A stamp with another UUID
            # is a second stamp of the sale: it is cancelled, and the invoice keeps the one it stored.
            if not isinstance(outcome, PacError):
                try:
                    _second_stamp(invoice.pk, outcome, pac_name)
                except Exception:  # a savepoint: the batch's other stamps must still be stored
                    log.exception("invoice %s: second stamp %s could not be recorded", invoice.pk, outcome.uuid)
            continue
        invoice.attempts += 1
        if isinstance(outcome, PacError):
            errors.append(outcome.code)
            if outcome.permanent or invoice.attempts >= MAX_ATTEMPTS:
                _fail(invoice, [ValidationIssue(str(outcome.code), "pac", outcome.message)], pac_name=pac_name,
                      pac_ms=pac_ms)
                failed.append(invoice.pk)
            else:
                _retry_later(invoice, outcome.code, outcome.message, pac_ms=pac_ms)
            continue
        invoice.stamped_xml = outcome.stamped_xml
        invoice.uuid = outcome.uuid
        invoice.stamped_at = outcome.stamped_at
        invoice.pac = pac_name
        invoice.next_attempt_at = invoice.lease_until = None
        invoice.last_error_code = invoice.last_error_message = ""
        invoice.last_error_permanent = False
        stamped.append(invoice)
        note = (notes or {}).get(invoice.pk)
        reasons.append(f"timbrado por {pac_name}: {outcome.uuid}" + (f" (respaldo: {note})" if note else ""))
    if failed and notes is not None:
        doubts_after_failure(failed)
    invoice_transitions_bulk(stamped, from_status=Invoice.Status.SEALED, to=Invoice.Status.STAMPED,
                             fields=_STAMPED_FIELDS, reasons=reasons,
                             data=[{"pac": pac_name, "pac_ms": pac_ms} if pac_ms is not None else {}] * len(stamped))
    stamping_record(pac=pac_name, stamped=stamped, errors=errors)  # /metrics, exact: in this transaction
    if stamped:
        # In this transaction: what the stamp owes (webhooks, PDF, email) is committed with it, per invoice,
        # so a worker dying right after the commit loses none of it.
        invoices_webhook_emit([i.pk for i in stamped])
        deliveries_wake_on_commit(deliveries_create(stamped, send_pdf=settings.INVOICE_PDF_AFTER_STAMP))
    return [i.pk for i in stamped]


def _second_stamp(invoice_id: int, outcome, pac_name: str) -> None:
    invoice = Invoice.objects.select_related("merchant").get(pk=invoice_id)
    if invoice.uuid is None or str(invoice.uuid).upper() != outcome.uuid.upper():
        extra_stamp_found(invoice=invoice, result=outcome, pac_name=pac_name, how="late_answer")


def _retry_later(invoice: Invoice, code: str, message: str, what: str = "PAC no disponible",
                 pac_ms: int | None = None) -> None:
    delay = backoff_seconds(invoice.attempts)
    Invoice.objects.filter(pk=invoice.pk, status__in=IN_FLIGHT).update(
        attempts=invoice.attempts,
        next_attempt_at=timezone.now() + dt.timedelta(seconds=delay),
        lease_until=None,
        last_error_code=str(code)[:40],
        last_error_message=message,
        last_error_permanent=False,
        updated_at=timezone.now(),
    )
    record_event(merchant_id=invoice.merchant_id, entity="invoice", object_id=invoice.pk,
                 from_status=invoice.status, to_status=invoice.status,
                 reason=f"{what} ({code}); reintento {invoice.attempts} en {delay} s",
                 data={"pac_ms": pac_ms, "pac_error": str(code)[:40]} if pac_ms is not None else None)
    with log_context(merchant_id=invoice.merchant_id, invoice_id=invoice.pk):
        log.warning("invoice %s: transient error %s, retry in %ss", invoice.pk, code, delay)


def _fail(invoice: Invoice, issues: list[ValidationIssue], pac_name: str = "", pac_ms: int | None = None) -> None:
    """Permanent failure: record why, and give the tickets back so they can be invoiced again."""
    first = issues[0]
    message = " ".join(dict.fromkeys(i.message for i in issues))
    changed = invoice_transition(
        invoice,
        expected=IN_FLIGHT,
        to=Invoice.Status.FAILED,
        reason=message[:500],
        data={"issues": [i.as_dict() for i in issues],
              **({"pac_ms": pac_ms, "pac_error": first.code[:40]} if pac_ms is not None else {})},
        last_error_code=first.code[:40],
        last_error_message=message,
        last_error_permanent=True,
        attempts=invoice.attempts,
        next_attempt_at=None,
        pac=pac_name or invoice.pac,
        updated_at=timezone.now(),
    )
    if changed:
        _release_tickets(invoice)
        invoice_webhook_emit(invoice=invoice, event="invoice.failed")


def _release_tickets(invoice: Invoice) -> None:
    # An ingreso holds its tickets as ``invoiced``, a global as ``globalized`` (both reserved at issue). A credit
    # note (egreso) holds nothing: its tickets stay in the document they were sold in.
    held = {Invoice.Kind.INGRESO: Ticket.Status.INVOICED, Invoice.Kind.GLOBAL: Ticket.Status.GLOBALIZED}.get(invoice.kind)
    if held is None:
        return
    # A ticket another live document of the same kind still holds stays taken: a failed replacement (reissue)
    # leaves the tickets with the invoice it was to replace.
    others = Invoice.objects.filter(kind=invoice.kind, status__in=LIVE).exclude(pk=invoice.pk)
    tickets = list(Ticket.objects.select_for_update().filter(invoice_links__invoice=invoice, status=held)
                   .exclude(invoice_links__invoice__in=others))
    for ticket in tickets:
        transition(ticket, entity="ticket", expected=held, to=Ticket.Status.OPEN,
                   reason=f"factura #{invoice.pk} rechazada", updated_at=timezone.now())
