import datetime as dt
import io
import json
import zipfile

import pytest
from django.utils import timezone
from ticket_api_helpers import b64, cfdi_xml, make_zip

from infra.models import Event
from tickets.ingest import tasks
from tickets.models import Batch, Ticket


def post_zip(client, batch_id, data: bytes, field="file[0]"):
    upload = io.BytesIO(data)
    upload.name = "tickets.zip"
    return client.post("/api/v1/tickets/batch", {"batchId": batch_id, field: upload}, format="multipart")


def test_json_batch_reports_every_ticket_and_bad_ones_never_reject_good_ones(api_client, payload):
    api_client.post("/api/v1/tickets", payload(number="OLD"), format="json")
    tickets = [payload(number="B-1"), payload(number="B-2", total="1.00"), payload(number="B-3"),
               payload(number="OLD"), "no soy un ticket"]
    tickets[3]["sold_at"] = Ticket.objects.get(number="OLD").sold_at.isoformat()
    response = api_client.post("/api/v1/tickets/batch", {"batch_id": "lote-1", "tickets": tickets}, format="json")
    assert response.status_code == 207, response.json()
    body = response.json()
    assert (body["status"], body["created_count"], body["duplicate_count"], body["rejected_count"]) == \
        ("done", 2, 1, 2)
    report = body["report"]
    assert [r["status"] for r in report] == ["created", "rejected", "created", "duplicate", "rejected"]
    assert "total" in report[1]["errors"] and report[1]["number"] == "B-2"
    assert report[0]["self_invoice_url"].startswith("http") and report[0]["expires_at"]
    assert Ticket.objects.filter(source="batch").count() == 2
    assert Event.objects.filter(entity="batch", to_status="done").count() == 1


def test_control_characters_in_a_rejected_ticket_are_not_echoed_into_the_report(api_client, payload):
    # A NUL in the number once made the report unstorable in PostgreSQL's jsonb: a 500 (found by the fuzzer).
    bad = payload(number="A\x00B\x07")
    response = api_client.post("/api/v1/tickets/batch", {"batch_id": "nul", "tickets": [bad, payload(number="OK")]},
                               format="json")
    assert response.status_code == 207, response.json()
    report = response.json()["report"]
    assert report[0]["status"] == "rejected" and report[0]["number"] == "AB"
    assert Batch.objects.get(batch_id="nul").report[0]["number"] == "AB"


def test_all_good_batch_answers_200(api_client, payload):
    response = api_client.post("/api/v1/tickets/batch", {"batch_id": "ok", "tickets": [payload()]}, format="json")
    assert response.status_code == 200


def test_same_key_twice_in_one_batch_is_a_duplicate_or_a_conflict(api_client, payload):
    same, changed = payload(number="D"), payload(number="D", payment_form="01")
    changed["sold_at"] = same["sold_at"]
    tickets = [same, dict(same), changed]
    report = api_client.post("/api/v1/tickets/batch", {"batch_id": "d", "tickets": tickets},
                             format="json").json()["report"]
    assert [r["status"] for r in report] == ["created", "duplicate", "rejected"]
    assert report[1]["ticket_id"] == report[0]["ticket_id"]
    assert report[2]["code"] == "conflict" and report[2]["differences"] == ["payment_form"]


def test_batch_id_seen_before_is_a_422(api_client, payload):
    api_client.post("/api/v1/tickets/batch", {"batch_id": "rep", "tickets": [payload()]}, format="json")
    response = api_client.post("/api/v1/tickets/batch", {"batch_id": "rep", "tickets": [payload(number="Z")]},
                               format="json")
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "batch_already_received"
    assert not Ticket.objects.filter(number="Z").exists()


def test_batch_over_10000_tickets_is_refused(api_client, payload):
    response = api_client.post("/api/v1/tickets/batch", {"batch_id": "big", "tickets": [{}] * 10_001},
                               format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "batch_too_large"
    assert not Batch.objects.exists()


@pytest.mark.parametrize("body", [{"tickets": [{}]}, {"batch_id": "x", "tickets": []}, {"batch_id": "a/b"}, []])
def test_malformed_batch_envelopes_are_400(api_client, body):
    assert api_client.post("/api/v1/tickets/batch", body, format="json").status_code == 400


def test_large_batch_goes_to_the_background_with_progress(api_client, payload, settings, queued_tasks,
                                                          django_capture_on_commit_callbacks):
    settings.API_BATCH_SYNC_MAX = 2
    tickets = [payload(number=f"G-{i}") for i in range(5)] + [payload(number="G-bad", total="0.01")]
    with django_capture_on_commit_callbacks(execute=True):
        response = api_client.post("/api/v1/tickets/batch", {"batch_id": "bg", "tickets": tickets}, format="json")
    assert response.status_code == 202
    assert response["Location"].endswith("/api/v1/batches/bg")
    assert response.json()["status"] == "received" and response.json()["progress"] == 0
    assert queued_tasks == [("bulk", "tickets.ingest.tasks.process_batch", (Batch.objects.get().pk,))]
    assert queued_tasks.run() == "done"  # what the worker runs
    body = api_client.get("/api/v1/batches/bg").json()
    assert (body["status"], body["progress"], body["created_count"], body["rejected_count"]) == ("done", 1.0, 5, 1)
    assert Batch.objects.get().payload is None
    csv_response = api_client.get("/api/v1/batches/bg/report.csv")
    assert csv_response["Content-Type"].startswith("text/csv")
    rows = csv_response.content.decode("utf-8-sig").splitlines()
    assert rows[0].startswith("index,file,ref_id,branch,number,status") and len(rows) == 7
    assert "rejected" in rows[-1] and "total" in rows[-1]


def test_background_batch_resumes_after_a_crash(api_client, payload, settings, monkeypatch, queued_tasks,
                                                django_capture_on_commit_callbacks):
    settings.API_BATCH_SYNC_MAX = 1
    monkeypatch.setattr("tickets.ingest.lifecycle.CHUNK", 2)
    tickets = [payload(number=f"R-{i}") for i in range(5)]
    api_client.post("/api/v1/tickets/batch", {"batch_id": "resume", "tickets": tickets}, format="json")
    batch = Batch.objects.get()
    # A worker claimed it, committed the first chunk and was killed: its lease runs out.
    Batch.objects.filter(pk=batch.pk).update(status="processing", run=1, attempts=1, processed_count=2,
                                             created_count=2, lease_until=timezone.now() - dt.timedelta(seconds=1),
                                             report=[{"index": 0, "status": "created"}, {"index": 1, "status": "created"}])
    assert tasks.process_batch(batch.pk) == "nothing to do"  # only the sweeper hands an abandoned batch out again
    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.sweep_batches() == 1
    assert [(queue, args) for queue, _, args in queued_tasks] == [("bulk", (batch.pk,))]
    assert tasks.process_batch(batch.pk) == "done"
    batch.refresh_from_db()
    assert (batch.processed_count, batch.created_count, len(batch.report)) == (5, 5, 5)
    assert (batch.run, batch.attempts, batch.lease_until) == (2, 2, None)
    assert Ticket.objects.count() == 3  # the first two were "committed" by the fake crash above


def test_zip_of_our_format_in_nested_folders(api_client, payload):
    files = {"t1.json": json.dumps(payload(number="Z-1")),
             "tienda/centro/2026/05/t2.json": json.dumps(payload(number="Z-2")),
             "tienda/": ""}
    response = post_zip(api_client, "zip-1", make_zip(files))
    assert response.status_code == 200, response.json()
    report = response.json()["report"]
    assert [(r["file"], r["status"]) for r in report] == [("t1.json", "created"),
                                                          ("tienda/centro/2026/05/t2.json", "created")]
    assert Ticket.objects.filter(source="zip").count() == 2


def test_zip_of_facturame_format(api_client):
    doc = {"cfdi": {"ref_id": "abc-123", "ticket_number": "F-77", "document": b64(cfdi_xml())}}
    response = post_zip(api_client, "fm", make_zip({"lote/abc-123.json": json.dumps(doc)}))
    assert response.status_code == 200, response.json()
    entry = response.json()["report"][0]
    assert (entry["ref_id"], entry["number"], entry["branch"], entry["status"]) == ("abc-123", "F-77", "CENTRO",
                                                                                      "created")
    assert Ticket.objects.get(number="F-77").total == 116


def test_zip_member_problems_are_reported_one_by_one(api_client, payload):
    files = {"ok.json": json.dumps(payload(number="M-1")), "notas.txt": "hola", "roto.json": "{",
             "../../etc/evil.json": json.dumps(payload(number="M-2")), "/abs.json": "{}"}
    response = post_zip(api_client, "mixed", make_zip(files))
    assert response.status_code == 207
    by_file = {r["file"]: r for r in response.json()["report"]}
    assert by_file["ok.json"]["status"] == "created"
    assert by_file["notas.txt"]["status"] == "rejected" and ".json" in by_file["notas.txt"]["errors"]["file"][0]
    assert "JSON inválido" in by_file["roto.json"]["errors"]["file"][0]
    assert "no permitido" in by_file["../../etc/evil.json"]["errors"]["file"][0]
    assert "no permitido" in by_file["/abs.json"]["errors"]["file"][0]
    assert not Ticket.objects.filter(number="M-2").exists()


def test_zip_bomb_is_refused(api_client):
    bomb = make_zip({"bomb.json": b"0" * (20 * 1024 * 1024)})
    assert len(bomb) < 100_000
    response = post_zip(api_client, "bomb", bomb)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "zip_bomb"
    assert not Batch.objects.exists()


def test_zip_with_too_many_members_or_too_big_is_refused(api_client, settings):
    settings.API_ZIP_MAX_MEMBERS = 2
    response = post_zip(api_client, "many", make_zip({f"{i}.json": "{}" for i in range(3)}))
    assert response.status_code == 413 and response.json()["error"]["code"] == "zip_too_many_members"
    settings.API_ZIP_MAX_BYTES = 10
    response = post_zip(api_client, "huge", make_zip({"a.json": "{}"}))
    assert response.status_code == 413 and response.json()["error"]["code"] == "zip_too_large"


def test_not_a_zip_or_no_file_is_a_400(api_client):
    assert post_zip(api_client, "nz", b"PK-not-really").json()["error"]["code"] == "invalid_zip"
    response = api_client.post("/api/v1/tickets/batch", {"batchId": "nofile"}, format="multipart")
    assert response.status_code == 400 and "file[0]" in response.json()["error"]["details"]


def test_zip_stored_without_compression_works_too(api_client, payload):
    data = make_zip({"a.json": json.dumps(payload(number="S-1"))}, compression=zipfile.ZIP_STORED)
    assert post_zip(api_client, "stored", data).status_code == 200


def test_second_merchant_cannot_see_batches(api_client, other_api_client, payload):
    api_client.post("/api/v1/tickets/batch", {"batch_id": "mine", "tickets": [payload()]}, format="json")
    assert other_api_client.get("/api/v1/batches/mine").status_code == 404
    assert other_api_client.get("/api/v1/batches/mine/report.csv").status_code == 404
    # Batch ids are per merchant: the other one may use the same id.
    response = other_api_client.post("/api/v1/tickets/batch", {"batch_id": "mine", "tickets": [payload()]},
                                     format="json")
    assert response.status_code == 200
