"""Issue 18 at ingestion: a ticket that could never be invoiced right is refused when the POS sends it.

Foreign currency and its rate, IVA 8 % in the border region only, POS rounding, gift lines, c_TasaOCuota from a
loaded catalog, tickets without a branch (LugarExpedicion, the API key's branch), the POS's Emisor ignored.
"""

import datetime as dt
import io
import json
from decimal import Decimal

import pytest
from django.utils import timezone
from rest_framework.test import APIClient
from ticket_api_helpers import b64, line, make_zip

from infra.models import Event
from tickets.models import Branch, ExchangeRate, TaxRateRule, Ticket
from tickets.services import api_key_create


def usd(payload, **overrides):
    data = payload(currency="USD", **overrides)
    return data


def client_for(key_plain: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key_plain}")
    return client


def post(client, data):
    return client.post("/api/v1/tickets", data, format="json")


# --- currency ---------------------------------------------------------------------------------------------


def test_usd_ticket_with_the_pos_rate_is_stored_with_it(api_client, payload):
    response = post(api_client, usd(payload, exchange_rate="17.250300"))
    assert response.status_code == 201, response.json()
    ticket = Ticket.objects.get(pk=response.json()["id"])
    assert (ticket.currency, ticket.exchange_rate) == ("USD", Decimal("17.250300"))


def test_a_foreign_ticket_whose_rate_cannot_be_known_is_refused_now(api_client, payload):
    response = post(api_client, usd(payload))
    assert response.status_code == 400
    message = response.json()["error"]["details"]["exchange_rate"][0]
    assert "tipo de cambio es obligatorio" in message and "tabla de tipos de cambio" in message
    assert not Ticket.objects.exists()


def test_the_rate_comes_from_the_merchants_table_of_the_sales_local_day(api_client, payload, merchant):
    sold = timezone.now() - dt.timedelta(hours=2)
    local_day = timezone.localtime(sold, merchant.tzinfo).date()
    ExchangeRate.objects.create(merchant=merchant, currency="USD", valid_from=local_day - dt.timedelta(days=3),
                                rate=Decimal("17.1"))
    ExchangeRate.objects.create(merchant=merchant, currency="USD", valid_from=local_day, rate=Decimal("17.4"))
    ExchangeRate.objects.create(merchant=merchant, currency="USD", valid_from=local_day + dt.timedelta(days=1),
                                rate=Decimal("99"))
    response = post(api_client, usd(payload, sold_at=sold.isoformat()))
    assert response.status_code == 201, response.json()
    assert Ticket.objects.get().exchange_rate == Decimal("17.4")


def test_the_last_rate_before_a_holiday_bridge_still_applies_but_not_a_stale_one(api_client, payload, merchant):
    sold = timezone.now() - dt.timedelta(hours=2)
    local_day = timezone.localtime(sold, merchant.tzinfo).date()
    rate = ExchangeRate.objects.create(merchant=merchant, currency="EUR", valid_from=local_day - dt.timedelta(days=4),
                                       rate=Decimal("19.9"))
    assert post(api_client, payload(currency="EUR", sold_at=sold.isoformat(), number="E1")).status_code == 201
    ExchangeRate.objects.filter(pk=rate.pk).update(valid_from=local_day - dt.timedelta(days=8))
    response = post(api_client, payload(currency="EUR", sold_at=sold.isoformat(), number="E2"))
    assert response.status_code == 400 and "exchange_rate" in response.json()["error"]["details"]


def test_a_pos_rate_too_far_from_the_days_rate_is_refused(api_client, payload, merchant):
    sold = timezone.now() - dt.timedelta(hours=2)
    ExchangeRate.objects.create(merchant=merchant, currency="USD", valid_from=timezone.localtime(
        sold, merchant.tzinfo).date(), rate=Decimal("17.00"))
    ok = post(api_client, usd(payload, exchange_rate="17.80", sold_at=sold.isoformat(), number="OK"))
    assert ok.status_code == 201  # 4.7 % away: within c_Moneda's 5 %
    far = post(api_client, usd(payload, exchange_rate="18.00", sold_at=sold.isoformat(), number="FAR"))
    assert far.status_code == 400
    assert "CFDI40118" in far.json()["error"]["details"]["exchange_rate"][0]


def test_another_merchants_rates_are_not_used(api_client, payload, other_merchant):
    ExchangeRate.objects.create(merchant=other_merchant, currency="USD", valid_from=dt.date(2020, 1, 1),
                                rate=Decimal("17"))
    for offset in range(0, 9, 3):
        ExchangeRate.objects.get_or_create(merchant=other_merchant, currency="USD",
                                           valid_from=timezone.localdate() - dt.timedelta(days=offset),
                                           defaults={"rate": Decimal("17")})
    assert post(api_client, usd(payload)).status_code == 400


@pytest.mark.parametrize(("currency", "fragment"), [("JPY", "2 decimales"), ("XXX", "c_Moneda"), ("ZZZ", "c_Moneda"),
                                                    ("US", "c_Moneda"), (["USD"], "c_Moneda")])
def test_currencies_that_cannot_be_a_sale_with_cents_are_refused(api_client, payload, currency, fragment):
    response = post(api_client, payload(currency=currency, exchange_rate="1.5"))
    assert response.status_code == 400
    assert fragment in response.json()["error"]["details"]["currency"][0]


def test_a_lowercase_currency_is_its_iso_code_and_an_absurd_rate_is_a_field_error(api_client, payload):
    response = post(api_client, payload(currency="usd", exchange_rate="17.5"))
    assert response.status_code == 201 and Ticket.objects.get().currency == "USD"
    # The schema's pattern (three letters) is what is accepted: padding is refused, not trimmed.
    padded = post(api_client, payload(currency=" usd ", exchange_rate="17.5", number="P"))
    assert padded.status_code == 400 and "currency" in padded.json()["error"]["details"]
    huge = post(api_client, payload(currency="USD", exchange_rate="999999999999999", number="H"))
    assert huge.status_code == 400 and "exchange_rate" in huge.json()["error"]["details"]


def test_mxn_with_a_rate_other_than_one_is_refused(api_client, payload):
    response = post(api_client, payload(exchange_rate="17.5"))
    assert response.status_code == 400 and "exchange_rate" in response.json()["error"]["details"]
    assert post(api_client, payload(exchange_rate="1", number="ONE")).status_code == 201


# --- exchange-rate table over the API ---------------------------------------------------------------------


def test_exchange_rates_api_records_corrects_and_lists_per_merchant(api_client, other_api_client, merchant):
    body = {"currency": "usd", "valid_from": "2026-05-30", "rate": "17.250300"}
    created = api_client.post("/api/v1/exchange-rates", body, format="json")
    assert created.status_code == 201, created.json()
    assert created.json() == {"currency": "USD", "valid_from": "2026-05-30", "rate": "17.250300", "source": "dof_fix"}
    fixed = api_client.post("/api/v1/exchange-rates", {**body, "rate": "17.3"}, format="json")
    assert fixed.status_code == 200 and fixed.json()["rate"] == "17.300000"
    assert ExchangeRate.objects.get(merchant=merchant).rate == Decimal("17.3")
    assert Event.objects.filter(entity="exchange_rate").count() == 2
    assert api_client.get("/api/v1/exchange-rates?currency=USD").json()["results"][0]["rate"] == "17.300000"
    assert other_api_client.get("/api/v1/exchange-rates").json() == {"results": []}


@pytest.mark.parametrize(("body", "field"), [
    ({"currency": "MXN", "valid_from": "2026-05-30", "rate": "1"}, "currency"),
    ({"currency": "USD", "valid_from": "30/05/2026", "rate": "17"}, "valid_from"),
    ({"currency": "USD", "valid_from": "2026-05-30", "rate": "-1"}, "rate"),
    ({"currency": "USD", "valid_from": "2026-05-30", "rate": "17.1234567"}, "rate"),
    ({"currency": "USD", "valid_from": "2026-05-30", "rate": "1e13"}, "rate"),
    ({"currency": "USD", "valid_from": "2026-05-30", "rate": "17", "source": "banxico"}, "source"),
])
def test_exchange_rates_api_answers_bad_input_by_field(api_client, body, field):
    response = api_client.post("/api/v1/exchange-rates", body, format="json")
    assert response.status_code == 400 and field in response.json()["error"]["details"]


# --- IVA 8 % --------------------------------------------------------------------------------------------------


def border_payload(payload, branch="CENTRO", number="F-1"):
    return payload(branch=branch, number=number, total="108.00",
                   lines=[line("SERVICIO", "108.00", "1", rate="0.080000")])


def test_iva_8_without_the_stimulus_is_refused_with_the_field(api_client, payload, postal_codes, merchant):
    postal_codes("22000")
    Branch.objects.create(merchant=merchant, code="TIJ", name="Tijuana", postal_code="22000")
    response = post(api_client, border_payload(payload, "TIJ"))
    assert response.status_code == 400
    assert "no declara aplicarlo" in response.json()["error"]["details"]["lines[0].taxes[0].rate"][0]


def test_iva_8_outside_the_border_region_is_refused(api_client, payload, postal_codes, merchant):
    postal_codes("06600")
    merchant.border_region_stimulus = True
    merchant.save()
    response = post(api_client, border_payload(payload))
    assert response.status_code == 400
    assert "CP 06600" in response.json()["error"]["details"]["lines[0].taxes[0].rate"][0]


def test_iva_8_when_the_catalog_does_not_know_the_postal_code_is_refused(api_client, payload, merchant):
    merchant.border_region_stimulus = True
    merchant.save()
    response = post(api_client, border_payload(payload))
    assert response.status_code == 400
    assert "load_sat_catalogs" in response.json()["error"]["details"]["lines[0].taxes[0].rate"][0]


def test_iva_8_in_a_border_branch_of_a_merchant_with_the_stimulus_is_accepted(api_client, payload, postal_codes,
                                                                              merchant):
    postal_codes("22000", "32000")
    merchant.border_region_stimulus = True
    merchant.save()
    Branch.objects.create(merchant=merchant, code="TIJ", name="Tijuana", postal_code="22000")
    Branch.objects.create(merchant=merchant, code="JRZ", name="Juárez", postal_code="32000")
    assert post(api_client, border_payload(payload, "TIJ")).status_code == 201
    assert post(api_client, border_payload(payload, "JRZ", "F-2")).status_code == 201


# --- POS rounding and gift lines ------------------------------------------------------------------------------


def test_a_subtotal_taxed_ticket_a_cent_off_is_accepted_with_the_printed_total(api_client, payload):
    net = [line("ARTICULO", "0.55", "1", prices_include_tax=False)] * 3  # per line 0.64 ×3 = 1.92; POS: 1.91
    response = post(api_client, payload(total="1.91", lines=net))
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["total"], body["subtotal"], body["tax_total"]) == ("1.91", "1.65", "0.26")
    assert "ajustó un centavo" in body["warnings"][0]


def test_a_gift_line_is_kept_on_the_ticket_and_a_ticket_of_gifts_only_is_refused(api_client, payload):
    response = post(api_client, payload(total="44.00", lines=[line("REFRESCO"), line("PALETA DE REGALO", "0", "1")]))
    assert response.status_code == 201, response.json()
    assert [ln["description"] for ln in response.json()["lines"]] == ["REFRESCO", "PALETA DE REGALO"]
    gifts = post(api_client, payload(number="G", total="0", lines=[line("REGALO", "0.00", "1")]))
    assert gifts.status_code == 400 and "precio 0" in gifts.json()["error"]["details"]["lines"][0]


# --- c_TasaOCuota loaded from a newer file --------------------------------------------------------------------


def test_ieps_200_is_refused_until_a_catalog_with_it_is_loaded(api_client, payload):
    cigarettes = [{**line("CIGARROS", "90.00", "1"),
                   "taxes": [{"tax": "003", "factor": "Tasa", "rate": "2.000000"},
                             {"tax": "002", "factor": "Tasa", "rate": "0.160000"}]}]
    refused = post(api_client, payload(total="90.00", lines=cigarettes))
    assert refused.status_code == 400
    assert "1.600000" in refused.json()["error"]["details"]["lines[0].taxes[0].rate"][0]
    from django.core.management import call_command

    call_command("load_sat_catalogs", only="tax_rates", stdout=io.StringIO())
    TaxRateRule.objects.create(kind="fijo", tax="003", factor="Tasa", value=Decimal("2.000000"), transfer=True,
                               withholding=True)
    from tickets.catalogs import tax_rate_catalog_clear

    tax_rate_catalog_clear()
    assert post(api_client, payload(total="90.00", lines=cigarettes, number="C2")).status_code == 201


def test_sugary_drink_cuota_2026_is_accepted(api_client, payload):
    drink = [{**line("REFRESCO 2 L", "40.00", "1"),
              "taxes": [{"tax": "003", "factor": "Cuota", "rate": "3.0818"},
                        {"tax": "002", "factor": "Tasa", "rate": "0.160000"}]}]
    assert post(api_client, payload(total="40.00", lines=drink)).status_code == 201


# --- branch --------------------------------------------------------------------------------------------------


def test_a_ticket_without_a_branch_needs_a_key_bound_to_one(api_client, payload, merchant, branch):
    response = post(api_client, payload(branch=None))
    assert response.status_code == 400 and "branch" in response.json()["error"]["details"]
    _, plain = api_key_create(merchant=merchant, name="caja 1", scopes=["tickets"], branch=branch)
    created = post(client_for(plain), payload(branch=None))
    assert created.status_code == 201 and created.json()["branch"] == "CENTRO"


def test_a_key_cannot_be_bound_to_another_merchants_branch(merchant, other_branch):
    from infra.errors import InvalidInput

    with pytest.raises(InvalidInput):
        api_key_create(merchant=merchant, name="x", scopes=["tickets"], branch=other_branch)


def facturame_example(*, total="116.01", place="00000", emisor_rfc="AAA010101AAA"):
    """Like factúrame's documentation: CFDI 3.3 without Receptor, placeholder Emisor and LugarExpedicion, a Total a
    cent above SubTotal + IVA, no branch field."""
    xml = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<cfdi:Comprobante xmlns:cfdi="http://www.sat.gob.mx/cfd/3" Version="3.3" Serie="A" Folio="123" '
        f'Fecha="2026-01-15T12:00:00" SubTotal="100.00" Moneda="MXN" Total="{total}" TipoDeComprobante="I" '
        f'FormaPago="01" MetodoPago="PUE" LugarExpedicion="{place}">'
        f'<cfdi:Emisor Rfc="{emisor_rfc}" Nombre="EMISOR DE EJEMPLO" RegimenFiscal="601"/>'
        '<cfdi:Conceptos><cfdi:Concepto ClaveProdServ="50202306" Cantidad="2" ClaveUnidad="H87" '
        'Descripcion="REFRESCO" ValorUnitario="50.00" Importe="100.00">'
        '<cfdi:Impuestos><cfdi:Traslados><cfdi:Traslado Base="100.00" Impuesto="002" TipoFactor="Tasa" '
        'TasaOCuota="0.160000" Importe="16.00"/></cfdi:Traslados></cfdi:Impuestos></cfdi:Concepto>'
        '</cfdi:Conceptos></cfdi:Comprobante>'
    ).encode()
    return {"cfdi": {"ref_id": "abc-123", "ticket_number": "A123", "document": b64(xml)}}


def post_zip(client, batch_id, files):
    upload = io.BytesIO(make_zip(files))
    upload.name = "tickets.zip"
    return client.post("/api/v1/tickets/batch", {"batchId": batch_id, "file[0]": upload}, format="multipart")


def test_facturame_zip_is_stored_in_the_keys_branch_with_the_printed_total(merchant, branch):
    Branch.objects.create(merchant=merchant, code="NORTE", name="Norte", postal_code="64000")
    _, plain = api_key_create(merchant=merchant, name="caja centro", scopes=["tickets"], branch=branch)
    response = post_zip(client_for(plain), "fm-1", {"lote/abc-123.json": json.dumps(facturame_example())})
    assert response.status_code == 200, response.json()
    [entry] = response.json()["report"]
    assert (entry["status"], entry["branch"], entry["number"], entry["ref_id"]) == ("created", "CENTRO", "A123",
                                                                                      "abc-123")
    warnings = " ".join(entry["warnings"])
    assert "AAA010101AAA" in warnings and "EKU9003173C9" in warnings  # the POS's Emisor is ignored, and said so
    assert "LugarExpedicion «00000»" in warnings and "06600" in warnings
    assert "ajustó un centavo" in warnings
    ticket = Ticket.objects.get(number="A123")
    assert (ticket.total, ticket.subtotal, ticket.tax_total) == (Decimal("116.01"), Decimal("100.00"),
                                                                 Decimal("16.01"))
    csv_report = client_for(plain).get("/api/v1/batches/fm-1/report.csv").content.decode()
    assert "AAA010101AAA" in csv_report


def test_a_document_without_branch_takes_the_branch_of_its_lugar_expedicion(merchant, branch, api_client):
    Branch.objects.create(merchant=merchant, code="NORTE", name="Norte", postal_code="64000")
    data = facturame_example(place="64000", total="116.00", emisor_rfc="EKU9003173C9")
    response = post_zip(api_client, "fm-2", {"a.json": json.dumps(data)})
    [entry] = response.json()["report"]
    assert (entry["status"], entry["branch"]) == ("created", "NORTE")
    assert "warnings" not in entry


def test_a_document_without_branch_nor_known_place_nor_key_branch_is_refused(merchant, branch, api_client):
    Branch.objects.create(merchant=merchant, code="NORTE", name="Norte", postal_code="64000")
    response = post_zip(api_client, "fm-3", {"a.json": json.dumps(facturame_example())})
    [entry] = response.json()["report"]
    assert entry["status"] == "rejected" and "00000" in entry["errors"]["branch"][0]


def test_a_document_from_a_tijuana_branch_is_read_in_tijuana_time(merchant, api_client, postal_codes):
    postal_codes("22000")
    Branch.objects.create(merchant=merchant, code="TIJ", name="Tijuana", postal_code="22000")
    data = facturame_example(place="22000", total="116.00", emisor_rfc="EKU9003173C9")
    response = post_zip(api_client, "fm-4", {"a.json": json.dumps(data)})
    assert response.json()["report"][0]["status"] == "created", response.json()
    sold = Ticket.objects.get().sold_at
    assert sold == dt.datetime(2026, 1, 15, 20, 0, tzinfo=dt.UTC)  # 12:00 in Tijuana (UTC−8), not Mexico City


def test_a_background_batch_remembers_the_keys_branch(merchant, branch, payload, settings,
                                                      django_capture_on_commit_callbacks, monkeypatch):
    from tickets.ingest import lifecycle, tasks
    from tickets.models import Batch

    settings.API_BATCH_SYNC_MAX = 1
    monkeypatch.setattr(lifecycle, "enqueue_batch", lambda pk: None)
    _, plain = api_key_create(merchant=merchant, name="caja", scopes=["tickets"], branch=branch)
    tickets = [payload(number="B1", branch=None), payload(number="B2", branch=None)]
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(plain).post("/api/v1/tickets/batch", {"batch_id": "bg", "tickets": tickets},
                                          format="json")
    assert response.status_code == 202
    batch = Batch.objects.get(batch_id="bg")
    assert batch.default_branch_id == branch.pk
    assert tasks.process_batch(batch.pk) == "done"
    assert set(Ticket.objects.values_list("branch__code", flat=True)) == {"CENTRO"}


def test_a_key_whose_branch_was_deactivated_says_so(merchant, payload):
    closed = Branch.objects.create(merchant=merchant, code="VIEJA", name="Vieja", postal_code="06600", is_active=False)
    _, plain = api_key_create(merchant=merchant, name="caja", scopes=["tickets"], branch=closed)
    response = post(client_for(plain), payload(branch=None))
    assert response.status_code == 400 and "VIEJA" in response.json()["error"]["details"]["branch"][0]
