"""Refunds from the point of sale: an amount, or lines and quantities, of one ticket; idempotent by a refund key.

Where the ticket stands decides what a refund does (docs/cancellation.md):

- open (in no CFDI yet): the ticket is reduced (its lines and totals), so the invoice or the global that takes it
  later carries the reduced sale; refunded in full it becomes ``void``.
- invoiced (a stamped nominative invoice holds it): a credit note (egreso) to the invoice's receptor, related to
  the invoice with TipoRelacion 01, or 03 when goods came back (RULES.md §1.5).
- in a stamped global: a credit note to público en general related to the global (01 or 03), as the late
  request's credit note (RULES.md §2.1 route 1).

The credit note carries exactly the refunded lines (``Refund.detail``); it is stamped by the queue like any
invoice. A document still being stamped, or a cancellation under way, makes the refund wait (409): the POS retries
with the same key.
"""

from __future__ import annotations

import hashlib
import json
from decimal import ROUND_DOWN, Decimal, InvalidOperation

from django.db import IntegrityError, transaction
from django.utils import timezone

from infra.events import record_event, transition
from invoicing.cfdi import catalogs as cat
from invoicing.cfdi import inputs as cfdi
from invoicing.cfdi.builder import EGRESO_DESCRIPCION, ticket_concepto
from invoicing.cfdi.catalogs import NOMBRE_PUBLICO_GENERAL, RFC_PUBLICO_GENERAL
from invoicing.cfdi.errors import CfdiError
from invoicing.cfdi.linecalc import solve
from invoicing.cfdi.money import CENT, ZERO, round_money
from invoicing.cfdi.rfc import RFC_EXTRANJERO, persona_of
from invoicing.engine_inputs import engine_tax
from invoicing.errors import InvoicingError
from invoicing.folios import folio_next
from invoicing.lifecycle import CANCELLATION, invoice_created
from invoicing.models import Invoice, InvoiceRelation, InvoiceTicket, LateRequest, Refund
from invoicing.services.late_request import holding_global
from invoicing.stamp_queue import stamp_queue_wake_on_commit
from tickets.models import Ticket, TicketLine

MAX_KEY = 100


def _error(code: str, message: str, details: dict | None = None, status: int = 422) -> InvoicingError:
    return InvoicingError(code, message, details or {}, status=status)


def _money(value, field: str) -> Decimal:
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError) as exc:
        raise _error("validation_error", "El importe no es un número.", {field: ["Número con hasta 2 decimales."]},
                     status=400) from exc
    if not amount.is_finite() or amount <= 0 or amount != amount.quantize(Decimal("0.01")):
        raise _error("validation_error", "El importe debe ser mayor que cero, con hasta 2 decimales.",
                     {field: ["Mayor que cero, hasta 2 decimales."]}, status=400)
    return amount


def _normalized_lines(lines) -> list[dict]:
    out: dict[int, Decimal] = {}
    for i, item in enumerate(lines):
        position, quantity = item.get("position"), item.get("quantity")
        try:
            quantity = Decimal(str(quantity))
        except (InvalidOperation, ValueError):
            quantity = None
        if not isinstance(position, int) or position < 1 or quantity is None or not quantity.is_finite() \
                or quantity <= 0 or quantity != quantity.quantize(Decimal("0.000001")):
            raise _error("validation_error", "Cada renglón devuelto lleva «position» (el número de renglón del ticket) "
                         "y «quantity» (mayor que cero, hasta 6 decimales).", {f"lines[{i}]": ["Renglón inválido."]},
                         status=400)
        out[position] = out.get(position, Decimal(0)) + quantity
    return [{"position": p, "quantity": str(q.normalize())} for p, q in sorted(out.items())]


def _request_hash(ticket_id, amount, lines, returned_goods) -> str:
    body = json.dumps({"ticket": str(ticket_id), "amount": str(amount) if amount is not None else None,
                       "lines": lines, "returned_goods": bool(returned_goods)}, sort_keys=True)
    return hashlib.sha256(body.encode()).hexdigest()


def ticket_refund(*, merchant, ticket_id, key: str, amount=None, lines=None, returned_goods: bool = False,
                  reason: str = "", actor: str = "") -> tuple[Refund, bool]:
    """Refund part or all of a ticket; returns (refund, created). The same key with the same request answers
    with the stored refund (created False), also when two arrive at once; with another request it is
    ``refund_key_reused`` (422)."""
    key = (key or "").strip()
    if not key or len(key) > MAX_KEY:
        raise _error("validation_error", "Indica «refund_key» (hasta 100 caracteres): identifica el reembolso para "
                     "que repetirlo no devuelva dos veces.", {"refund_key": ["Requerido, hasta 100 caracteres."]},
                     status=400)
    if (amount is None) == (not lines):
        raise _error("validation_error", "Indica el importe devuelto («amount») o los renglones y cantidades "
                     "(«lines»), no ambos.", {"amount": ["Uno de los dos."], "lines": ["Uno de los dos."]}, status=400)
    amount = _money(amount, "amount") if amount is not None else None
    lines = _normalized_lines(lines) if lines else []
    request_hash = _request_hash(ticket_id, amount, lines, returned_goods)
    existing = _replay(merchant, key, request_hash)
    if existing is not None:
        return existing, False
    try:
        with transaction.atomic():
            refund = _refund(merchant=merchant, ticket_id=ticket_id, key=key, amount=amount, lines=lines,
                             returned_goods=returned_goods, reason=(reason or "")[:500], actor=actor,
                             request_hash=request_hash)
    except IntegrityError:  # the same key raced in: its refund stands
        existing = _replay(merchant, key, request_hash)
        if existing is None:
            raise
        return existing, False
    return refund, True


def _replay(merchant, key: str, request_hash: str) -> Refund | None:
    existing = Refund.objects.filter(merchant=merchant, key=key).select_related("credit_note", "ticket").first()
    if existing is not None and existing.request_hash != request_hash:
        raise _error("refund_key_reused", "Esa llave de reembolso ya se usó para otro reembolso.",
                     {"refund_id": existing.pk, "ticket_id": existing.ticket_id})
    return existing


def _refund(*, merchant, ticket_id, key, amount, lines, returned_goods, reason, actor, request_hash) -> Refund:
    ticket_id = str(ticket_id)
    ticket = None
    if ticket_id.isascii() and ticket_id.isdigit() and len(ticket_id) <= 18:
        ticket = (Ticket.objects.select_for_update(of=("self",)).select_related("branch")
                  .filter(merchant=merchant, pk=int(ticket_id)).first())
    if ticket is None:
        raise _error("ticket_not_found", "No existe ese ticket en tu comercio.", status=404)
    if ticket.status == Ticket.Status.VOID:
        raise _error("ticket_void", "El ticket ya está cancelado: no hay nada que devolver.",
                     {"status": ticket.status}, status=409)
    if LateRequest.objects.filter(tickets=ticket, status=LateRequest.Status.IN_PROGRESS).exists():
        raise _error("ticket_busy", "El ticket está en una solicitud de factura en proceso; intenta en unos minutos.",
                     status=409)
    holder = _holder(ticket)
    credited = [r for r in ticket.refunds.all() if r.kind == Refund.Kind.CREDIT_NOTE]
    ticket_lines = list(ticket.lines.order_by("position"))
    parts = _parts(ticket_lines, amount=amount, lines=lines, credited=credited if holder else [])
    value = sum((p["amount"] - p["discount"] for p in parts), ZERO)
    remaining = ticket.total - sum((r.amount for r in credited), ZERO)
    if value > remaining:
        raise _error("refund_exceeds_ticket", f"El reembolso (${value}) es mayor que lo que queda del ticket "
                     f"(${remaining}).", {"remaining": str(remaining), "requested": str(value)})
    common = {"merchant": merchant, "ticket": ticket, "key": key, "amount": value, "lines": lines,
              "returned_goods": returned_goods, "reason": reason, "request_hash": request_hash, "actor": actor[:150],
              "detail": [_detail(p) for p in parts]}
    if holder is None:
        return _reduce(ticket, ticket_lines, parts, value, common, amount_mode=amount is not None)
    return _credit_note(ticket, holder, parts, value, common)


def _holder(ticket: Ticket) -> Invoice | None:
    """The stamped CFDI a credit note must relate to; None for an open ticket. Refuses what must wait."""
    if ticket.status == Ticket.Status.OPEN and not ticket.invoice_links.exclude(
            invoice__status__in=(Invoice.Status.FAILED, Invoice.Status.CANCELLED)).exclude(
            invoice__kind=Invoice.Kind.EGRESO).exists():
        return None
    if ticket.status == Ticket.Status.GLOBALIZED:
        holder = holding_global(ticket)
    else:
        holder = (Invoice.objects.filter(ticket_links__ticket=ticket, kind=Invoice.Kind.INGRESO)
                  .exclude(status__in=(Invoice.Status.FAILED, Invoice.Status.CANCELLED)).order_by("-pk").first())
    if holder is None:
        raise _error("ticket_busy", "El ticket está cambiando de estado; intenta en unos minutos.", status=409)
    if holder.status in CANCELLATION:
        raise _error("invoice_cancellation_in_progress", "La factura del ticket tiene una cancelación en proceso: "
                     "espera su resultado antes de devolver.", {"invoice_id": holder.pk}, status=409)
    if holder.status != Invoice.Status.STAMPED:
        raise _error("invoice_not_stamped", "La factura del ticket aún se está timbrando; repite el reembolso con la "
                     "misma llave en unos minutos.", {"invoice_id": holder.pk, "status": holder.status}, status=409)
    return holder


# --- the refunded lines --------------------------------------------------------------------------------


def _part(line: TicketLine, quantity: Decimal, amount: Decimal, discount: Decimal) -> dict:
    return {"line": line, "quantity": quantity, "amount": amount, "discount": discount}


def _parts(ticket_lines: list[TicketLine], *, amount, lines, credited) -> list[dict]:
    if lines:
        by_position = {line.position: line for line in ticket_lines}
        taken: dict[int, Decimal] = {}
        for refund in credited:
            for item in refund.lines:
                taken[item["position"]] = taken.get(item["position"], Decimal(0)) + Decimal(item["quantity"])
        parts = []
        for item in lines:
            line = by_position.get(item["position"])
            if line is None:
                raise _error("line_not_found", f"El ticket no tiene el renglón {item['position']}.",
                             {"lines": [f"Renglones del ticket: {', '.join(str(p) for p in by_position)}."]})
            quantity = Decimal(item["quantity"])
            available = line.quantity - taken.get(line.position, Decimal(0))
            if quantity > available:
                raise _error("refund_exceeds_line", f"Del renglón {line.position} quedan {available.normalize()} por "
                             f"devolver; se pidieron {quantity.normalize()}.", {"position": line.position})
            share = quantity / line.quantity
            parts.append(_part(line, quantity, round_money(line.amount * share), round_money(line.discount * share)))
        return parts
    # An amount: shared by the lines in proportion to what each charged, largest remainders first, to the cent.
    nets = [(line, line.amount - line.discount) for line in ticket_lines if line.amount - line.discount > 0]
    total = sum((net for _, net in nets), ZERO)
    if amount > total:
        raise _error("refund_exceeds_ticket", f"El reembolso (${amount}) es mayor que el ticket (${total}).",
                     {"remaining": str(total)})
    raw = [(line, net, amount * net / total) for line, net in nets]
    shares = [r.quantize(CENT, rounding=ROUND_DOWN) for _, _, r in raw]
    left = int((amount - sum(shares, ZERO)) * 100)
    order = sorted(range(len(raw)), key=lambda i: raw[i][2] - shares[i], reverse=True)
    for i in order[:left]:
        shares[i] += CENT
    parts = []
    for (line, net, _), share in zip(raw, shares, strict=True):
        if share > 0:
            quantity = max((line.quantity * share / net).quantize(Decimal("0.000001")), Decimal("0.000001"))
            parts.append(_part(line, quantity, share, ZERO))
    return parts


def _detail(part: dict) -> dict:
    line = part["line"]
    return {"position": line.position, "description": line.description, "quantity": str(part["quantity"]),
            "product_code": line.product_code, "unit_code": line.unit_code, "sku": line.sku,
            "tax_object": line.tax_object, "taxes": line.taxes, "amount": str(part["amount"]),
            "discount": str(part["discount"])}


def refund_engine_ticket(refund: Refund) -> cfdi.Ticket:
    """The credit note's input: the refunded lines only (invoicing/services/compose.py asks for it)."""
    lines = tuple(
        cfdi.TicketLine(description=d["description"], quantity=Decimal(d["quantity"]),
                        unit_price=round_money(Decimal(d["amount"]) / Decimal(d["quantity"]), 6),
                        clave_prod_serv=d["product_code"], clave_unidad=d["unit_code"], sku=d["sku"] or None,
                        discount=Decimal(d["discount"]), objeto_imp=d["tax_object"],
                        taxes=tuple(engine_tax(t) for t in d["taxes"] if not t.get("withheld")),
                        amount=Decimal(d["amount"]))
        for d in refund.detail
    )
    return cfdi.Ticket(number=refund.ticket.number, lines=lines, payment_form=refund.ticket.payment_form,
                       total=refund.amount)


def refund_engine_tickets(invoice_ids) -> dict[int, list[cfdi.Ticket]]:
    """For the credit notes among ``invoice_ids`` that a refund made: their engine tickets."""
    refunds = Refund.objects.filter(credit_note_id__in=invoice_ids).select_related("ticket")
    return {refund.credit_note_id: [refund_engine_ticket(refund)] for refund in refunds}


# --- what the refund does ------------------------------------------------------------------------------


def _reduce(ticket: Ticket, ticket_lines, parts, value, common, *, amount_mode: bool) -> Refund:
    now = timezone.now()
    if value == ticket.total:
        refund = Refund.objects.create(kind=Refund.Kind.VOIDED, **common)
        transition(ticket, entity="ticket", to=Ticket.Status.VOID, expected=Ticket.Status.OPEN, actor=common["actor"],
                   reason=f"devolución total (reembolso {refund.key})", updated_at=now)
        return refund
    for part in parts:
        line = part["line"]
        if amount_mode:
            line.discount += part["amount"]
        else:
            line.quantity -= part["quantity"]
            line.amount -= part["amount"]
            line.discount -= part["discount"]
        if line.quantity <= 0 or line.amount - line.discount <= 0:
            line.delete()
        else:
            line.save(update_fields=["quantity", "amount", "discount"])
    remaining = list(ticket.lines.order_by("position"))
    subtotal = discount = taxes = ZERO
    try:
        for line in remaining:
            result = solve(line.amount - line.discount, line.discount, line.quantity,
                           tuple(engine_tax(t) for t in line.taxes if not t.get("withheld")), line.tax_object, "")
            subtotal += result.importe
            discount += result.discount
            taxes += sum((t.importe or ZERO for t in result.taxes), ZERO)
    except CfdiError as exc:
        raise _error("refund_not_representable", "Con esa devolución los impuestos del ticket ya no cuadran dentro "
                     "de las tolerancias del SAT; devuelve renglones completos.", {"detail": str(exc)}) from exc
    before = ticket.total
    ticket.subtotal, ticket.discount, ticket.tax_total = subtotal, discount, taxes
    ticket.total = sum((line.amount - line.discount for line in remaining), ZERO)
    ticket.updated_at = now
    ticket.save(update_fields=["subtotal", "discount", "tax_total", "total", "updated_at"])
    refund = Refund.objects.create(kind=Refund.Kind.REDUCED, **common)
    record_event(merchant_id=ticket.merchant_id, entity="ticket", object_id=ticket.pk, from_status=ticket.status,
                 to_status=ticket.status, actor=common["actor"],
                 reason=f"devolución de ${value} (reembolso {refund.key}): total ${before} → ${ticket.total}",
                 data={"refund_id": refund.pk})
    return refund


def _credit_note_use(rfc: str, regime: str) -> str:
    """G02 (devoluciones, descuentos o bonificaciones) where the régimen↔UsoCFDI matrix allows it, else S01."""
    if rfc == RFC_EXTRANJERO:
        return "S01"
    allowed = {u.code for u in cat.usos_for_persona(persona_of(rfc), regime)}
    return "G02" if "G02" in allowed else "S01"


def _credit_note(ticket: Ticket, holder: Invoice, parts, value, common) -> Refund:
    branch = holder.branch
    if holder.kind == Invoice.Kind.GLOBAL:
        receptor = (RFC_PUBLICO_GENERAL, NOMBRE_PUBLICO_GENERAL, "616", branch.postal_code, "G02", [])
    else:
        receptor = (holder.receptor_rfc, holder.receptor_name, holder.receptor_tax_regime,
                    holder.receptor_postal_code, _credit_note_use(holder.receptor_rfc, holder.receptor_tax_regime),
                    list(holder.receptor_emails))
    refund = Refund(kind=Refund.Kind.CREDIT_NOTE, **common)
    try:
        concepto, _ = ticket_concepto(refund_engine_ticket(refund), "refund", clave_prod_serv="84111506",
                                      clave_unidad="ACT", descripcion=EGRESO_DESCRIPCION)
    except CfdiError as exc:
        raise _error("refund_not_representable", "Esa devolución no se puede expresar en una nota de crédito "
                     "dentro de las tolerancias del SAT; devuelve renglones completos.", {"detail": str(exc)}) from exc
    taxes = sum((t.importe or ZERO for t in concepto.traslados), ZERO)
    note = Invoice.objects.create(
        merchant_id=ticket.merchant_id, branch=branch, kind=Invoice.Kind.EGRESO, serie=branch.credit_note_serie,
        folio=folio_next(merchant_id=ticket.merchant_id, serie=branch.credit_note_serie),
        receptor_rfc=receptor[0], receptor_name=receptor[1], receptor_tax_regime=receptor[2],
        receptor_postal_code=receptor[3], receptor_cfdi_use=receptor[4], receptor_emails=receptor[5],
        currency=holder.currency, payment_form=holder.payment_form, payment_method="PUE",
        subtotal=concepto.importe, discount=concepto.descuento or ZERO, tax_total=taxes, total=value,
    )
    InvoiceTicket.objects.create(invoice=note, ticket=ticket, amount=value)
    relation = "03" if common["returned_goods"] else "01"
    InvoiceRelation.objects.create(invoice=note, relation_type=relation, related_uuid=holder.uuid,
                                   related_invoice=holder)
    refund.credit_note = note
    refund.save()
    invoice_created(note, actor=common["actor"],
                    reason=f"nota de crédito por ${value} del ticket {ticket.number} (reembolso {refund.key}), "
                           f"TipoRelacion {relation} a {holder}")
    record_event(merchant_id=ticket.merchant_id, entity="ticket", object_id=ticket.pk, from_status=ticket.status,
                 to_status=ticket.status, actor=common["actor"],
                 reason=f"devolución de ${value} (reembolso {refund.key}): nota de crédito #{note.pk}",
                 data={"refund_id": refund.pk, "credit_note_id": note.pk})
    stamp_queue_wake_on_commit()
    return refund
