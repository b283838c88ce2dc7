"""Issue 18 end to end (ingestion → invoice → sandbox PAC → stamped XML checked independently):
foreign currency alone and in globals, branches in other time zones, late globals, POS rounding, factúrame."""

import calendar
import datetime as dt
import io
import json
import zoneinfo
from decimal import Decimal
from pathlib import Path

import pytest
from django.utils import timezone
from lxml import etree
from rest_framework.test import APIClient

from infra.models import Event
from invoicing.cfdi.parser import parse_cfdi
from invoicing.cfdi.resources import load_schema, load_xslt
from invoicing.cfdi.verify import verify
from invoicing.errors import InvoicingError
from invoicing.models import Invoice
from invoicing.services import invoice_issue
from invoicing.services.global_invoice import global_invoice_issue
from invoicing.services.global_schedule import global_invoices_run_merchant
from tickets.models import Branch, Ticket
from tickets.services import LineInput, api_key_create, ticket_create

MX = zoneinfo.ZoneInfo("America/Mexico_City")
TJ = zoneinfo.ZoneInfo("America/Tijuana")
OFFICIAL = Path(__file__).resolve().parents[3] / ".." / "shared" / "sat" / "xml" / "www.sat.gob.mx" / "sitio_internet"


@pytest.fixture(scope="module")
def official():
    """SAT's own XSD and cadena XSLT from ../shared/sat (CI has them); skipped where they are not."""
    if not (OFFICIAL / "cfd" / "4" / "cfdv40.xsd").is_file():
        pytest.skip("../shared/sat is not present: the official XSD/XSLT check is skipped")
    return load_schema(OFFICIAL), load_xslt(OFFICIAL / "cfd" / "4" / "cadenaoriginal_4_0" / "cadenaoriginal_4_0.xslt")


def checked(invoice: Invoice, sat_cert: bytes, official) -> etree._Element:
    """The stamped XML passes cfdi_verify (XSD, Sello via the cadena, TFD, SelloSAT) and SAT's own XSD/XSLT."""
    invoice.refresh_from_db()
    assert invoice.status == "stamped", (invoice.last_error_code, invoice.last_error_message)
    xml = bytes(invoice.stamped_xml)
    result = verify(xml, sat_cert=sat_cert)
    assert result.ok, result.summary()
    root = etree.fromstring(xml)
    schema, xslt = official
    assert schema.validate(root), schema.error_log
    assert str(xslt(etree.ElementTree(root))).startswith("||4.0|")
    return root


def make(branch, number, *, total="116.00", sold_at=None, currency="MXN", rate=None, lines=None):
    lines = lines or [LineInput(product_code="50202306", unit_code="H87", description="REFRESCO",
                                quantity=Decimal("1"), unit_price=Decimal(total))]
    return ticket_create(merchant=branch.merchant, branch=branch, number=number, lines=lines, currency=currency,
                         exchange_rate=rate, sold_at=sold_at or timezone.now() - dt.timedelta(hours=1))


# --- currency -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("currency", "rate"), [("USD", Decimal("17.250300")), ("EUR", Decimal("19.87"))])
def test_a_foreign_currency_ticket_is_invoiced_alone_with_its_rate(merchant, branch, certificate, receptor, worker,
                                                                    sat_cert, official, currency, rate):
    ticket = make(branch, "U1", currency=currency, rate=rate)
    invoice = invoice_issue(merchant=merchant, ticket_ids=[ticket.pk], receptor=receptor)
    assert (invoice.currency, invoice.exchange_rate) == (currency, rate)
    worker()
    root = checked(invoice, sat_cert, official)
    assert (root.get("Moneda"), Decimal(root.get("TipoCambio")), root.get("Total")) == (currency, rate, "116.00")


def test_a_foreign_invoice_shows_currency_and_rate_on_the_pdf_and_the_portal(merchant, branch, certificate, receptor,
                                                                             worker, client):
    from invoicing.pdf import document_context, invoice_branding

    ticket = make(branch, "U1", currency="USD", rate=Decimal("17.25"))
    invoice = invoice_issue(merchant=merchant, ticket_ids=[ticket.pk], receptor=receptor)
    worker()
    invoice.refresh_from_db()
    context = document_context(parse_cfdi(bytes(invoice.stamped_xml)), branding=invoice_branding(merchant),
                               sandbox=True)
    assert context["moneda"] == "USD (tipo de cambio 17.25)"
    page = client.get(f"/{merchant.slug}/factura/{invoice.public_code}/")
    if page.status_code == 404:  # the portal's URL for an invoice
        from django.urls import reverse

        page = client.get(reverse("shop-invoice", args=(merchant.slug, invoice.public_code)))
    text = page.content.decode()
    assert "116.00 USD" in text and "Tipo de cambio: 17.25 MXN por USD" in text, text[text.find("<main"):][:1500]


def test_mixing_currencies_or_rates_in_one_invoice_is_refused_with_the_reason(merchant, branch, receptor):
    peso = make(branch, "M1")
    dollar = make(branch, "U1", currency="USD", rate=Decimal("17.25"))
    other_day = make(branch, "U2", currency="USD", rate=Decimal("17.40"))
    with pytest.raises(InvoicingError) as exc:
        invoice_issue(merchant=merchant, ticket_ids=[peso.pk, dollar.pk], receptor=receptor)
    assert exc.value.code == "mixed_currencies" and "MXN, USD" in exc.value.message
    with pytest.raises(InvoicingError) as exc:
        invoice_issue(merchant=merchant, ticket_ids=[dollar.pk, other_day.pk], receptor=receptor)
    assert exc.value.code == "mixed_exchange_rates" and "17.25" in exc.value.message
    assert set(Ticket.objects.values_list("status", flat=True)) == {"open"}


def test_a_global_makes_one_cfdi_per_currency_and_rate_and_covers_every_ticket(merchant, branch, certificate, worker,
                                                                               sat_cert, official):
    merchant.global_periodicity = "01"
    merchant.save()
    day = (timezone.localtime(timezone.now(), MX) - dt.timedelta(days=1)).replace(hour=12, minute=0)
    tickets = [make(branch, "M1", sold_at=day), make(branch, "M2", sold_at=day, total="50.00"),
               make(branch, "U1", sold_at=day, currency="USD", rate=Decimal("17.10")),
               make(branch, "U2", sold_at=day, currency="USD", rate=Decimal("17.30")),
               make(branch, "U3", sold_at=day, currency="USD", rate=Decimal("17.10"), total="20.00"),
               make(branch, "E1", sold_at=day, currency="EUR", rate=Decimal("19.9"))]
    result = global_invoice_issue(merchant=merchant, period=day.date().isoformat())
    assert len(result.invoices) == 4 and sorted(result.included) == sorted(t.pk for t in tickets)
    worker()
    seen = {}
    for invoice in result.invoices:
        root = checked(invoice, sat_cert, official)
        seen[(root.get("Moneda"), root.get("TipoCambio"))] = (root.get("Total"),
                                                             len(root.findall("{*}Conceptos/{*}Concepto")))
    assert seen == {("MXN", None): ("166.00", 2), ("USD", "17.1"): ("136.00", 2), ("USD", "17.3"): ("116.00", 1),
                    ("EUR", "19.9"): ("116.00", 1)}
    assert set(Ticket.objects.values_list("status", flat=True)) == {"globalized"}  # none went back to open


# --- time zones -----------------------------------------------------------------------------------------------


def _month_end_2330(tz) -> dt.datetime:
    """23:30 local of the last day of the current (or, past it, the next) month: the CSD is valid then."""
    now = timezone.localtime(timezone.now(), tz)
    year, month = now.year, now.month
    for _ in range(2):
        last = calendar.monthrange(year, month)[1]
        moment = dt.datetime(year, month, last, 23, 30, tzinfo=tz)
        if moment > now:
            return moment
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    raise AssertionError


@pytest.fixture
def clock(monkeypatch):
    """``clock(moment)``: timezone.now() is ``moment`` for the code under test (the builder, the sandbox PAC)."""
    def set_to(moment: dt.datetime):
        monkeypatch.setattr(timezone, "now", lambda: moment.astimezone(dt.UTC))
    return set_to


def test_a_tijuana_branch_invoices_at_2330_of_the_months_last_day_in_local_time(
        merchant, branch, certificate, receptor, worker, sat_cert, official, postal_codes, clock):
    postal_codes("22000", "06600")
    merchant.border_region_stimulus = True
    merchant.save()
    tijuana = Branch.objects.create(merchant=merchant, code="TIJ", name="Tijuana", postal_code="22000")
    moment = _month_end_2330(TJ)  # already the next day (01:30) in Mexico City, the merchant's zone
    clock(moment - dt.timedelta(minutes=10))
    sold = make(tijuana, "T1", sold_at=moment - dt.timedelta(minutes=10))
    left = make(tijuana, "T2", sold_at=moment - dt.timedelta(minutes=5))
    centro = make(branch, "C1", sold_at=moment + dt.timedelta(minutes=5))  # 01:35 of day 1 in Mexico City
    clock(moment)
    invoice = invoice_issue(merchant=merchant, ticket_ids=[sold.pk], receptor=receptor)
    worker()
    root = checked(invoice, sat_cert, official)
    assert root.get("Fecha") == moment.strftime("%Y-%m-%dT23:30:") + root.get("Fecha")[-2:]
    assert root.get("LugarExpedicion") == "22000"
    assert timezone.localtime(Invoice.objects.get(pk=invoice.pk).issued_at, TJ).strftime("%H:%M") == "23:30"
    # The month closes in Mexico City first: only the Mexico City branch's period is closed there.
    merchant.global_periodicity = "04"
    merchant.save()
    clock(moment + dt.timedelta(minutes=20))  # 23:50 in Tijuana, 01:50 of the next month in Mexico City
    assert global_invoices_run_merchant(merchant=merchant, now=moment + dt.timedelta(minutes=20)) == []
    assert Ticket.objects.get(pk=left.pk).status == "open"
    after = moment + dt.timedelta(minutes=35)  # 00:05 of the next month in Tijuana
    clock(after)
    [g] = global_invoices_run_merchant(merchant=merchant, now=after)
    worker()
    root = checked(g, sat_cert, official)
    info = root.find("{*}InformacionGlobal")
    assert (info.get("Meses"), info.get("Año")) == (f"{moment.month:02d}", str(moment.year))
    assert root.get("LugarExpedicion") == "22000" and root.get("Fecha").startswith(after.astimezone(TJ).strftime(
        "%Y-%m-%dT00:05"))
    assert [c.get("NoIdentificacion") for c in root.iter("{*}Concepto")] == ["T2"]
    assert Ticket.objects.get(pk=centro.pk).status == "open"  # a sale of the next month in Mexico City


def test_a_mexico_city_branch_of_a_tijuana_merchant_writes_mexico_city_time(
        merchant, branch, certificate, receptor, worker, sat_cert, official, postal_codes):
    postal_codes("06600")
    merchant.time_zone = "America/Tijuana"
    merchant.save()
    ticket = make(branch, "C1")
    invoice = invoice_issue(merchant=merchant, ticket_ids=[ticket.pk], receptor=receptor)
    worker()
    root = checked(invoice, sat_cert, official)
    written = dt.datetime.fromisoformat(root.get("Fecha")).replace(tzinfo=MX)
    assert abs(written - timezone.now()) < dt.timedelta(minutes=5)  # Mexico City time, not Tijuana's


def test_the_portal_finds_a_tijuana_ticket_by_its_local_date(merchant, postal_codes):
    from portal.shopper.lookup import OK, ticket_lookup

    postal_codes("22000")
    tijuana = Branch.objects.create(merchant=merchant, code="TIJ", name="Tijuana", postal_code="22000")
    sold = (timezone.localtime(timezone.now(), TJ) - dt.timedelta(days=1)).replace(hour=23, minute=30)
    make(tijuana, "T1", sold_at=sold)
    found = ticket_lookup(merchant=merchant, number="T1", total=Decimal("116.00"), sold_on=sold.date())
    assert found.kind == OK
    nope = ticket_lookup(merchant=merchant, number="T1", total=Decimal("116.00"),
                         sold_on=sold.date() + dt.timedelta(days=1))
    assert nope.kind != OK


# --- late globals ---------------------------------------------------------------------------------------------


def test_a_late_global_is_still_issued_with_a_warning_an_event_and_a_webhook(merchant, branch, certificate, worker,
                                                                           sat_cert, official, client, make_staff):
    from invoicing.webhooks.models import WebhookDelivery, WebhookEndpoint

    WebhookEndpoint.objects.create(merchant=merchant, url="https://erp.example.com/hooks", secret="whsec_x")
    merchant.global_periodicity = "01"
    merchant.save()
    old = timezone.localtime(timezone.now(), MX) - dt.timedelta(days=3)
    make(branch, "A", sold_at=old)
    result = global_invoice_issue(merchant=merchant, period=old.date().isoformat())
    [g] = result.invoices
    [late] = result.late
    assert "fuera de plazo" in late["message"] and "2.7.1.21" in late["message"]
    event = Event.objects.get(entity="invoice", object_id=g.pk, data__late_global=True)
    assert event.data["hours_late"] >= 24
    delivery = WebhookDelivery.objects.get(event="global_invoice.late")
    assert delivery.payload["data"]["id"] == g.pk and delivery.payload["data"]["late"]["deadline"]
    worker()
    checked(g, sat_cert, official)  # and it still goes out
    client.force_login(make_staff(merchant))
    page = client.get(f"/admin/invoicing/invoice/{g.pk}/change/", follow=True)
    assert "fuera de plazo" in page.content.decode()


def test_an_on_time_global_says_nothing(merchant, branch):
    merchant.global_periodicity = "01"
    merchant.save()
    yesterday = timezone.localtime(timezone.now(), MX) - dt.timedelta(days=1)
    make(branch, "A", sold_at=yesterday.replace(hour=12))
    closes = dt.datetime.combine(yesterday.date() + dt.timedelta(days=1), dt.time(0), tzinfo=MX)
    result = global_invoice_issue(merchant=merchant, period=yesterday.date().isoformat(),
                                  now=closes + dt.timedelta(hours=1))
    assert result.invoices and result.late == []
    assert not Event.objects.filter(data__late_global=True).exists()


def test_the_admins_generate_now_warns_of_a_late_global(merchant, branch, client, make_staff):
    from invoicing.models import GlobalPeriod
    from invoicing.periods import period_containing

    merchant.global_periodicity = "01"
    merchant.save()
    old = timezone.localtime(timezone.now(), MX) - dt.timedelta(days=3)
    make(branch, "A", sold_at=old)
    period = period_containing("01", old.date())
    gp = GlobalPeriod.objects.create(merchant=merchant, periodicity="01", first_day=period.first,
                                     last_day=period.last, starts_at=period.start(MX), ends_at=period.end(MX),
                                     deadline=period.deadline(MX))
    client.force_login(make_staff(merchant))
    page = client.post("/admin/invoicing/globalperiod/", {"action": "generate_now", "_selected_action": [gp.pk]},
                       follow=True)
    assert "fuera de plazo" in page.content.decode()


# --- POS documents ---------------------------------------------------------------------------------------------


def test_a_facturame_zip_is_stored_and_then_invoiced_with_its_printed_total(merchant, branch, certificate, receptor,
                                                                          worker, sat_cert, official):
    import base64
    import zipfile

    xml = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<cfdi:Comprobante xmlns:cfdi="http://www.sat.gob.mx/cfd/3" Version="3.3" Serie="A" Folio="777" '
        f'Fecha="{timezone.localtime(timezone.now(), MX) - dt.timedelta(hours=1):%Y-%m-%dT%H:%M:%S}" '
        'SubTotal="100.00" Moneda="MXN" Total="116.01" TipoDeComprobante="I" FormaPago="01" MetodoPago="PUE" '
        'LugarExpedicion="00000"><cfdi:Emisor Rfc="AAA010101AAA" Nombre="EMISOR DE EJEMPLO" RegimenFiscal="601"/>'
        '<cfdi:Conceptos><cfdi:Concepto ClaveProdServ="50202306" Cantidad="2" ClaveUnidad="H87" '
        'Descripcion="REFRESCO" ValorUnitario="50.00" Importe="100.00"><cfdi:Impuestos><cfdi:Traslados>'
        '<cfdi:Traslado Base="100.00" Impuesto="002" TipoFactor="Tasa" TasaOCuota="0.160000" Importe="16.00"/>'
        '</cfdi:Traslados></cfdi:Impuestos></cfdi:Concepto></cfdi:Conceptos></cfdi:Comprobante>'
    ).encode()
    doc = {"cfdi": {"ref_id": "r-1", "ticket_number": "A777", "document": base64.b64encode(xml).decode()}}
    _, plain = api_key_create(merchant=merchant, name="caja", scopes=["tickets"], branch=branch)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plain}")
    upload = io.BytesIO()
    with zipfile.ZipFile(upload, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("lote/r-1.json", json.dumps(doc))
    upload.seek(0)
    upload.name = "lote.zip"
    response = client.post("/api/v1/tickets/batch", {"batchId": "fm", "file[0]": upload}, format="multipart")
    assert response.json()["report"][0]["status"] == "created", response.json()
    ticket = Ticket.objects.get(number="A777")
    invoice = invoice_issue(merchant=merchant, ticket_ids=[ticket.pk], receptor=receptor)
    worker()
    root = checked(invoice, sat_cert, official)
    assert (root.get("Total"), root.get("SubTotal"), root.get("LugarExpedicion")) == ("116.01", "100.00", "06600")
    assert root.find("{*}Emisor").get("Rfc") == merchant.rfc


def test_a_subtotal_taxed_pos_ticket_stamps_with_the_printed_total(merchant, branch, certificate, receptor, worker,
                                                                  sat_cert, official):
    def line(description, price, quantity, **extra):
        return {"product_code": "50202306", "unit_code": "H87", "description": description, "quantity": quantity,
                "unit_price": price, "tax_object": "02",
                "taxes": [{"tax": "002", "factor": "Tasa", "rate": "0.160000"}], **extra}

    _, plain = api_key_create(merchant=merchant, name="caja", scopes=["tickets"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plain}")
    lines = [line("A", "0.55", "1", prices_include_tax=False), line("B", "0.55", "1", prices_include_tax=False),
             line("C", "0.55", "1", prices_include_tax=False), line("REGALO", "0.00", "1")]
    response = client.post("/api/v1/tickets", {"branch": "CENTRO", "number": "S1", "total": "1.91",
                                               "sold_at": (timezone.now() - dt.timedelta(hours=1)).isoformat(),
                                               "lines": lines}, format="json")
    assert response.status_code == 201, response.json()
    invoice = invoice_issue(merchant=merchant, ticket_ids=[response.json()["id"]], receptor=receptor)
    worker()
    root = checked(invoice, sat_cert, official)
    assert (root.get("Total"), root.get("SubTotal")) == ("1.91", "1.65")
    assert [c.get("Importe") for c in root.iter("{*}Concepto")] == ["0.55", "0.55", "0.55"]  # the gift is left out


def test_a_border_vat_invoice_whose_merchant_dropped_the_stimulus_is_stopped_before_the_pac(
        merchant, certificate, receptor, worker, postal_codes):
    postal_codes("22000")
    merchant.border_region_stimulus = True
    merchant.save()
    tijuana = Branch.objects.create(merchant=merchant, code="TIJ", name="Tijuana", postal_code="22000")
    ticket = make(tijuana, "F1", lines=[LineInput(product_code="80141600", unit_code="E48", description="SERVICIO",
                                                  quantity=Decimal("1"), unit_price=Decimal("108"),
                                                  taxes=[{"tax": "002", "factor": "Tasa", "rate": "0.080000"}])])
    merchant.border_region_stimulus = False
    merchant.save()
    invoice = invoice_issue(merchant=merchant, ticket_ids=[ticket.pk], receptor=receptor)
    worker()
    invoice.refresh_from_db()
    assert (invoice.status, invoice.last_error_code) == ("failed", "IVA_FRONTERA")
