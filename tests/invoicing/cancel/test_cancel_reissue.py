"""Reissue (motivo 01): the replacement is stamped first with TipoRelacion 04, then the original is cancelled with
FolioSustitucion = the replacement's UUID; both documents stay consistent whatever SAT answers."""

import pytest
from django.core import mail
from lxml import etree

from invoicing.cfdi.verify import verify
from invoicing.errors import InvoicingError
from invoicing.models import Cancellation, Invoice
from invoicing.pac.models import SandboxStamp
from invoicing.services.cancel import cancellation_advance
from invoicing.services.issue import live_invoice_id
from invoicing.services.reissue import invoice_reissue
from tickets.models import Ticket

NS = {"cfdi": "http://www.sat.gob.mx/cfd/4"}
NEW_RECEPTOR = {"rfc": "XIQB891116QE4", "name": "BERENICE XIMO QUEZADA", "tax_regime": "612", "postal_code": "26015",
                "cfdi_use": "G03", "emails": ["berenice@example.com"]}


def reissue(invoice, **changes):
    return invoice_reissue(merchant=invoice.merchant, invoice_id=invoice.pk, changes=changes or NEW_RECEPTOR,
                           actor="ana")


def test_the_replacement_is_stamped_before_the_cancellation_is_sent(stamped, stamp_all, follow_up, sat_cert):
    original = stamped("116.00")
    ticket = Ticket.objects.get(invoice_links__invoice=original)
    c = reissue(original)
    replacement = c.replacement
    assert (c.status, replacement.status, Invoice.objects.get(pk=original.pk).status) == (
        "waiting", "pending", "stamped")
    assert cancellation_advance(cancellation_id=c.pk) == "waiting"  # not stamped yet: nothing sent
    assert SandboxStamp.objects.get(uuid=str(original.uuid).upper()).cancel_status == ""
    stamp_all()
    replacement.refresh_from_db()
    assert replacement.status == "stamped"
    assert follow_up() == ["cancelled"]
    original.refresh_from_db()
    assert original.status == "cancelled"
    sat = SandboxStamp.objects.get(uuid=str(original.uuid).upper())
    assert (sat.cancel_motivo, sat.cancel_replacement_uuid) == ("01", str(replacement.uuid).upper())
    assert sat.cancel_requested_at > SandboxStamp.objects.get(uuid=str(replacement.uuid).upper()).stamped_at
    root = etree.fromstring(bytes(replacement.stamped_xml))
    rel = root.find("cfdi:CfdiRelacionados", NS)
    assert rel.get("TipoRelacion") == "04"
    assert rel.find("cfdi:CfdiRelacionado", NS).get("UUID") == str(original.uuid).upper()
    assert root.find("cfdi:Receptor", NS).get("Rfc") == "XIQB891116QE4"
    assert root.get("Total") == etree.fromstring(bytes(original.stamped_xml)).get("Total")
    for document in (original, replacement):
        result = verify(bytes(document.stamped_xml), sat_cert=sat_cert)
        assert result.ok, result.summary()
    ticket.refresh_from_db()
    assert ticket.status == "invoiced" and live_invoice_id(ticket.pk) == replacement.pk


def test_a_rejected_substitution_leaves_both_vigente_and_tells_the_merchant(stamped, stamp_all, follow_up, age, settings,
                                                                            merchant):
    merchant.contact_email = "contabilidad@kemper.example"
    merchant.save()
    settings.SANDBOX_PAC_CANCEL_ANSWER = "reject"
    settings.SANDBOX_PAC_CANCEL_ACCEPT_SECONDS = 0
    original = age(stamped("5800.00"), days=10)
    c = reissue(original)
    stamp_all()
    assert follow_up() == ["rejected"]
    original.refresh_from_db()
    c.replacement.refresh_from_db()
    assert (original.status, c.replacement.status) == ("stamped", "stamped")
    ticket = Ticket.objects.get(invoice_links__invoice=original)
    assert ticket.status == "invoiced"
    from invoicing.tasks_cancel import cancellation_email

    cancellation_email(c.pk, "rejected")
    [message] = mail.outbox
    assert "también está vigente" in message.body and str(c.replacement.uuid).upper() in message.body
    # The merchant may ask again, naming the replacement already stamped.
    from invoicing.services.cancel import cancellation_request

    settings.SANDBOX_PAC_CANCEL_ANSWER = "accept"
    again = cancellation_request(merchant=merchant, invoice_id=original.pk, motive="01",
                                 replacement_id=c.replacement.pk)
    cancellation_advance(cancellation_id=again.pk)
    assert follow_up() == ["rejected", "cancelled"]


def test_a_replacement_that_fails_to_stamp_leaves_the_original_whole(stamped, stamp_all, follow_up, merchant):
    original = stamped("116.00")
    ticket = Ticket.objects.get(invoice_links__invoice=original)
    c = reissue(original)
    merchant.certificates.update(is_active=False)  # the replacement cannot be sealed
    stamp_all()
    c.replacement.refresh_from_db()
    assert c.replacement.status == "failed"
    assert follow_up() == ["abandoned"]
    original.refresh_from_db()
    ticket.refresh_from_db()
    assert original.status == "stamped" and ticket.status == "invoiced"  # not released by the failed replacement
    assert live_invoice_id(ticket.pk) == original.pk
    assert SandboxStamp.objects.get(uuid=str(original.uuid).upper()).cancel_status == ""


def test_reissue_refusals(stamped, age, merchant, other_merchant):
    invoice = stamped("116.00")
    with pytest.raises(InvoicingError) as err:
        reissue(invoice, emails=["otro@example.com"])
    assert err.value.code == "no_changes"
    with pytest.raises(InvoicingError) as err:
        reissue(invoice, rfc="XAXX0101")
    assert err.value.code == "invalid_receptor" and err.value.status == 400
    with pytest.raises(InvoicingError) as err:
        reissue(invoice, color="azul")
    assert err.value.code == "validation_error"
    with pytest.raises(InvoicingError) as err:
        invoice_reissue(merchant=other_merchant, invoice_id=invoice.pk, changes=NEW_RECEPTOR)
    assert err.value.status == 404
    assert not Cancellation.objects.exists() and Invoice.objects.count() == 1


def test_a_correction_while_a_cancellation_is_pending_is_refused(stamped, age, settings):
    settings.SANDBOX_PAC_CANCEL_ACCEPT_SECONDS = 3600
    invoice = age(stamped("5800.00"), days=10)
    from invoicing.services.cancel import cancellation_request

    c = cancellation_request(merchant=invoice.merchant, invoice_id=invoice.pk, motive="02")
    cancellation_advance(cancellation_id=c.pk)
    with pytest.raises(InvoicingError) as err:
        reissue(invoice)
    assert err.value.code == "cancellation_in_progress" and "cancelación en proceso" in err.value.message
    # and a second correction while the first one waits for its replacement
    other = stamped("116.00")
    reissue(other)
    with pytest.raises(InvoicingError) as err:
        reissue(other, name="XOCHILT CASAS CHAVEZ", rfc="CACX7605101P8", cfdi_use="G01")
    assert err.value.code == "cancellation_in_progress"
