"""The cancellation service with the sandbox PAC: each motive, acceptance, rejection, SAT down, the deadline."""

import datetime as dt

import pytest
from cancel_helpers import invoice_events
from django.core import mail
from django.utils import timezone

from infra.models import Event
from invoicing.errors import InvoicingError
from invoicing.models import Cancellation, Invoice
from invoicing.pac.models import SandboxStamp
from invoicing.services.cancel import cancellation_advance, cancellation_plan, cancellation_request
from invoicing.webhooks.models import WebhookDelivery, WebhookEndpoint
from tickets.models import Ticket


def cancel(invoice, motive="02", **kwargs):
    return cancellation_request(merchant=invoice.merchant, invoice_id=invoice.pk, motive=motive, actor="ana",
                                **kwargs)


def ticket_of(invoice):
    return Ticket.objects.get(invoice_links__invoice=invoice)


def test_motive_02_without_acceptance_cancels_at_once_and_releases_the_ticket(stamped):
    invoice = stamped("116.00")
    c = cancel(invoice, "02")
    assert (c.status, Invoice.objects.get(pk=invoice.pk).status) == ("requested", "cancelling")
    assert (c.requires_acceptance, c.acceptance_reason, c.tickets_action) == (False, "total_hasta_1000", "release")
    assert ticket_of(invoice).status == "invoiced"  # nothing moves before SAT answers
    assert cancellation_advance(cancellation_id=c.pk) == "cancelled"
    invoice.refresh_from_db()
    assert invoice.status == "cancelled"
    assert ticket_of(invoice).status == "open"
    stamp = SandboxStamp.objects.get(uuid=str(invoice.uuid).upper())
    assert (stamp.cancel_status, stamp.cancel_motivo, stamp.cancel_replacement_uuid) == ("cancelled", "02", "")
    assert invoice_events(invoice)[-2:] == [("stamped", "cancelling"), ("cancelling", "cancelled")]
    c.refresh_from_db()
    assert c.finished_at and b"<Acuse" in bytes(c.acuse)
    assert list(Event.objects.filter(entity="cancellation", object_id=c.pk).order_by("pk")
                .values_list("from_status", "to_status")) == [("", "requested"), ("requested", "cancelled")]


def test_motive_03_voids_the_ticket_by_default_and_02_may_void_it_too(stamped):
    sale_not_made = stamped("116.00")
    cancellation_advance(cancellation_id=cancel(sale_not_made, "03").pk)
    assert ticket_of(sale_not_made).status == "void"
    chosen = stamped("58.00")
    cancellation_advance(cancellation_id=cancel(chosen, "02", tickets="void").pk)
    assert ticket_of(chosen).status == "void"
    kept = stamped("58.00")
    cancellation_advance(cancellation_id=cancel(kept, "03", tickets="release").pk)
    assert ticket_of(kept).status == "open"


def test_a_released_ticket_can_be_invoiced_again(stamped, receptor):
    from invoicing.services import invoice_issue

    invoice = stamped("116.00")
    cancellation_advance(cancellation_id=cancel(invoice, "02").pk)
    again = invoice_issue(merchant=invoice.merchant, ticket_ids=[ticket_of(invoice).pk], receptor=receptor)
    assert again.pk != invoice.pk and again.status == "pending"


def test_acceptance_needed_waits_for_the_receptor_then_is_cancelled(stamped, age, follow_up, settings):
    settings.SANDBOX_PAC_CANCEL_ACCEPT_SECONDS = 3600
    invoice = age(stamped("5800.00"), days=10)
    c = cancel(invoice, "02")
    assert (c.requires_acceptance, c.acceptance_reason) == (True, "requiere_aceptacion")
    assert cancellation_advance(cancellation_id=c.pk) == "pending"
    invoice.refresh_from_db()
    assert invoice.status == "cancel_pending"
    assert ticket_of(invoice).status == "invoiced"
    c.refresh_from_db()
    assert c.sat_status == "En proceso" and c.next_check_at > timezone.now()
    assert follow_up() == ["pending"]  # the receptor has not answered: asked again later
    settings.SANDBOX_PAC_CANCEL_ACCEPT_SECONDS = 0  # the receptor accepts (or the 3 business days pass)
    assert follow_up() == ["cancelled"]
    invoice.refresh_from_db()
    assert invoice.status == "cancelled" and ticket_of(invoice).status == "open"
    assert invoice_events(invoice)[-3:] == [("stamped", "cancelling"), ("cancelling", "cancel_pending"),
                                            ("cancel_pending", "cancelled")]
    assert Cancellation.objects.get().sat_status == "Cancelado con aceptación"


def test_the_receptor_rejects_the_invoice_stays_stamped_and_the_merchant_is_emailed(stamped, age, follow_up, settings,
                                                                                     merchant, django_capture_on_commit_callbacks):
    merchant.contact_email = "contabilidad@kemper.example"
    merchant.save()
    settings.SANDBOX_PAC_CANCEL_ANSWER = "reject"
    settings.SANDBOX_PAC_CANCEL_ACCEPT_SECONDS = 0
    invoice = age(stamped("5800.00"), days=10)
    c = cancel(invoice, "03")
    with django_capture_on_commit_callbacks(execute=True):
        cancellation_advance(cancellation_id=c.pk)
    _run_queued_email()
    invoice.refresh_from_db()
    c.refresh_from_db()
    assert (invoice.status, c.status, c.sat_status) == ("stamped", "rejected", "Solicitud rechazada")
    assert ticket_of(invoice).status == "invoiced"  # the sale stands: not voided
    assert invoice_events(invoice)[-3:] == [("stamped", "cancelling"), ("cancelling", "cancel_pending"),
                                            ("cancel_pending", "stamped")]
    [message] = mail.outbox
    assert message.to == ["contabilidad@kemper.example"]
    assert "rechazó la cancelación" in message.body and str(invoice.uuid).upper() in message.body
    # A new request after a rejection is allowed (and the receptor may accept this time).
    settings.SANDBOX_PAC_CANCEL_ANSWER = "accept"
    again = cancel(invoice, "03")
    assert cancellation_advance(cancellation_id=again.pk) in ("pending", "cancelled")
    assert follow_up() == ["rejected", "cancelled"]


def _run_queued_email():
    """Run the email tasks the deliver queue's worker would (the ORM broker holds them in the database)."""
    from django_q.signing import SignedPackage

    from infra.queues import DELIVER
    from infra.queues import broker as queue_broker
    from invoicing import tasks_cancel

    broker = queue_broker(DELIVER)
    while task := broker.dequeue():
        for ack_id, payload in task:
            package = SignedPackage.loads(payload)
            if package["func"].startswith("invoicing.tasks_cancel.cancellation_email"):
                tasks_cancel.cancellation_email(*package["args"])
            broker.acknowledge(ack_id)


def test_sat_down_stays_requested_is_retried_with_backoff_then_final(stamped, settings):
    settings.SANDBOX_PAC_SAT_DOWN = True
    invoice = stamped("116.00")
    c = cancel(invoice, "02")
    assert cancellation_advance(cancellation_id=c.pk) == "requested"
    c.refresh_from_db()
    first_wait = c.next_check_at - timezone.now()
    assert c.attempts == 1 and c.last_code == "708" and dt.timedelta(seconds=30) < first_wait
    assert cancellation_advance(cancellation_id=c.pk) == "requested"  # not due yet: nothing is sent
    assert Cancellation.objects.get(pk=c.pk).attempts == 1
    Cancellation.objects.filter(pk=c.pk).update(next_check_at=timezone.now())
    cancellation_advance(cancellation_id=c.pk)
    c.refresh_from_db()
    assert c.attempts == 2 and (c.next_check_at - timezone.now()) > first_wait  # backing off
    assert Invoice.objects.get(pk=invoice.pk).status == "cancelling" and ticket_of(invoice).status == "invoiced"
    settings.SANDBOX_PAC_SAT_DOWN = False
    Cancellation.objects.filter(pk=c.pk).update(next_check_at=timezone.now())
    assert cancellation_advance(cancellation_id=c.pk) == "cancelled"
    assert Invoice.objects.get(pk=invoice.pk).status == "cancelled"


def test_sat_status_service_down_while_pending_keeps_it_pending(stamped, age, follow_up, settings):
    settings.SANDBOX_PAC_CANCEL_ACCEPT_SECONDS = 0
    invoice = age(stamped("5800.00"), days=10)
    c = cancel(invoice, "02")
    settings.SANDBOX_PAC_CANCEL_ACCEPT_SECONDS = 3600
    cancellation_advance(cancellation_id=c.pk)
    settings.SANDBOX_PAC_SAT_DOWN = True
    assert follow_up(3) == ["pending"]
    assert Cancellation.objects.get().attempts >= 3
    settings.SANDBOX_PAC_SAT_DOWN = False
    settings.SANDBOX_PAC_CANCEL_ACCEPT_SECONDS = 0
    assert follow_up() == ["cancelled"]


def test_past_the_legal_deadline_it_is_refused_with_the_date(stamped, merchant):
    invoice = stamped("116.00")
    two_years_ago = timezone.now().replace(year=timezone.now().year - 2)
    Invoice.objects.filter(pk=invoice.pk).update(issued_at=two_years_ago)
    invoice.refresh_from_db()
    with pytest.raises(InvoicingError) as err:
        cancel(invoice, "02")
    assert err.value.code == "cancellation_deadline_passed" and err.value.status == 422
    assert f"31 de marzo de {two_years_ago.year + 1}" in err.value.message  # persona moral: March
    assert Invoice.objects.get(pk=invoice.pk).status == "stamped" and not Cancellation.objects.exists()


def test_a_request_near_the_deadline_warns_the_merchant(stamped, merchant, settings, django_capture_on_commit_callbacks):
    merchant.contact_email = "contabilidad@kemper.example"
    merchant.save()
    invoice = stamped("116.00")
    settings.CANCELLATION_DEADLINE_WARNING_DAYS = 10_000  # every deadline is "near"
    with django_capture_on_commit_callbacks(execute=True):
        cancel(invoice, "02")
    _run_queued_email()
    [message] = mail.outbox
    assert "cerca del plazo legal" in message.subject and "31 de marzo de" in message.body


def test_refusals_say_why_and_write_nothing(stamped, merchant, other_merchant):
    invoice = stamped("116.00")
    for kwargs, code in [({"motive": "05"}, "invalid_motive"), ({"motive": "04"}, "invalid_motive"),
                         ({"motive": "01"}, "replacement_required"),
                         ({"motive": "02", "tickets": "burn"}, "invalid_tickets_action"),
                         ({"motive": "01", "tickets": "void"}, "tickets_not_allowed")]:
        with pytest.raises(InvoicingError) as err:
            cancellation_request(merchant=merchant, invoice_id=invoice.pk, **kwargs)
        assert err.value.code == code, kwargs
    with pytest.raises(InvoicingError) as err:  # another merchant's invoice does not exist for them
        cancellation_request(merchant=other_merchant, invoice_id=invoice.pk, motive="02")
    assert (err.value.code, err.value.status) == ("not_found", 404)
    assert not Cancellation.objects.exists() and Invoice.objects.get(pk=invoice.pk).status == "stamped"


def test_a_second_request_while_one_is_under_way_is_refused(stamped):
    invoice = stamped("116.00")
    cancel(invoice, "02")
    with pytest.raises(InvoicingError) as err:
        cancel(invoice, "03")
    assert (err.value.code, err.value.status) == ("cancellation_in_progress", 409)
    assert Cancellation.objects.count() == 1


def test_a_pending_invoice_cannot_be_cancelled(branch, make_ticket, receptor, merchant):
    from invoicing.services import invoice_issue

    invoice = invoice_issue(merchant=merchant, ticket_ids=[make_ticket(branch).pk], receptor=receptor)
    with pytest.raises(InvoicingError) as err:
        cancel(invoice, "02")
    assert err.value.code == "not_stamped"


def test_the_plan_says_acceptance_deadline_and_tickets_before_anything_is_sent(stamped, age):
    invoice = age(stamped("5800.00"), days=10)
    plan = cancellation_plan(invoice=invoice, motive="03")
    assert plan.refusal is None and plan.acceptance.required
    assert "El receptor debe aceptar" in plan.acceptance.message
    assert plan.deadline_text.startswith("Se puede cancelar hasta el 31 de marzo de")
    assert "El ticket de la factura se cancela cuando el SAT confirme" in plan.tickets_text
    assert not SandboxStamp.objects.filter(cancel_status__gt="").exists()


def test_every_step_sends_the_cancellation_updated_webhook(stamped, age, settings, merchant):
    settings.SANDBOX_PAC_CANCEL_ACCEPT_SECONDS = 3600
    WebhookEndpoint.objects.create(merchant=merchant, url="https://erp.example.com/hooks")
    invoice = age(stamped("5800.00"), days=10)
    c = cancel(invoice, "02")
    cancellation_advance(cancellation_id=c.pk)
    settings.SANDBOX_PAC_CANCEL_ACCEPT_SECONDS = 0
    Cancellation.objects.update(next_check_at=None)
    cancellation_advance(cancellation_id=c.pk)
    updates = WebhookDelivery.objects.filter(event="invoice.cancellation_updated").order_by("pk")
    assert [d.payload["data"]["cancellation"]["status"] for d in updates] == ["requested", "pending", "cancelled"]
    last = updates.last().payload["data"]
    assert (last["id"], last["status"], last["cancellation"]["motive"]) == (invoice.pk, "cancelled", "02")
    assert last["cancellation"]["requires_acceptance"] is True
    assert WebhookDelivery.objects.filter(event="invoice.cancelled").count() == 1


def test_a_global_with_a_vigente_credit_note_is_not_cancellable_until_the_note_is(stamped, branch):
    from invoicing.models import InvoiceRelation

    invoice = stamped("116.00")
    note = Invoice.objects.create(merchant=invoice.merchant, branch=branch, kind="egreso", serie="NC",
                                  status="stamped", receptor_rfc=invoice.receptor_rfc, receptor_name="X",
                                  receptor_tax_regime="612", receptor_postal_code="36257", receptor_cfdi_use="G02")
    InvoiceRelation.objects.create(invoice=note, relation_type="01", related_uuid=invoice.uuid, related_invoice=invoice)
    with pytest.raises(InvoicingError) as err:
        cancel(invoice, "02")
    assert err.value.code == "has_related_documents" and err.value.details == {"invoice_ids": [note.pk]}


def test_an_invoice_left_cancelling_by_the_old_late_request_path_is_adopted_and_followed(stamped, follow_up):
    import importlib

    from django.apps import apps

    invoice = stamped("116.00")
    Invoice.objects.filter(pk=invoice.pk).update(status="cancelling")  # as the code before 0008 left it
    migration = importlib.import_module("invoicing.migrations.0012_cancellations")
    migration.adopt_cancellations_in_flight(apps, None)
    c = Cancellation.objects.get(invoice=invoice)
    assert (c.status, c.motive, c.source) == ("requested", "02", "api")
    assert follow_up() == ["cancelled"]
    assert Invoice.objects.get(pk=invoice.pk).status == "cancelled"


def test_the_plan_speaks_of_several_tickets_in_the_plural(branch, make_ticket, receptor, stamp_all, certificate):
    from invoicing.services import invoice_issue

    tickets = [make_ticket(branch, number=f"P{i}") for i in range(2)]
    invoice = invoice_issue(merchant=branch.merchant, ticket_ids=[t.pk for t in tickets], receptor=receptor)
    stamp_all()
    invoice.refresh_from_db()
    text = cancellation_plan(invoice=invoice, motive="02").tickets_text
    assert text.startswith("Los 2 tickets de la factura quedan libres cuando el SAT confirme")
