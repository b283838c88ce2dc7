"""The reliability suite's counts (bench/faultkit/counting.py). The suite itself runs outside the test suite
(bench/faults.py); what it concludes rests on these functions, so they are pinned here."""

from collections import Counter

from django.core.mail import EmailMessage
from django.core.mail.backends.filebased import EmailBackend

from bench.faultkit import counting
from bench.faultkit.counting import InvoiceRequest, Sample, StoredInvoice, Window

A1 = ("shop", "A1", "T-1")
A2 = ("shop", "A1", "T-2")
A3 = ("shop", "A1", "T-3")


def invoice(pk, status="stamped", tickets=(A1,), key="", folio=None, serie="A", uuid="", emails=(), code=None):
    return StoredInvoice(id=pk, public_code=code or f"code{pk}", status=status, merchant="shop", serie=serie,
                         folio=folio, tickets=tickets, idempotency_key=key, uuid=uuid, emails=emails)


def test_tickets_acknowledged_but_not_stored_are_lost_and_repeated_rows_are_duplicates():
    counts = counting.ticket_counts(acknowledged=[A1, A2, A3], stored=[A1, A2, A2])

    assert counts["tickets_lost"] == 1
    assert counts["tickets_duplicated"] == 1
    assert counts["tickets_stored"] == 2


def test_an_acknowledged_invoice_is_lost_when_missing_or_not_stamped_at_the_end():
    requests = [
        InvoiceRequest("portal", (A1,), acknowledged=True, ref="code1"),
        InvoiceRequest("api", (A2,), acknowledged=True, ref="2"),
        InvoiceRequest("api", (A3,), acknowledged=True, ref="99"),       # the 202's id does not exist
        InvoiceRequest("portal", (A3,), acknowledged=False),              # never acknowledged: not a loss
    ]
    stored = [invoice(1, tickets=(A1,)), invoice(2, status="pending", tickets=(A2,))]

    counts = counting.invoice_counts(requests, stored)

    assert counts["invoices_lost"] == 2
    assert counts["invoices_lost_by_status"] == {"pending": 1, "missing": 1}
    assert counts["invoices_requested"] == 3
    assert counts["invoices_unacknowledged"] == 1


def test_two_live_invoices_for_one_ticket_or_one_key_are_duplicates_but_a_failed_one_is_not():
    stored = [
        invoice(1, tickets=(A1,)),
        invoice(2, status="sealed", tickets=(A1,)),      # a second live invoice for A1
        invoice(3, status="failed", tickets=(A2,)),      # failed released A2 ...
        invoice(4, tickets=(A2,)),                       # ... so this one is fine
        invoice(5, tickets=(A3,), key="k"),
        invoice(6, status="failed", tickets=(A3,), key="k"),  # one key, two invoices
    ]

    assert counting.invoice_counts([], stored)["invoices_duplicated"] == 2


def test_folio_gaps_count_missing_and_repeated_folios_per_serie():
    stored = [invoice(1, folio=1), invoice(2, folio=2), invoice(3, folio=4),
              invoice(4, folio=1, serie="B"), invoice(5, folio=1, serie="B"), invoice(6, folio=2, serie="B"),
              invoice(7, folio=None, serie="C")]

    total, details = counting.folio_gaps(stored)

    assert total == 2
    assert details["shop/A"]["missing"] == [3]
    assert details["shop/B"]["repeated"] == 1
    assert "shop/C" not in details


def test_emails_are_read_from_the_file_backend_by_the_uuid_in_the_attachment_names(tmp_path):
    backend = EmailBackend(file_path=str(tmp_path))
    messages = []
    for uuid in ("AAAA-1", "BBBB-2", "AAAA-1"):
        message = EmailMessage("Tu factura A-1 de ESCUELA", "Hola, ñandú: tu factura.", "f@localhost",
                               ["cliente@example.com"])
        message.attach(f"EKU9003173C9_A1_{uuid}.xml", b"<cfdi/>", "application/xml")
        message.attach(f"EKU9003173C9_A1_{uuid}.pdf", b"%PDF", "application/pdf")
        messages.append(message)
    backend.send_messages(messages[:2])
    EmailBackend(file_path=str(tmp_path)).send_messages(messages[2:])  # another connection: another file

    sent = counting.sent_email_uuids(tmp_path)

    assert sent == Counter({"AAAA-1": 2, "BBBB-2": 1})
    stored = [invoice(1, uuid="aaaa-1", emails=("c@x.mx",)), invoice(2, uuid="BBBB-2", emails=("c@x.mx",)),
              invoice(3, uuid="CCCC-3", emails=("c@x.mx",)), invoice(4, uuid="DDDD-4"),
              invoice(5, status="pending", emails=("c@x.mx",))]
    assert counting.email_counts(stored, sent) == {"emails_due": 3, "emails_unsent": 1, "emails_duplicated": 1}


def test_5xx_overlapping_the_db_down_window_are_tallied_apart_from_the_rest():
    down = [Window(100.0, 110.0)]
    samples = [
        Sample(99.5, 100.5, "pg_restart", "api_read", 500),      # overlaps the start of the window
        Sample(105.0, 105.1, "pg_restart", "portal_page", 503),
        Sample(109.0, 111.0, "pg_restart", "api_read", None),    # no answer, overlapping the end
        Sample(111.0, 111.2, "after_pg_restart", "api_read", 500),
        Sample(200.0, 200.1, "redis_away", "portal_lookup", 500),
        Sample(201.0, 206.0, "redis_away", "api_read", None),
        Sample(202.0, 202.1, "redis_away", "api_read", 404),     # not a failure
    ]

    tally = counting.http_errors(samples, down)

    assert tally.during_db_down == {"500": 1, "503": 1, "no_answer": 1}
    assert tally.http_5xx_outside_db_down == 2
    assert tally.no_answer_outside_db_down == 1
    assert tally.by_phase == {"after_pg_restart": {"api_read 500": 1},
                              "redis_away": {"portal_lookup 500": 1, "api_read no_answer": 1}}


def test_queue_recovery_is_when_nothing_created_before_the_fault_ended_is_still_in_flight():
    samples = [(10.0, 1.0), (20.0, 5.0), (21.0, 5.0), (24.0, 22.0), (30.0, None)]

    assert counting.queue_recovered_after(samples, fault_end=20.0) == 4.0
    assert counting.queue_recovered_after(samples, fault_end=25.0) == 5.0
    assert counting.queue_recovered_after(samples[:3], fault_end=20.0) is None


def test_stamps_the_pac_gave_that_no_invoice_holds_are_counted():
    stored = [invoice(1, uuid="U-1"), invoice(2, uuid="u-2"),
              StoredInvoice(id=3, public_code="x", status="stamped", merchant="other", serie="A", folio=1,
                            uuid="U-3")]

    assert counting.pac_stamps_without_invoice(["U-1", "U-2"], stored, "shop") == 0
    assert counting.pac_stamps_without_invoice(["U-1", "U-2", "U-3", "U-4"], stored, "shop") == 2


def test_stamp_latency_is_grouped_by_the_phase_the_invoice_was_created_in():
    bounds = [("baseline", 0.0, 10.0), ("pac_5xx", 10.0, 20.0)]
    created = {1: 1.0, 2: 2.0, 3: 11.0, 4: 12.0, 5: 30.0}
    stamped = {1: 1.5, 2: 3.0, 3: 41.0, 5: 31.0}  # 4 was never stamped; 5 was created after the phases

    latency = counting.stamp_latency_by_phase(created, stamped, bounds)

    assert latency == {"baseline": {"invoices": 2, "p50_s": 0.5, "p99_s": 1.0},
                       "pac_5xx": {"invoices": 1, "p50_s": 30.0, "p99_s": 30.0}}


def test_percentile_is_the_nearest_rank():
    assert counting.percentile(list(range(1, 101)), 99) == 99
    assert counting.percentile([5.0], 99) == 5.0
    assert counting.percentile([], 99) is None
