"""Seal and stamp one invoice: the body of the `stamp_invoice` task.

pending → sealed: build, validate (business rules, then XSD), seal, persist the sealed XML — under a row
lock, so two workers never seal one invoice twice with different Fecha.
sealed → stamped: send the persisted sealed XML to the PAC. A retry resends the same bytes, so a PAC that
already stamped them answers with the same UUID: never two UUIDs for one sale.
Transient PAC errors retry with exponential backoff (the sweeper re-queues them when due); permanent ones
fail the invoice with the code and a Spanish message, and release its tickets.
"""

from __future__ import annotations

import datetime as dt
import logging

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from invoicing.cfdi.errors import CfdiError, ValidationIssue, errors_only
from invoicing.cfdi.seal import seal_document
from invoicing.cfdi.validation import validate
from invoicing.cfdi.xml import to_bytes
from invoicing.cfdi.xsd import xsd_issues
from invoicing.engine_inputs import engine_csd
from invoicing.models import Invoice
from invoicing.services.compose import invoice_comprobante
from invoicing.webhooks.services import invoice_webhook_emit
from tickets.events import record_event, transition
from tickets.models import Ticket

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 12  # with the backoff below: about three hours of a PAC outage before giving up
BACKOFF_BASE_SECONDS = 5
BACKOFF_MAX_SECONDS = 3600


def backoff_seconds(attempts: int) -> int:
    return min(BACKOFF_BASE_SECONDS * 2 ** max(attempts - 1, 0), BACKOFF_MAX_SECONDS)


def invoice_stamp(*, invoice_id: int) -> str:
    invoice = _seal(invoice_id)  # a no-op returning the invoice unless it is pending
    if invoice.status != Invoice.Status.SEALED:
        return invoice.status
    if invoice.next_attempt_at and invoice.next_attempt_at > timezone.now():
        return invoice.status  # backing off; the sweeper re-queues it when due
    return _stamp(invoice)


@transaction.atomic
def _seal(invoice_id: int) -> Invoice:
    """Returns the invoice as this call left it (sealed, failed, or as another worker left it)."""
    invoice = Invoice.objects.select_for_update(of=("self",)).select_related("merchant", "branch").get(pk=invoice_id)
    if invoice.status != Invoice.Status.PENDING:
        return invoice  # another worker sealed it meanwhile
    certificate = invoice.merchant.certificates.filter(is_active=True).first()
    if certificate is None:
        _fail(invoice, [ValidationIssue("sin_csd", "emisor",
                                        "El comercio no tiene un certificado de sello digital (CSD) activo.")])
        return invoice
    try:
        csd = engine_csd(certificate, expected_rfc=invoice.merchant.rfc)
        comprobante = invoice_comprobante(invoice)
    except CfdiError as exc:
        _fail(invoice, exc.issues)
        return invoice
    problems = errors_only(validate(comprobante, csd=csd, tz=invoice.merchant.time_zone))
    if problems:
        _fail(invoice, problems)
        return invoice
    root = seal_document(comprobante, csd)
    problems = xsd_issues(root)
    if problems:
        _fail(invoice, problems)
        return invoice
    impuestos = comprobante.impuestos
    transition(
        invoice,
        entity="invoice",
        expected=Invoice.Status.PENDING,
        to=Invoice.Status.SEALED,
        reason=f"sellado con el CSD {csd.no_certificado}",
        sealed_xml=to_bytes(root),
        certificate=certificate,
        issued_at=dt.datetime.fromisoformat(comprobante.fecha).replace(tzinfo=invoice.merchant.tzinfo),
        subtotal=comprobante.subtotal,
        discount=comprobante.descuento or 0,
        tax_total=(impuestos.total_traslados or 0) if impuestos else 0,
        withheld_total=(impuestos.total_retenidos or 0) if impuestos else 0,
        total=comprobante.total,
        payment_form=comprobante.forma_pago or invoice.payment_form,
        updated_at=timezone.now(),
    )
    return invoice


def _stamp(invoice: Invoice) -> str:
    from invoicing.pac import get_pac
    from invoicing.pac.base import PacError

    pac = get_pac(invoice.merchant)
    invoice.attempts += 1
    try:
        result = pac.stamp(bytes(invoice.sealed_xml))
    except PacError as exc:
        with transaction.atomic():
            if exc.permanent or invoice.attempts >= MAX_ATTEMPTS:
                _fail(invoice, [ValidationIssue(str(exc.code), "pac", exc.message)], pac_name=pac.name)
            else:
                _retry_later(invoice, exc)
        return Invoice.objects.values_list("status", flat=True).get(pk=invoice.pk)
    with transaction.atomic():
        stamped = transition(
            invoice,
            entity="invoice",
            expected=Invoice.Status.SEALED,
            to=Invoice.Status.STAMPED,
            reason=f"timbrado por {pac.name}: {result.uuid}",
            stamped_xml=result.stamped_xml,
            uuid=result.uuid,
            stamped_at=result.stamped_at,
            pac=pac.name,
            attempts=invoice.attempts,
            next_attempt_at=None,
            last_error_code="",
            last_error_message="",
            last_error_permanent=False,
            updated_at=timezone.now(),
        )
        if stamped:
            transaction.on_commit(lambda: _after_stamped(invoice.pk))
    return Invoice.Status.STAMPED


def _retry_later(invoice: Invoice, exc) -> None:
    delay = backoff_seconds(invoice.attempts)
    Invoice.objects.filter(pk=invoice.pk, status=Invoice.Status.SEALED).update(
        attempts=invoice.attempts,
        next_attempt_at=timezone.now() + dt.timedelta(seconds=delay),
        last_error_code=str(exc.code)[:40],
        last_error_message=exc.message,
        last_error_permanent=False,
        updated_at=timezone.now(),
    )
    record_event(merchant_id=invoice.merchant_id, entity="invoice", object_id=invoice.pk,
                 from_status=invoice.status, to_status=invoice.status,
                 reason=f"PAC no disponible ({exc.code}); reintento {invoice.attempts} en {delay} s")
    log.warning("invoice %s: transient PAC error %s, retry in %ss", invoice.pk, exc.code, delay)


def _fail(invoice: Invoice, issues: list[ValidationIssue], pac_name: str = "") -> None:
    """Permanent failure: record why, and give the tickets back so they can be invoiced again."""
    first = issues[0]
    message = " ".join(dict.fromkeys(i.message for i in issues))
    changed = transition(
        invoice,
        entity="invoice",
        expected=(Invoice.Status.PENDING, Invoice.Status.SEALED),
        to=Invoice.Status.FAILED,
        reason=message[:500],
        data={"issues": [i.as_dict() for i in issues]},
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
    tickets = list(Ticket.objects.select_for_update().filter(invoice_links__invoice=invoice, status=held))
    for ticket in tickets:
        transition(ticket, entity="ticket", expected=held, to=Ticket.Status.OPEN,
                   reason=f"factura #{invoice.pk} rechazada", updated_at=timezone.now())


def _after_stamped(invoice_id: int) -> None:
    from invoicing.tasks import enqueue_after_stamped

    enqueue_after_stamped(invoice_id)


def stuck_invoices_requeue(*, older_than_seconds: int | None = None, limit: int = 5000) -> list[int]:
    """Invoices to queue again: left pending/sealed by a crashed worker, or sealed ones whose retry is due.

    Each one is touched (updated_at = now) as it is re-queued, so a long queue does not get the same invoice
    again every minute: it comes back only if it is still untouched after another ``older_than_seconds``.
    """
    now = timezone.now()
    cutoff = now - dt.timedelta(seconds=older_than_seconds or settings.INVOICE_STUCK_AFTER_SECONDS)
    due_retry = Q(next_attempt_at__lte=now, updated_at__lt=F("next_attempt_at"))
    abandoned = Q(updated_at__lt=cutoff) & (Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
    with transaction.atomic():
        ids = list(
            Invoice.objects.select_for_update(skip_locked=True)
            .filter(status__in=(Invoice.Status.PENDING, Invoice.Status.SEALED))
            .filter(due_retry | abandoned)
            .order_by("pk")
            .values_list("pk", flat=True)[:limit]
        )
        Invoice.objects.filter(pk__in=ids).update(updated_at=now)
    return ids
