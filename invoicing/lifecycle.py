"""The invoice lifecycle: its statuses, the transitions allowed between them, and the one guarded write.

Every change of an invoice's status goes through :func:`invoice_transition` (one invoice) or
:func:`invoice_transitions_bulk` (the stamping pipeline's batches): both check the table below, update only rows
still in the expected status and write the event row in the same transaction. The issue path's PostgreSQL
statement (invoicing/services/issue_write.py) creates invoices in SQL; it takes its initial status and event
from :func:`creation_event_values`, and a test holds it to the ORM path's rows.

Adding a status: add it to ``Invoice.Status`` (a migration follows), to ``TRANSITIONS`` (where it may be entered
from and left to) and, if it belongs to one, to the groups below; tests/invoicing/test_lifecycle.py walks the
whole table. docs/architecture.md draws it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from django.db import transaction
from django.utils import timezone

from infra.db.bulk import bulk_update_fields
from infra.events import transition
from infra.models import Event
from invoicing.models import Invoice

S = Invoice.Status
CREATED = ""  # the "status" an invoice comes from when it is created

TRANSITIONS: dict[str, frozenset[str]] = {
    CREATED: frozenset({S.PENDING, S.ON_HOLD, S.SCHEDULED}),
    # scheduled: issued for later (issue_at); at its time it joins the stamping queue with a folio, or is
    # withdrawn before it, leaving no CFDI and no folio (invoicing/services/schedule.py)
    S.SCHEDULED: frozenset({S.PENDING, S.WITHDRAWN}),
    # on hold: issued, but waiting for something else before it may be stamped (a late request's global)
    S.ON_HOLD: frozenset({S.PENDING, S.FAILED}),
    S.PENDING: frozenset({S.SEALED, S.FAILED}),
    S.SEALED: frozenset({S.STAMPED, S.FAILED}),
    # Cancellation (invoicing/services/cancel.py): requested → pending acceptance → cancelled; back to stamped
    # when SAT or the PAC refuses the request, or the receptor rejects it.
    S.STAMPED: frozenset({S.CANCELLING}),
    S.CANCELLING: frozenset({S.CANCEL_PENDING, S.CANCELLED, S.STAMPED}),
    S.CANCEL_PENDING: frozenset({S.CANCELLED, S.STAMPED}),
    # A nominative invoice the PAC refused for the receptor's data (CFDI40145 name, CFDI40147 postal code…) goes
    # back to the queue with the corrected data and the same folio (invoicing/services/receptor_retry.py): it was
    # never a CFDI, so nothing at SAT is replaced.
    S.FAILED: frozenset({S.PENDING}),
    S.CANCELLED: frozenset(),
    S.WITHDRAWN: frozenset(),
}

# Groups the rest of the code asks about, defined once.
IN_FLIGHT = (S.PENDING, S.SEALED)  # the stamping queue (a partial index on the model follows this set)
CANCELLATION = (S.CANCELLING, S.CANCEL_PENDING)  # a cancellation is under way: the CFDI is still vigente
LEGAL = (S.STAMPED, *CANCELLATION, S.CANCELLED)  # a CFDI exists at SAT: downloadable, never deleted
LIVE = (S.SCHEDULED, S.ON_HOLD, S.PENDING, S.SEALED, S.STAMPED, *CANCELLATION)  # holds its tickets
# Holds no tickets and nothing is under way: a failed invoice until (and unless) its receptor retries it, a
# cancelled one, a scheduled one withdrawn before its time.
FINAL = (S.FAILED, S.CANCELLED, S.WITHDRAWN)


class IllegalTransition(Exception):  # noqa: N818 - reads as what happened
    """A programming error: code asked for a move the lifecycle does not have."""

    def __init__(self, from_status: str, to_status: str):
        super().__init__(f"invoice status {from_status or '(new)'!s} → {to_status} is not allowed")
        self.from_status, self.to_status = from_status, to_status


def transition_check(from_status: str, to_status: str) -> None:
    if to_status not in TRANSITIONS.get(from_status, ()):
        raise IllegalTransition(from_status, to_status)


def can_transition(from_status: str, to_status: str) -> bool:
    return to_status in TRANSITIONS.get(from_status, ())


def invoice_transition(invoice: Invoice, *, to: str, expected: str | Iterable[str] | None = None, actor: str = "",
                       reason: str = "", data: dict | None = None, **fields) -> bool:
    """Move ``invoice`` to ``to`` if it is still in ``expected`` (default: the status it was read with).

    Raises :class:`IllegalTransition` when any expected status may not move to ``to``; returns False when the
    row was no longer in an expected status (someone else moved it first), True after the update and its event.
    """
    expected_set = {invoice.status} if expected is None else ({expected} if isinstance(expected, str)
                                                              else set(expected))
    for status in expected_set:
        transition_check(status, to)
    return transition(invoice, entity="invoice", to=to, expected=expected_set, actor=actor, reason=reason,
                      data=data, **fields)


def invoice_created_event(invoice: Invoice, *, actor: str = "", reason: str = "", data: dict | None = None) -> Event:
    """The event of a new invoice (status "" → its initial status), checked against the table."""
    transition_check(CREATED, invoice.status)
    return Event(merchant_id=invoice.merchant_id, entity="invoice", object_id=invoice.pk, from_status=CREATED,
                 to_status=invoice.status, actor=actor, reason=reason, data=data or {})


def invoice_created(invoice: Invoice, *, actor: str = "", reason: str = "", data: dict | None = None) -> Event:
    event = invoice_created_event(invoice, actor=actor, reason=reason, data=data)
    event.save()
    return event


def creation_event_values(status: str = S.PENDING) -> tuple[str, str]:
    """(from_status, to_status) of a new invoice's event, for the issue path's SQL statement."""
    transition_check(CREATED, status)
    return CREATED, status


def invoice_transitions_bulk(invoices: Sequence[Invoice], *, from_status: str, to: str, fields: Sequence[str],
                             reasons: Sequence[str] | None = None, data: Sequence[dict] | None = None,
                             actor: str = "") -> None:
    """The batch twin of :func:`invoice_transition` for rows the caller holds locked in ``from_status``.

    The caller has selected the rows FOR UPDATE with ``status=from_status`` in this transaction and set the new
    values (``fields``) on the instances; this sets their status, writes them in one statement per field set
    and adds one event per invoice.
    """
    transition_check(from_status, to)
    if not invoices:
        return
    for invoice in invoices:
        if invoice.status not in (from_status, to):
            raise IllegalTransition(invoice.status, to)
    now = timezone.now()
    for invoice in invoices:
        invoice.status = to
        invoice.updated_at = now
    names = list(dict.fromkeys(["status", "updated_at", *fields]))
    reasons = reasons or [""] * len(invoices)
    data = data or [{}] * len(invoices)
    with transaction.atomic(savepoint=False):  # checked above: nothing here raises for a lifecycle reason
        bulk_update_fields(list(invoices), names)
        Event.objects.bulk_create(
            Event(merchant_id=invoice.merchant_id, entity="invoice", object_id=invoice.pk, from_status=from_status,
                  to_status=to, actor=actor, reason=reason, data=extra)
            for invoice, reason, extra in zip(invoices, reasons, data, strict=True)
        )


def refuse_deleting_legal_invoices(sender, instance: Invoice, **kwargs) -> None:
    """pre_delete of Invoice: a CFDI that exists at SAT is never deleted, by any path (admin, shell, a cascade);
    it is cancelled. Raising here aborts the whole delete."""
    from django.db.models import ProtectedError

    if instance.status in LEGAL:
        raise ProtectedError(f"La factura {instance} está timbrada ante el SAT: no se borra, se cancela.", {instance})
