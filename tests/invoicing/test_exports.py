"""The accountant's export: the ZIP holds every XML of the period, and its CSV adds up to what the XMLs say; the
same over the API and the back office, each merchant seeing only its own."""

import csv
import datetime as dt
import io
import zipfile
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone
from lxml import etree
from rest_framework.test import APIClient

from infra.roles import Role
from invoicing.models import AccountingExport, Invoice
from invoicing.services import invoice_issue
from invoicing.services.exports import export_request, export_run, export_sweep
from invoicing.services.stamping import invoices_stamp_queued
from tickets.models import Branch, MerchantMembership
from tickets.services import api_key_create

CFDI = "{http://www.sat.gob.mx/cfd/4}"


@pytest.fixture(autouse=True)
def fast(settings, tmp_path):
    settings.INVOICE_STAMP_LINGER_MS = 0
    settings.MEDIA_ROOT = tmp_path


def _stamped(merchant, branch, make_ticket, receptor, numbers_totals):
    for number, total in numbers_totals:
        invoice_issue(merchant=merchant, ticket_ids=[make_ticket(branch, number=number, total=Decimal(total)).pk],
                      receptor=receptor)
    invoices_stamp_queued()


@pytest.fixture
def month(merchant, branch, certificate, make_ticket, receptor, other_merchant, other_branch):
    """Ours: three stamped invoices in the centre, one in the north, one failed; theirs: one stamped."""
    north = Branch.objects.create(merchant=merchant, code="NORTE", name="Norte", postal_code="64000")
    _stamped(merchant, branch, make_ticket, receptor, [("E1", "116.00"), ("E2", "58.00"), ("E3", "1234.56")])
    _stamped(merchant, north, make_ticket, receptor, [("N1", "10.00")])
    failed = invoice_issue(merchant=merchant, ticket_ids=[make_ticket(branch, number="E4").pk], receptor=receptor)
    Invoice.objects.filter(pk=failed.pk).update(status="failed")
    from invoicing.cfdi.testcsd import generate_test_csd
    from invoicing.services.certificates import certificate_install

    cer, key, password = generate_test_csd(other_merchant.rfc, other_merchant.legal_name)
    certificate_install(merchant=other_merchant, cer=cer, key=key, password=password)
    _stamped(other_merchant, other_branch, make_ticket, receptor, [("X1", "999.00")])
    assert Invoice.objects.filter(status="stamped").count() == 5
    today = timezone.localdate(timezone.now(), merchant.tzinfo)
    return {"first": today.replace(day=1), "last": today, "north": north}


def _run(merchant, first, last, **kwargs) -> AccountingExport:
    export = export_request(merchant=merchant, first_day=first, last_day=last, actor="contadora", **kwargs)
    assert export_run(export_id=export.pk) == "done"
    export.refresh_from_db()
    return export


def _read(export):
    with export.file.open("rb") as fh:
        return zipfile.ZipFile(io.BytesIO(fh.read()))


def _csv_rows(archive):
    text = archive.read("facturas.csv").decode("utf-8-sig")
    return list(csv.DictReader(io.StringIO(text)))


def _xml_sums(archive):
    totals, subtotals, iva = Decimal("0"), Decimal("0"), Decimal("0")
    uuids = set()
    for name in archive.namelist():
        if not name.endswith(".xml"):
            continue
        root = etree.fromstring(archive.read(name))
        totals += Decimal(root.get("Total"))
        subtotals += Decimal(root.get("SubTotal"))
        summary = root.find(f"{CFDI}Impuestos")
        iva += Decimal(summary.get("TotalImpuestosTrasladados", "0")) if summary is not None else Decimal("0")
        uuids.add(next(e for e in root.iter() if str(e.tag).endswith("TimbreFiscalDigital")).get("UUID").upper())
    return totals, subtotals, iva, uuids


def test_the_csv_adds_up_to_the_xmls_in_the_zip(month, merchant):
    export = _run(merchant, month["first"], month["last"])
    assert (export.status, export.processed, export.total) == ("done", 4, 4)
    archive = _read(export)
    assert sum(n.startswith("xml/") for n in archive.namelist()) == 4
    rows = _csv_rows(archive)
    totals, subtotals, iva, uuids = _xml_sums(archive)
    assert sum(Decimal(r["Total"]) for r in rows) == totals == Decimal("1418.56")
    assert sum(Decimal(r["Subtotal"]) for r in rows) == subtotals
    assert sum(Decimal(r["IVA 16% trasladado"]) for r in rows) == iva
    assert {r["UUID"] for r in rows} == uuids
    assert list(rows[0])[:9] == ["UUID", "Serie-folio", "Fecha", "Tipo", "RFC receptor", "Nombre receptor",
                                 "Uso CFDI", "Subtotal", "Descuento"]
    assert list(rows[0])[-4:] == ["Total", "Moneda", "Estado", "UUID relacionados"]
    assert {r["Estado"] for r in rows} == {"Timbrada"} and {r["Tipo"] for r in rows} == {"I Ingreso"}
    assert rows[0]["Serie-folio"].startswith("F-")
    xlsx = zipfile.ZipFile(io.BytesIO(archive.read("facturas.xlsx")))
    assert "xl/worksheets/sheet1.xml" in xlsx.namelist()


def test_a_branch_export_holds_only_that_branch(month, merchant):
    archive = _read(_run(merchant, month["first"], month["last"], branch=month["north"]))
    rows = _csv_rows(archive)
    assert [r["Total"] for r in rows] == ["10.00"]


def test_pdfs_are_optional(month, merchant):
    archive = _read(_run(merchant, month["first"], month["last"], branch=month["north"], include_pdfs=True))
    assert [n for n in archive.namelist() if n.endswith(".pdf")] and archive.read(
        next(n for n in archive.namelist() if n.endswith(".pdf")))[:4] == b"%PDF"


def test_an_abandoned_export_is_queued_again_and_finishes(month, merchant, django_capture_on_commit_callbacks,
                                                          monkeypatch):
    queued = []
    monkeypatch.setattr("invoicing.services.exports.enqueue_export", queued.append)
    export = export_request(merchant=merchant, first_day=month["first"], last_day=month["last"])
    AccountingExport.objects.filter(pk=export.pk).update(status="running",
                                                         heartbeat_at=timezone.now() - dt.timedelta(minutes=30))
    with django_capture_on_commit_callbacks(execute=True):
        assert export_sweep() == 1
    assert queued == [export.pk]
    assert export_run(export_id=export.pk) == "done"


# ---------------------------------------------------------------- API


def _api(merchant, scopes=("invoices",)):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key_create(merchant=merchant, name='erp', scopes=list(scopes))[1]}")
    return client


def test_the_api_queues_reports_and_downloads_an_export(month, merchant, other_merchant,
                                                        django_capture_on_commit_callbacks, monkeypatch):
    queued = []
    monkeypatch.setattr("invoicing.services.exports.enqueue_export", queued.append)
    api = _api(merchant)
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post("/api/v1/exports", {"month": f"{month['first']:%Y-%m}"}, format="json")
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["status"] == "queued" and "download" not in body["links"] and queued == [body["id"]]
    assert api.get(f"/api/v1/exports/{body['id']}/download").json()["error"]["code"] == "export_not_ready"
    export_run(export_id=body["id"])
    status = api.get(f"/api/v1/exports/{body['id']}").json()
    assert status["status"] == "done" and status["processed"] == 4 and status["links"]["download"].endswith("/download")
    download = api.get(f"/api/v1/exports/{body['id']}/download")
    assert download.status_code == 200 and download["Content-Type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(b"".join(download.streaming_content)))
    assert len(_csv_rows(archive)) == 4
    theirs = _api(other_merchant)
    assert theirs.get(f"/api/v1/exports/{body['id']}").status_code == 404
    assert theirs.get(f"/api/v1/exports/{body['id']}/download").status_code == 404


def test_the_api_refuses_bad_periods_and_other_merchants_branches(month, merchant, other_branch):
    api = _api(merchant)
    for payload, code in (({}, 400), ({"month": "2026-13"}, 400),
                          ({"date_from": "2026-03-10", "date_to": "2026-03-01"}, 400),
                          ({"date_from": "2024-01-01", "date_to": "2026-03-01"}, 400),
                          ({"month": "2026-03", "branch": other_branch.code + "X"}, 404)):
        response = api.post("/api/v1/exports", payload, format="json")
        assert response.status_code == code, (payload, response.content)
        assert set(response.json()["error"]) == {"code", "message", "details"}
    assert _api(merchant, scopes=("tickets",)).post("/api/v1/exports", {"month": "2026-03"},
                                                    format="json").status_code == 403
    assert not AccountingExport.objects.exists()


def test_another_merchants_export_is_invisible_to_the_api(month, merchant, other_merchant):
    theirs = _run(other_merchant, month["first"], month["last"])
    assert _run(merchant, month["first"], month["last"]).pk != theirs.pk
    assert _api(merchant).get(f"/api/v1/exports/{theirs.pk}").status_code == 404


# ---------------------------------------------------------------- back office


def _staff(make_staff, merchant, role):
    user = make_staff(merchant, f"persona-{role}-{merchant.pk}", permissions=[])
    MerchantMembership.objects.filter(user=user).update(role=role)
    client = Client()
    client.force_login(user)
    return client


def test_the_accountant_asks_for_last_month_in_the_back_office(month, merchant, make_staff, monkeypatch,
                                                               django_capture_on_commit_callbacks):
    queued = []
    monkeypatch.setattr("invoicing.services.exports.enqueue_export", queued.append)
    accountant = _staff(make_staff, merchant, Role.ACCOUNTANT)
    form = accountant.get("/admin/invoicing/accountingexport/add/").content.decode()
    last = month["first"] - dt.timedelta(days=1)
    assert f'value="{last:%Y-%m}"' in form  # last month is proposed
    with django_capture_on_commit_callbacks(execute=True):
        response = accountant.post("/admin/invoicing/accountingexport/add/", {"month": f"{month['first']:%Y-%m}"})
    assert response.status_code == 302, response.content.decode()[:2000]
    export = AccountingExport.objects.get()
    assert (export.merchant_id, export.first_day, export.requested_by) == (merchant.pk, month["first"],
                                                                           f"persona-accountant-{merchant.pk}")
    assert queued == [export.pk]
    export_run(export_id=export.pk)
    listing = accountant.get("/admin/invoicing/accountingexport/").content.decode()
    assert "4 de 4" in listing and "Descargar ZIP" in listing
    download = accountant.get(f"/admin/invoicing/accountingexport/{export.pk}/descargar/")
    assert download.status_code == 200 and download["Content-Type"] == "application/zip"
    cashier = _staff(make_staff, merchant, Role.CASHIER)
    assert cashier.get(f"/admin/invoicing/accountingexport/{export.pk}/descargar/").status_code == 403
    assert cashier.get("/admin/invoicing/accountingexport/add/").status_code == 403


def test_another_merchants_accountant_cannot_reach_our_export(month, merchant, other_merchant, make_staff):
    ours = _run(merchant, month["first"], month["last"])
    theirs = _staff(make_staff, other_merchant, Role.ACCOUNTANT)
    assert theirs.get(f"/admin/invoicing/accountingexport/{ours.pk}/descargar/").status_code == 404
    assert str(ours) not in theirs.get("/admin/invoicing/accountingexport/").content.decode()
