"""Ticket business logic: registration (one, or batches), the self-invoicing window, expire, void, API keys.

Views, admin actions, commands and tasks call these; the heavy lifting of ingestion lives in tickets/ingest/,
and a batch's lifecycle (``batch_submit``, ``batch_process``, ``batch_sweep``) in tickets/ingest/lifecycle.py.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass, field
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from infra.api.auth import KEY_PREFIX_TAG, hash_key
from infra.errors import Conflict, InvalidInput, NotFound
from infra.events import record_event, transition
from tickets.eligibility import ticket_eligibility, window_open_q
from tickets.exchange_rates import ExchangeRate, validate_currency
from tickets.ingest.batch import Item, ingest, self_invoice_url
from tickets.ingest.drafts import normalize
from tickets.ingest.lifecycle import batch_process, batch_submit, batch_sweep
from tickets.ingest.normalize import _CURRENCY_RE, Context, TicketRejected, _decimal, _Errors, _line
from tickets.ingest.store import CREATED, expires_at_for_day, store_drafts
from tickets.models import ApiKey, Branch, Merchant, Ticket
from tickets.zones import zone_name

__all__ = ["LineInput", "api_key_create", "api_key_revoke", "batch_process", "batch_submit", "batch_sweep",
           "self_invoice_url", "ticket_create", "ticket_expire", "ticket_expires_at", "ticket_register", "ticket_validate",
           "ticket_void"]


def ticket_expires_at(*, merchant: Merchant, sold_at: dt.datetime) -> dt.datetime:
    """End of the self-invoicing window, computed in the merchant's time zone."""
    return expires_at_for_day(merchant, sold_at.astimezone(merchant.tzinfo).date())


# --- registration ----------------------------------------------------------------------------------------


@dataclass
class LineInput:
    product_code: str
    unit_code: str
    description: str
    quantity: Decimal
    unit_price: Decimal  # as printed (tax-inclusive when prices_include_tax)
    taxes: list[dict] = field(default_factory=lambda: [{"tax": "002", "factor": "Tasa", "rate": "0.160000"}])
    discount: Decimal = Decimal("0")
    tax_object: str = "02"
    prices_include_tax: bool = True
    sku: str = ""

    def as_payload(self) -> dict:
        return {"product_code": self.product_code, "unit_code": self.unit_code, "description": self.description,
                "quantity": self.quantity, "unit_price": self.unit_price, "taxes": self.taxes,
                "discount": self.discount, "tax_object": self.tax_object,
                "prices_include_tax": self.prices_include_tax, "sku": self.sku}


def _line_total(line: LineInput) -> Decimal:
    pair = _line(line.as_payload(), 0, errs := _Errors())
    if pair is None:
        raise InvalidInput(details=dict(errs))
    return pair[0].amount - pair[0].discount


@transaction.atomic
def ticket_create(*, merchant: Merchant, branch: Branch, number: str, sold_at: dt.datetime,
                  lines: list[LineInput], payment_form: str = "01", currency: str = "MXN",
                  exchange_rate: Decimal | None = None, source: str = Ticket.Source.ADMIN,
                  actor: str = "") -> Ticket:
    """Create a ticket from lines as a POS prints them (the total is their sum). IntegrityError if the key exists."""
    payload = {"branch": branch.code, "number": number, "sold_at": sold_at.isoformat(), "currency": currency,
               "payment_form": payment_form, "lines": [line.as_payload() for line in lines],
               "total": sum((_line_total(line) for line in lines), Decimal(0))}
    if exchange_rate is not None:
        payload["exchange_rate"] = exchange_rate
    ctx = Context(merchant, [branch])
    ctx.now = timezone.now() + dt.timedelta(days=3660)  # admin/demo data may be dated ahead
    try:
        draft = normalize(payload, ctx)
    except TicketRejected as exc:
        raise InvalidInput(details=exc.errors) from exc
    result = store_drafts(merchant=merchant, drafts=[draft], branches=ctx.branches, source=source, actor=actor)[0]
    if result.status != CREATED:
        raise IntegrityError("ticket_number_unique_per_branch")
    return Ticket.objects.get(pk=result.ticket_id)


@dataclass
class Registration:
    ticket: Ticket
    created: bool
    entry: dict


def ticket_register(*, merchant: Merchant, payload, actor: str = "", source: str = Ticket.Source.API,
                    default_branch: Branch | None = None) -> Registration:
    """One ticket from the POS. Replay of the same data → the stored ticket; different data → Conflict (409).

    ``default_branch``: the API key's branch, for a ticket that names none."""
    outcome = ingest(merchant=merchant, items=[Item({}, payload)], source=source, actor=actor,
                     default_branch=default_branch)
    entry = outcome.entries[0]
    if entry["status"] == "rejected":
        if entry["code"] == "conflict":
            raise Conflict(entry["errors"]["ticket"][0], code="ticket_conflict",
                           details={"fields": entry["differences"], "ticket_id": entry["ticket_id"]})
        raise InvalidInput("El ticket tiene datos inválidos.", code="invalid_ticket", details=entry["errors"])
    ticket = Ticket.objects.select_related("branch").get(pk=entry["ticket_id"])
    return Registration(ticket, entry["status"] == CREATED, entry)


# --- batches: tickets/ingest/lifecycle.py (received → processing → done | failed, leases, resend, sweeper) ----

# --- queries and lifecycle ------------------------------------------------------------------------------------


def merchant_ticket(*, merchant: Merchant, ticket_id) -> Ticket:
    ticket_id = str(ticket_id)
    # isascii: str.isdigit() accepts «²» and other digits int() refuses.
    if not (ticket_id.isascii() and ticket_id.isdigit()) or len(ticket_id) > 18:
        raise NotFound("No existe ese ticket en tu comercio.", code="ticket_not_found")
    ticket = Ticket.objects.select_related("branch").filter(merchant=merchant, pk=int(ticket_id)).first()
    if ticket is None:
        raise NotFound("No existe ese ticket en tu comercio.", code="ticket_not_found")
    return ticket


@transaction.atomic
def ticket_expire(*, merchant: Merchant, ticket_id: int | str, actor: str = "") -> Ticket:
    """End the self-invoicing window now; an open ticket still goes into the global invoice."""
    ticket = merchant_ticket(merchant=merchant, ticket_id=ticket_id)
    if ticket.status in (Ticket.Status.INVOICED, Ticket.Status.VOID):
        raise Conflict(f"El ticket ya está {ticket.get_status_display().lower()}: no hay plazo que terminar.",
                       code="ticket_not_expirable", details={"status": ticket.status})
    now = timezone.now()
    if Ticket.objects.filter(window_open_q(now), pk=ticket.pk).update(expires_at=now, updated_at=now):
        ticket.expires_at = now
        record_event(merchant_id=merchant.pk, entity="ticket", object_id=ticket.pk, from_status=ticket.status,
                     to_status=ticket.status, actor=actor, reason="plazo de autofacturación terminado por el comercio")
    else:
        ticket.refresh_from_db(fields=["expires_at"])
    return ticket


_NOT_VOIDABLE = {
    Ticket.Status.INVOICED: "El ticket ya fue facturado: cancela la factura en lugar del ticket.",
    Ticket.Status.GLOBALIZED: "El ticket ya está en una factura global timbrada; emite una nota de crédito.",
}


@transaction.atomic
def ticket_void(*, merchant: Merchant, ticket_id: int | str, actor: str = "", reason: str = "") -> Ticket:
    """Returned or cancelled at the POS: never invoiced, never in a global. Refused once invoiced or globalized."""
    ticket = merchant_ticket(merchant=merchant, ticket_id=ticket_id)
    if ticket.status == Ticket.Status.VOID:
        return ticket
    if ticket.invoice_links.exists():  # locked to a pending invoice being stamped
        raise Conflict(_NOT_VOIDABLE[Ticket.Status.INVOICED], code="ticket_not_voidable",
                       details={"status": ticket.status})
    if not transition(ticket, entity="ticket", to=Ticket.Status.VOID, expected=[Ticket.Status.OPEN], actor=actor,
                      reason=reason or "cancelado en el punto de venta", updated_at=timezone.now()):
        ticket.refresh_from_db()
        if ticket.status == Ticket.Status.VOID:
            return ticket
        raise Conflict(_NOT_VOIDABLE.get(ticket.status, "El ticket no se puede cancelar."),
                       code="ticket_not_voidable", details={"status": ticket.status})
    return ticket


@dataclass
class Validation:
    can_self_invoice: bool
    code: str
    message: str
    ticket: Ticket | None = None


def zone_of(branch: Branch, merchant: Merchant):
    """The branch's local zone (its postal code's in SAT's catalog, else the merchant's): receipts print
    dates in it."""
    import zoneinfo

    return zoneinfo.ZoneInfo(zone_name(branch.postal_code, merchant.time_zone))


def ticket_validate(*, merchant: Merchant, number: str, total: Decimal | None = None, date: dt.date | None = None,
                    branch_code: str | None = None) -> Validation:
    """Would the portal let a shopper self-invoice this ticket? If not, why (in Spanish)."""
    qs = Ticket.objects.select_related("branch").filter(merchant=merchant, number=number.strip())
    if branch_code:
        qs = qs.filter(branch__code=branch_code)
    found = list(qs[:2])
    if not found:
        return Validation(False, "not_found", "No existe un ticket con ese número.")
    if len(found) > 1:
        return Validation(False, "ambiguous", "Ese número existe en varias sucursales: indica la sucursal (branch).")
    ticket = found[0]
    if total is not None and ticket.total != total:
        return Validation(False, "total_mismatch", "El total no coincide con el ticket.", ticket)
    if date is not None and ticket.sold_at.astimezone(zone_of(ticket.branch, merchant)).date() != date:
        return Validation(False, "date_mismatch", "La fecha no coincide con la del ticket.", ticket)
    verdict = ticket_eligibility(ticket, merchant=merchant)
    return Validation(verdict.ok, verdict.code, verdict.message, ticket)


# --- API keys ------------------------------------------------------------------------------------------------


@transaction.atomic
def api_key_create(*, merchant: Merchant, name: str, scopes: list[str], actor: str = "",
                   branch: Branch | None = None) -> tuple[ApiKey, str]:
    """A new key; the plain key is returned once and never stored (only its SHA-256). ``branch``: the branch
    the POS using it belongs to (its tickets without a branch are registered there)."""
    if branch is not None and branch.merchant_id != merchant.pk:
        raise InvalidInput(details={"branch": ["La sucursal es de otro comercio."]})
    valid = set(ApiKey.Scope.values)
    scopes = list(dict.fromkeys(s.strip() for s in scopes if s.strip()))
    unknown = [s for s in scopes if s not in valid]
    if unknown or not scopes:
        raise InvalidInput(details={"scopes": [f"Permisos válidos: {', '.join(sorted(valid))}."]})
    if not name or not name.strip():
        raise InvalidInput(details={"name": ["Ponle un nombre a la llave (p. ej. «POS tienda centro»)."]})
    alphabet = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    prefix = KEY_PREFIX_TAG + "".join(secrets.choice(alphabet) for _ in range(8))
    plain = prefix + secrets.token_urlsafe(30)
    key = ApiKey.objects.create(merchant=merchant, name=name.strip()[:100], prefix=prefix, key_hash=hash_key(plain),
                                scopes=scopes, branch=branch)
    where = f", sucursal {branch.code}" if branch is not None else ""
    record_event(merchant_id=merchant.pk, entity="api_key", object_id=key.pk, from_status="", to_status="active",
                 actor=actor, reason=f"llave «{key.name}» creada ({', '.join(scopes)}{where})")
    return key, plain


@transaction.atomic
def api_key_revoke(*, api_key: ApiKey, actor: str = "") -> bool:
    now = timezone.now()
    if not ApiKey.objects.filter(pk=api_key.pk, revoked_at__isnull=True).update(revoked_at=now):
        return False
    api_key.revoked_at = now
    record_event(merchant_id=api_key.merchant_id, entity="api_key", object_id=api_key.pk, from_status="active",
                 to_status="revoked", actor=actor, reason=f"llave «{api_key.name}» revocada")
    return True



def demo_api_key(*, slug: str = "demo") -> str | None:
    """The demo merchant's API key, created once and kept under VAR_DIR (like the demo admin password)."""
    from pathlib import Path

    merchant = Merchant.objects.filter(slug=slug).first()
    if merchant is None:
        return None
    path = Path(settings.VAR_DIR) / "demo-api-key"
    if path.exists():
        plain = path.read_text(encoding="utf-8").strip()
        if ApiKey.objects.filter(merchant=merchant, key_hash=hash_key(plain), revoked_at__isnull=True).exists():
            return plain
    _, plain = api_key_create(merchant=merchant, name="Demo", scopes=list(ApiKey.Scope.values), actor="seed_demo")
    path.write_text(plain, encoding="utf-8")
    path.chmod(0o600)
    return plain


def exchange_rate_set(*, merchant, currency, valid_from, rate, source: str = ExchangeRate.Source.DOF_FIX,
                      actor: str = "") -> tuple[ExchangeRate, bool]:
    """Record (or correct) the merchant's rate of ``currency`` from local date ``valid_from``. Returns
    (row, created). Bad input → InvalidInput with the field."""
    errs = _Errors()
    code = currency if isinstance(currency, str) else ""
    code = code.upper() if _CURRENCY_RE.fullmatch(code) else code  # anything else the catalog refuses, as sent
    try:
        validate_currency(code)
    except ValidationError as exc:
        errs.add("currency", exc.messages[0])
    day = valid_from
    if isinstance(valid_from, str):
        try:
            day = dt.date.fromisoformat(valid_from.strip())
        except ValueError:
            day = None
    if not isinstance(day, dt.date) or isinstance(day, dt.datetime):
        errs.add("valid_from", "Fecha AAAA-MM-DD del primer día al que aplica el tipo de cambio.")
    value = _decimal(rate, "rate", errs, places=6, positive=True)
    if value is not None and value >= Decimal("1e12"):
        errs.add("rate", "El tipo de cambio es demasiado grande.")
    if source not in ExchangeRate.Source.values:
        errs.add("source", f"Fuente: {', '.join(ExchangeRate.Source.values)}.")
    if errs:
        raise InvalidInput(details=dict(errs))
    value = value.quantize(Decimal("0.000001"))
    with transaction.atomic():
        row, created = ExchangeRate.objects.select_for_update().get_or_create(
            merchant=merchant, currency=code, valid_from=day, defaults={"rate": value, "source": source})
        if not created and (row.rate, row.source) != (value, source):
            old = row.rate
            row.rate, row.source = value, source
            row.save(update_fields=["rate", "source", "updated_at"])
            record_event(merchant_id=merchant.pk, entity="exchange_rate", object_id=row.pk, from_status=str(old),
                         to_status=str(value), actor=actor, reason=f"{code} desde {day:%d/%m/%Y} corregido")
        elif created:
            record_event(merchant_id=merchant.pk, entity="exchange_rate", object_id=row.pk, from_status="",
                         to_status=str(value), actor=actor, reason=f"{code} desde {day:%d/%m/%Y}")
    return row, created
