"""Stamping with a secondary PAC: which PAC gets each document, and when it is safe to send one elsewhere.

Sending a sealed XML to a second PAC is safe only when the first certainly holds no stamp for it; otherwise the
sale may end with two UUIDs. What the first PAC may hold is what its adapter says (``PacError.outcome``), and
``decide`` turns that into one of five actions (the table is in docs/pac.md):

- a stamp (new, or 307 with the earlier one) is stored: after a lost answer that is the recovery;
- ``invalid`` (the document itself is refused) fails the invoice: every PAC would refuse it;
- ``not_sent`` / ``refused`` (the PAC never saw it, or answered refusing the request as a whole) fail over to the
  other PAC at once, when there is one that answers; otherwise retry later, or fail if it is permanent;
- ``unknown`` (read timeout, dropped connection, 5xx) and ``held`` (307 without the stamp) pin the invoice to that
  PAC: a doubt (StampDoubt) is written before anything else, and the same sealed XML goes to the same PAC again
  (once at once if its circuit is closed, then with the usual backoff), never elsewhere. A timeout is never sent
  straight to the secondary;
- a pinned invoice is released only when that PAC is asked again and *answers* without a stamp (``refused``, or
  ``invalid``); ``not_sent`` on a recheck says nothing about the lost request and keeps the pin. The doubt then
  stays open for late checks (``doubts_check_due``): the PAC is asked later whether it stamped the lost request
  after all (``Pac.find_stamp``); such a stamp is an extra one and is cancelled (services/duplicates.py).

New documents go to the primary while its circuit (services/pac_circuit.py) is closed, to the secondary while it
is open, and one of them probes the primary when the pause is over. Each change of where a merchant's new
documents go is a switch: PacRoute changes with a guarded update and an event row (entity ``pac``).

Only merchants with a secondary PAC come here; the others stamp as before (services/stamping.py).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections import defaultdict
from dataclasses import dataclass, field

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from infra.events import record_event
from invoicing import pac as pacs
from invoicing.lifecycle import IN_FLIGHT, LEGAL
from invoicing.models import Invoice, PacCircuit, PacRoute, StampDoubt
from invoicing.pac import PacError
from invoicing.pac.base import HELD, INVALID, NOT_SENT, REFUSED, UNKNOWN, StampResult
from invoicing.services.duplicates import extra_stamp_found
from invoicing.services.pac_circuit import circuit_probe_claim, circuit_record, circuits_read

log = logging.getLogger("invoicing.pac")

# Actions of the decision table.
STORE = "store"  # keep this stamp (after a lost answer: the recovery)
RECHECK = "recheck"  # ask the same PAC again with the same sealed XML; never another one
FAIL_OVER = "fail_over"  # send it to the other PAC now
RETRY = "retry"  # try again later, wherever the circuits say
FAIL = "fail"  # the document is at fault: fail the invoice

D = StampDoubt.Status
CLOSED = PacCircuit.State.CLOSED
ROUNDS = 4  # calls per document and batch at most: first, recheck, failover, the failover's recheck


def decide(outcome: StampResult | PacError, *, pinned: bool, other_available: bool) -> str:
    """What to do with one document after one PAC call (docs/pac.md, "How failover decides").

    ``pinned``: this PAC has an unanswered request for the document (an open doubt). ``other_available``: the
    merchant's other PAC exists, was not tried for it in this batch and its circuit is closed.
    """
    if not isinstance(outcome, PacError):
        return STORE
    kind = outcome.outcome
    if kind in (UNKNOWN, HELD):
        return RECHECK
    if kind == INVALID:
        return FAIL
    if kind not in (NOT_SENT, REFUSED):
        raise ValueError(f"unknown PAC outcome {kind!r}")
    if kind == NOT_SENT and pinned:
        return RECHECK  # nobody answered: the lost request is still unaccounted for
    if other_available:
        return FAIL_OVER  # never reached it, or it answered the same sealed XML without a stamp
    return FAIL if outcome.permanent else RETRY


@dataclass
class _Batch:
    merchant: object
    pacs: dict  # name → Pac
    order: list  # [primary name, secondary name]
    circuits: dict  # circuit key → PacCircuit
    pins: dict  # invoice id → PAC name (open doubts)
    tried: dict = field(default_factory=lambda: defaultdict(set))
    rechecked: set = field(default_factory=set)
    probes: dict = field(default_factory=dict)  # PAC name → True (we hold its probe) / False (asked, not ours)
    final: dict = field(default_factory=dict)  # invoice id → (PAC name, outcome, ms)
    notes: dict = field(default_factory=dict)  # invoice id → why it went to the PAC that stamped it

    def circuit(self, name: str) -> PacCircuit:
        return self.circuits[self.pacs[name].circuit_key]

    def other(self, name: str) -> str:
        return self.order[1] if name == self.order[0] else self.order[0]

    def usable(self, name: str) -> bool:
        """Closed, or this batch holds its probe and has not used it yet."""
        if self.circuit(name).state == CLOSED:
            return True
        if name not in self.probes:
            self.probes[name] = circuit_probe_claim(self.pacs[name])
            return self.probes[name]
        return False

    def use_probe(self, name: str) -> None:
        if self.circuit(name).state != CLOSED and self.probes.get(name):
            self.probes[name] = False  # one document probes; the rest of the batch goes elsewhere


def stamp_with_failover(merchant, invoices: list[Invoice]) -> list[tuple[str, list[Invoice], list, int | None,
                                                                           dict[int, str]]]:
    """Stamp a merchant's batch across its two PACs. Returns, per PAC that answered last, the invoices, their
    outcomes (a StampResult or a PacError each, for ``_store_outcomes``), the PAC's answer time per document,
    and notes for the stamped event of invoices that went to the secondary."""
    # Through the module, as stamping.py does: a test pointing invoicing.pac at a fake is heard.
    primary, secondary = pacs.get_pac(merchant), pacs.get_secondary_pac(merchant)
    batch = _Batch(
        merchant=merchant, pacs={primary.name: primary, secondary.name: secondary}, order=[primary.name, secondary.name],
        circuits=circuits_read([primary, secondary]),
        pins=dict(StampDoubt.objects.filter(invoice_id__in=[i.pk for i in invoices], status=D.OPEN)
                  .values_list("invoice_id", "pac")),
    )
    queue: dict[str, list[Invoice]] = defaultdict(list)
    # Pinned invoices first: one of them is the best probe of an open circuit (it may only go there anyway).
    for invoice in sorted(invoices, key=lambda i: i.pk not in batch.pins):
        target = _first_target(batch, invoice)
        if target is not None:
            queue[target].append(invoice)
    timings: dict[str, list[int]] = defaultdict(list)
    for _ in range(ROUNDS):
        if not queue:
            break
        queue = _round(batch, queue, timings)
    for name, waiting in queue.items():  # out of rounds: they wait for the next claim
        for invoice in waiting:
            pinned = batch.pins.get(invoice.pk)
            batch.final.setdefault(invoice.pk, (name, _waiting_error(batch, pinned) if pinned else PacError(
                "pac_retry", "Reintentaremos el timbrado en unos momentos.", permanent=False, outcome=NOT_SENT),
                None))
    _route_update(batch)
    groups: dict[str, tuple[list, list]] = defaultdict(lambda: ([], []))
    for invoice in invoices:
        name, outcome, _ms = batch.final[invoice.pk]
        groups[name][0].append(invoice)
        groups[name][1].append(outcome)
    return [(name, group, outcomes, round(sum(timings[name]) / len(timings[name])) if timings[name] else None,
             batch.notes) for name, (group, outcomes) in groups.items()]


def _first_target(batch: _Batch, invoice: Invoice) -> str | None:
    pinned = batch.pins.get(invoice.pk)
    if pinned is not None and pinned not in batch.pacs:
        # The merchant took away the PAC that may hold the stamp: nobody can ask it any more. The invoice goes
        # where the circuits say, and the event says what could not be checked.
        log.warning("invoice %s pinned to %s, which merchant %s no longer uses", invoice.pk, pinned,
                    batch.merchant.pk)
        doubt_settle(invoice, pinned, "el comercio ya no usa ese PAC: no se puede verificar")
        record_event(merchant_id=invoice.merchant_id, entity="invoice", object_id=invoice.pk,
                     from_status=invoice.status, to_status=invoice.status, actor="timbrado",
                     reason=f"Esta factura pudo quedar timbrada en «{pinned}», que el comercio ya no usa: se timbra "
                            "con su PAC actual. Revisa en el portal de ese PAC que no exista otro folio fiscal de esta "
                            "venta.", data={"pac": pinned, "doubt": "unverifiable"})
        pinned = None
        batch.pins.pop(invoice.pk)
    for name in [pinned] if pinned else batch.order:
        if batch.usable(name):
            batch.use_probe(name)
            if name != batch.order[0] and not pinned:
                batch.notes[invoice.pk] = (f"{batch.pacs[batch.order[0]].label} no responde "
                                           f"({batch.circuit(batch.order[0]).last_error or 'circuito abierto'})")
            return name
    batch.final[invoice.pk] = (pinned or batch.order[0], _waiting_error(batch, pinned), None)
    return None


def _waiting_error(batch: _Batch, pinned: str | None) -> PacError:
    if pinned:
        label = batch.pacs[pinned].label
        return PacError("pac_wait", f"{label} no responde y esta factura pudo quedar timbrada allí: se le volverá a "
                        f"enviar a {label} (nunca a otro PAC) en cuanto responda.", permanent=False, outcome=UNKNOWN)
    labels = " ni ".join(batch.pacs[name].label for name in batch.order)
    return PacError("pac_down", f"Ni {labels} responden. Reintentaremos en unos minutos.", permanent=False,
                    outcome=NOT_SENT)


def _round(batch: _Batch, queue: dict[str, list[Invoice]], timings) -> dict[str, list[Invoice]]:
    following: dict[str, list[Invoice]] = defaultdict(list)
    for name, invoices in queue.items():
        pac = batch.pacs[name]
        started = time.monotonic()
        try:
            outcomes = pac.stamp_many([bytes(invoice.sealed_xml) for invoice in invoices])
        except PacError as exc:
            outcomes = [exc] * len(invoices)
        except Exception as exc:  # noqa: BLE001 - an adapter's surprise may come after sending: a lost answer
            log.exception("PAC %s failed on a batch of %d", name, len(invoices))
            outcomes = [PacError("internal", f"Error inesperado al timbrar ({type(exc).__name__}); se reintentará.",
                                 permanent=False, outcome=UNKNOWN)] * len(invoices)
        ms = round((time.monotonic() - started) * 1000 / max(len(invoices), 1))
        timings[name].append(ms)
        batch.circuits[pac.circuit_key] = circuit_record(pac, outcomes, known=batch.circuit(name))
        for invoice, outcome in zip(invoices, outcomes, strict=True):
            _after_call(batch, invoice, name, outcome, ms, following)
    return following


def _after_call(batch: _Batch, invoice: Invoice, name: str, outcome, ms: int, following) -> None:
    batch.tried[invoice.pk].add(name)
    other = batch.other(name)
    pinned = batch.pins.get(invoice.pk) == name
    other_available = other not in batch.tried[invoice.pk] and batch.circuit(other).state == CLOSED
    action = decide(outcome, pinned=pinned, other_available=other_available)
    if action == STORE:
        if pinned:
            doubt_settle(invoice, name, f"timbre recuperado de {batch.pacs[name].label}: {outcome.uuid}")
        batch.final[invoice.pk] = (name, outcome, ms)
    elif action == RECHECK:
        if not pinned:
            doubt_open(invoice, batch.pacs[name], outcome)
            batch.pins[invoice.pk] = name
        if (invoice.pk not in batch.rechecked and outcome.outcome != NOT_SENT
                and batch.circuit(name).state == CLOSED):
            batch.rechecked.add(invoice.pk)
            following[name].append(invoice)
        else:
            batch.final[invoice.pk] = (name, outcome, ms)
    elif action == FAIL_OVER:
        if pinned:
            doubt_clear(invoice, batch.pacs[name], outcome)
            batch.pins.pop(invoice.pk, None)
        batch.notes[invoice.pk] = f"{batch.pacs[name].label}: {outcome.code}"
        following[other].append(invoice)
    else:
        if pinned and action == FAIL:
            doubt_clear(invoice, batch.pacs[name], outcome)  # it refuses the document now; a late stamp may exist
        batch.final[invoice.pk] = (name, outcome, ms)


# --- doubts: invoices whose answer was lost -----------------------------------------------------------------


def doubt_open(invoice: Invoice, pac, outcome: PacError) -> None:
    """Pin the invoice to ``pac``: written before any other decision, so another worker sees the pin too."""
    now = timezone.now()
    reopened = StampDoubt.objects.filter(invoice=invoice, pac=pac.name, status__in=[D.OPEN, D.CLEARED]).update(
        status=D.OPEN, next_check_at=None, updated_at=now)
    if not reopened:
        try:
            with transaction.atomic():
                StampDoubt.objects.create(merchant_id=invoice.merchant_id, invoice=invoice, pac=pac.name,
                                          first_error=outcome.code[:40])
        except IntegrityError:
            return  # another worker pinned it first
    record_event(merchant_id=invoice.merchant_id, entity="invoice", object_id=invoice.pk,
                 from_status=invoice.status, to_status=invoice.status, actor="timbrado",
                 reason=f"{pac.label} no dio respuesta ({outcome.code}): pudo quedar timbrada allí. Se le vuelve a "
                        "enviar el mismo XML sellado antes de usar otro PAC.",
                 data={"pac": pac.name, "doubt": D.OPEN, "pac_error": outcome.code[:40]})


def doubt_clear(invoice: Invoice, pac, outcome: PacError) -> None:
    """The PAC answered the same sealed XML without a stamp: the invoice may go elsewhere; the lost request is
    looked for later, in case the PAC stamped it late."""
    now = timezone.now()
    first = settings.PAC_LATE_STAMP_CHECKS[0] if settings.PAC_LATE_STAMP_CHECKS else 0
    if StampDoubt.objects.filter(invoice=invoice, pac=pac.name, status=D.OPEN).update(
            status=D.CLEARED, checks=0, next_check_at=now + dt.timedelta(seconds=first), updated_at=now,
            result=f"respondió sin timbre ({outcome.code})"[:300]):
        record_event(merchant_id=invoice.merchant_id, entity="invoice", object_id=invoice.pk,
                     from_status=invoice.status, to_status=invoice.status, actor="timbrado",
                     reason=f"{pac.label} respondió sin timbre al reenvío ({outcome.code}): la factura puede "
                            f"timbrarse con otro PAC. Se verificará más tarde que {pac.label} no la haya timbrado.",
                     data={"pac": pac.name, "doubt": D.CLEARED, "pac_error": outcome.code[:40]})


def doubt_settle(invoice: Invoice, pac_name: str, result: str) -> None:
    StampDoubt.objects.filter(invoice=invoice, pac=pac_name, status__in=[D.OPEN, D.CLEARED]).update(
        status=D.SETTLED, next_check_at=None, result=result[:300], updated_at=timezone.now())


def doubts_after_failure(invoice_ids: list[int]) -> None:
    """Invoices that failed for good while pinned: no more resends, but their lost request may still have
    stamped, so it is looked for later."""
    now = timezone.now()
    first = settings.PAC_LATE_STAMP_CHECKS[0] if settings.PAC_LATE_STAMP_CHECKS else 0
    StampDoubt.objects.filter(invoice_id__in=invoice_ids, status=D.OPEN).update(
        status=D.CLEARED, checks=0, next_check_at=now + dt.timedelta(seconds=first), updated_at=now,
        result="la factura se rechazó sin respuesta del PAC")


def doubts_check_due(*, limit: int = 200) -> int:
    """Periodic: ask each PAC that answered without a stamp after a lost request whether it stamped it late.
    Returns how many were checked."""
    now = timezone.now()
    ids = list(StampDoubt.objects.filter(status=D.CLEARED, next_check_at__lte=now)
               .order_by("next_check_at").values_list("pk", flat=True)[:limit])
    checked = 0
    for pk in ids:
        lease = now + dt.timedelta(seconds=settings.PAC_CIRCUIT_PROBE_SECONDS)
        if not StampDoubt.objects.filter(pk=pk, status=D.CLEARED, next_check_at__lte=now).update(next_check_at=lease):
            continue  # another worker took it
        try:
            doubt_check(StampDoubt.objects.select_related("invoice__merchant").get(pk=pk))
        except Exception:  # noqa: BLE001 - one doubt's surprise must not stop the others; its lease paces it
            log.exception("late-stamp check of doubt %s failed", pk)
        checked += 1
    return checked


def doubt_check(doubt: StampDoubt) -> str:
    """One late check of a cleared doubt; returns what it found."""
    invoice = doubt.invoice
    schedule = settings.PAC_LATE_STAMP_CHECKS or [0]
    if invoice.pac == doubt.pac and invoice.status in LEGAL:
        doubt_settle(invoice, doubt.pac, "timbrada por el mismo PAC")
        return "same_pac"
    pac = pacs.pac_named(invoice.merchant, doubt.pac)
    if pac.name != doubt.pac:
        doubt_settle(invoice, doubt.pac, "el comercio ya no usa ese PAC: no se puede verificar")
        return "unverifiable"
    try:
        found = pac.find_stamp(bytes(invoice.sealed_xml))
    except NotImplementedError:
        doubt_settle(invoice, doubt.pac, f"{pac.label} no permite consultar un timbre sin timbrar: no verificable")
        record_event(merchant_id=invoice.merchant_id, entity="invoice", object_id=invoice.pk,
                     from_status=invoice.status, to_status=invoice.status, actor="timbrado",
                     reason=f"{pac.label} no permite consultar si timbró tarde la solicitud sin respuesta; revisa en "
                            "su portal que no exista un segundo folio fiscal de esta venta.",
                     data={"pac": doubt.pac, "doubt": "unverifiable"})
        return "unverifiable"
    except PacError as exc:
        StampDoubt.objects.filter(pk=doubt.pk).update(
            next_check_at=timezone.now() + dt.timedelta(seconds=schedule[min(doubt.checks, len(schedule) - 1)]),
            result=f"no se pudo consultar ({exc.code})"[:300], updated_at=timezone.now())
        return "error"
    if found is None:
        checks = doubt.checks + 1
        if checks >= len(schedule):
            doubt_settle(invoice, doubt.pac, f"{pac.label} no tiene timbre de esta venta ({checks} consultas)")
            return "none"
        StampDoubt.objects.filter(pk=doubt.pk).update(
            checks=checks, next_check_at=doubt.created_at + dt.timedelta(seconds=schedule[checks]),
            result=f"sin timbre en {pac.label} ({checks} consultas)", updated_at=timezone.now())
        return "none"
    if invoice.status in IN_FLIGHT:
        # Not stamped elsewhere yet: pin it back, and the next attempt takes this stamp (307) from that PAC.
        StampDoubt.objects.filter(pk=doubt.pk).update(status=D.OPEN, next_check_at=None, updated_at=timezone.now(),
                                                      result=f"timbre tardío en {pac.label}: {found.uuid}")
        return "repinned"
    extra_stamp_found(invoice=invoice, result=found, pac_name=doubt.pac, how="check")
    doubt_settle(invoice, doubt.pac, f"timbre tardío encontrado en {pac.label}: {found.uuid}")
    return "extra"


# --- routes: where a merchant's new documents go ------------------------------------------------------------


def _route_update(batch: _Batch) -> None:
    primary, secondary = batch.order
    circuit = batch.circuit(primary)
    wanted = PacRoute.Route.PRIMARY if circuit.state == CLOSED else PacRoute.Route.SECONDARY
    merchant = batch.merchant
    current = PacRoute.objects.filter(merchant=merchant).values_list("route", flat=True).first()
    if (current or PacRoute.Route.PRIMARY) == wanted:
        return
    p, s = batch.pacs[primary], batch.pacs[secondary]
    if wanted == PacRoute.Route.SECONDARY:
        from_pac, to_pac = primary, secondary
        reason = (f"{p.label} no responde ({circuit.last_error or 'circuito abierto'}): las facturas nuevas se timbran "
                  f"con {s.label}.")
    else:
        from_pac, to_pac = secondary, primary
        reason = f"{p.label} volvió a timbrar: las facturas nuevas regresan a {p.label}."
    route_switch(merchant=merchant, expected=current, to=wanted, from_pac=from_pac, to_pac=to_pac, reason=reason,
                 data={"circuit": circuit.state, "failures": circuit.failures})


def route_switch(*, merchant, expected: str | None, to: str, from_pac: str, to_pac: str, reason: str,
                 data: dict | None = None) -> bool:
    """Move the merchant's route from ``expected`` (None: no row yet) to ``to``, with its event; False if another
    worker switched it first."""
    now = timezone.now()
    fields = {"route": to, "switched_at": now, "from_pac": from_pac, "to_pac": to_pac, "reason": reason}
    with transaction.atomic():
        if expected is None:
            try:
                with transaction.atomic():
                    PacRoute.objects.create(merchant=merchant, **fields)
            except IntegrityError:
                return False
        elif not PacRoute.objects.filter(merchant=merchant, route=expected).update(**fields):
            return False
        record_event(merchant_id=merchant.pk, entity="pac", object_id=merchant.pk, from_status=from_pac,
                     to_status=to_pac, actor="timbrado", reason=reason, data={"route": to, **(data or {})})
    log.warning("merchant %s: stamping switched %s → %s (%s)", merchant.pk, from_pac, to_pac, reason)
    return True
