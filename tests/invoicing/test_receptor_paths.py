"""One receptor rule on every path: the portal's form, the POS API and a late request refuse the same bad receptor
with the same codes and Spanish messages, clean "S.A. DE C.V." off the name the same way, and a "|" in the name is
a 400 at the request instead of an XSD failure at stamping."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.core.cache import cache
from lxml import etree
from rest_framework.test import APIClient

from invoicing.cfdi.builder import build_ingreso
from invoicing.cfdi.inputs import Emisor, Receptor, TicketLine
from invoicing.cfdi.inputs import Ticket as EngineTicket
from invoicing.cfdi.receptor import receptor_clean, receptor_issues
from invoicing.cfdi.validation import validate
from invoicing.errors import InvoicingError
from invoicing.models import Invoice
from invoicing.services.late_request import late_request_issue
from invoicing.services.receptor import ReceptorData
from invoicing.services.stamping import invoice_stamp
from tickets.models import Ticket
from tickets.services import api_key_create

FISICA = {"rfc": "XIQB891116QE4", "name": "KARLA FUENTE NOLASCO", "tax_regime": "605", "postal_code": "01160",
          "cfdi_use": "S01", "emails": ["karla@example.com"]}
MORAL = {"rfc": "EKU9003173C9", "name": "ESCUELA KEMPER URGATE", "tax_regime": "601", "postal_code": "42501",
         "cfdi_use": "G03", "emails": ["compras@example.com"]}
# A resident abroad: SAT's generic foreign RFC, their country (c_Pais) and tax id; no postal code of their own.
FOREIGN = {"rfc": "XEXX010101000", "name": "JOHN SMITH", "tax_regime": "616", "postal_code": "", "cfdi_use": "S01",
           "foreign_country": "USA", "foreign_tax_id": "123456789", "emails": ["john@example.com"]}

BAD = {
    "bad_rfc": ({**FISICA, "rfc": "XIQB8911QE4"}, [("rfc", "RFC_FORMATO")]),
    "pipe_in_name": ({**FISICA, "name": "KARLA | FUENTE NOLASCO"}, [("name", "NOMBRE_CARACTER")]),
    "control_character_in_name": ({**FISICA, "name": "KARLA\x07FUENTE\uffff"}, [("name", "NOMBRE_CARACTER")]),
    "nul_in_name": ({**FISICA, "name": "KARLA\x00FUENTE"}, [("name", "NOMBRE_CARACTER")]),
    "regimen_not_for_persona_moral": ({**MORAL, "tax_regime": "605"}, [("tax_regime", "CFDI40158")]),
    "uso_not_allowed_for_the_regimen": ({**FISICA, "cfdi_use": "G03"}, [("cfdi_use", "CFDI40161")]),
    "uso_not_for_persona_moral": ({**MORAL, "cfdi_use": "D01"}, [("cfdi_use", "CFDI40161")]),
    "unknown_postal_code": ({**FISICA, "postal_code": "00001"}, [("postal_code", "CFDI40147")]),
    "postal_code_of_four_digits": ({**FISICA, "postal_code": "1160"}, [("postal_code", "CFDI40147")]),
    "unknown_regimen": ({**FISICA, "tax_regime": "999"}, [("tax_regime", "CFDI40157")]),
    "generic_rfc": ({**FISICA, "rfc": "XAXX010101000"}, [("rfc", "RFC_GENERICO")]),
    "name_is_only_the_regimen_de_capital": ({**MORAL, "name": "S.A. de C.V."}, [("name", "CFDI40145")]),
    "bad_email": ({**FISICA, "emails": ["karla@"]}, [("emails", "CORREO_INVALIDO")]),
    "foreigner_resident_in_mexico": ({**FOREIGN, "foreign_country": "MEX"}, [("foreign_country", "CFDI40152")]),
    "foreigner_without_country": ({**FOREIGN, "foreign_country": ""}, [("foreign_country", "CFDI40150")]),
    "foreigner_without_tax_id": ({**FOREIGN, "foreign_tax_id": ""}, [("foreign_tax_id", "CFDI40153")]),
    "foreign_tax_id_off_the_countrys_format": ({**FOREIGN, "foreign_tax_id": "12345"},
                                               [("foreign_tax_id", "CFDI40155")]),
    "xexx_with_regimen_601": ({**FOREIGN, "tax_regime": "601"}, [("tax_regime", "CFDI40159")]),
    "xexx_with_uso_g03": ({**FOREIGN, "cfdi_use": "G03"}, [("cfdi_use", "CFDI40161")]),
    "foreign_data_with_a_mexican_rfc": ({**FISICA, "foreign_country": "USA", "foreign_tax_id": "123456789"},
                                        [("foreign_country", "CFDI40151"), ("foreign_tax_id", "CFDI40154")]),
    "several_at_once": ({**FISICA, "rfc": "XIQB891116QE", "name": "A|B", "postal_code": "00001"},
                        [("rfc", "RFC_FORMATO"), ("name", "NOMBRE_CARACTER"), ("postal_code", "CFDI40147")]),
}


@pytest.fixture(autouse=True)
def _clean_cache():
    cache.clear()


@pytest.fixture
def api(merchant):
    _, plain = api_key_create(merchant=merchant, name="ERP", scopes=["invoices"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plain}")
    return client


def _receptor(data: dict) -> ReceptorData:
    return ReceptorData(**{**data, "emails": tuple(data["emails"])})


def through_the_portal(client, merchant, ticket, data) -> list[tuple[str, str, str]]:
    assert client.get(f"/t/{ticket.public_code}").status_code == 302  # in the cart
    response = client.post(f"/{merchant.slug}/datos/", {**data, "emails": ", ".join(data["emails"])})
    assert response.status_code == 400
    return sorted((field, e.code, e.message) for field, errors in response.context["form"].errors.as_data().items()
                  for e in errors)


def through_the_api(api, ticket, data) -> list[tuple[str, str, str]]:
    response = api.post("/api/v1/invoices", {"ticket_ids": [ticket.pk], "receptor": data}, format="json")
    assert response.status_code == 400, response.json()
    error = response.json()["error"]
    assert error["code"] == "invalid_receptor"
    problems = sorted((p["field"], p["code"], p["message"]) for p in error["details"]["problems"])
    assert error["message"] in [p[2] for p in problems]
    assert {field: messages for field, messages in error["details"].items() if field != "problems"} == {
        field: [m for f, _, m in problems if f == field] for field, _, _ in problems}
    return problems


def through_a_late_request(merchant, ticket, data) -> list[tuple[str, str, str]]:
    with pytest.raises(InvoicingError) as err:
        late_request_issue(merchant=merchant, ticket_ids=[ticket.pk], receptor=_receptor(data))
    assert (err.value.code, err.value.status) == ("invalid_receptor", 400)
    return sorted((p["field"], p["code"], p["message"]) for p in err.value.details["problems"])


@pytest.mark.parametrize("case", list(BAD))
def test_the_same_bad_receptor_gets_the_same_codes_and_messages_on_every_path(client, api, merchant, branch,
                                                                               make_ticket, case):
    data, expected = BAD[case]
    globalized = make_ticket(branch, number="G1")
    Ticket.objects.filter(pk=globalized.pk).update(status=Ticket.Status.GLOBALIZED)
    portal = through_the_portal(client, merchant, make_ticket(branch, number="P1"), data)
    api_problems = through_the_api(api, make_ticket(branch, number="A1"), data)
    late = through_a_late_request(merchant, globalized, data)
    assert portal == api_problems == late
    assert [(field, code) for field, code, _ in portal] == sorted(expected)
    assert not Invoice.objects.exists()


@pytest.mark.parametrize("typed", ["Escuela Kemper Urgate SA de CV", "escuela kemper urgate, S.A. DE C.V.",
                                   "ESCUELA  KEMPER URGATE S. A. de C. V."])
def test_regimen_de_capital_is_removed_and_said_the_same_way_on_every_path(client, api, merchant, branch,
                                                                            make_ticket, certificate, typed):
    data = {**MORAL, "name": typed}
    removed = receptor_clean(**{k: v for k, v in data.items() if k != "emails"}).name_removed
    notice = next(i.message for i in receptor_issues(rfc=MORAL["rfc"], name=MORAL["name"], tax_regime="601",
                                                      postal_code="42501", cfdi_use="G03", name_removed=removed))
    assert f"Quitamos «{removed}»" in notice

    # Portal: the form cleans it and the confirmation page says so; the invoice carries the clean name.
    assert client.get(f"/t/{make_ticket(branch, number='P1').public_code}").status_code == 302
    response = client.post(f"/{merchant.slug}/datos/", {**data, "emails": "compras@example.com"})
    assert response.status_code == 302, response.context["form"].errors
    assert notice in client.get(response.url).content.decode()
    client.post(f"/{merchant.slug}/confirmar/")
    portal_invoice = Invoice.objects.get()

    # API: 202 with the clean name and the same notice in "warnings".
    response = api.post("/api/v1/invoices", {"ticket_ids": [make_ticket(branch, number="A1").pk], "receptor": data},
                        format="json")
    assert response.status_code == 202, response.json()
    body = response.json()
    assert body["receptor"]["name"] == "ESCUELA KEMPER URGATE"
    assert body["warnings"] == [{"field": "name", "code": "REGIMEN_CAPITAL", "message": notice}]

    # Late request: the parked invoice carries the clean name too.
    globalized = make_ticket(branch, number="G1")
    Ticket.objects.filter(pk=globalized.pk).update(status=Ticket.Status.GLOBALIZED)
    late = late_request_issue(merchant=merchant, ticket_ids=[globalized.pk], receptor=_receptor(data))

    names = set(Invoice.objects.filter(pk__in=[portal_invoice.pk, body["id"], late.pk])
                .values_list("receptor_name", flat=True))
    assert names == {"ESCUELA KEMPER URGATE"}
    # And that is the name stamped.
    api_invoice = Invoice.objects.get(pk=body["id"])
    invoice_stamp(invoice_id=api_invoice.pk)
    api_invoice.refresh_from_db()
    assert api_invoice.status == Invoice.Status.STAMPED, api_invoice.last_error_message
    xml = etree.fromstring(bytes(api_invoice.stamped_xml))
    assert xml.find("{http://www.sat.gob.mx/cfd/4}Receptor").get("Nombre") == "ESCUELA KEMPER URGATE"


def test_a_pipe_in_the_name_is_a_400_at_the_request_not_an_xsd_error_at_stamping(api, ticket):
    response = api.post("/api/v1/invoices", {"ticket_ids": [ticket.pk],
                                             "receptor": {**FISICA, "name": "KARLA|FUENTE NOLASCO"}}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["details"]["problems"][0]["code"] == "NOMBRE_CARACTER"
    assert not Invoice.objects.exists()
    assert Ticket.objects.get(pk=ticket.pk).status == Ticket.Status.OPEN


def test_the_engine_refuses_a_pipe_with_the_same_rule_before_the_xsd():
    line = TicketLine("REFRESCO", Decimal("1"), Decimal("116.00"))
    doc = build_ingreso([EngineTicket("T1", (line,), total=Decimal("116.00"))],
                        emisor=Emisor("EKU9003173C9", "ESCUELA KEMPER URGATE", "601"),
                        receptor=Receptor("XIQB891116QE4", "KARLA | FUENTE", "01160", "605", "S01"),
                        issued_at=datetime(2026, 3, 1, 18, tzinfo=UTC), lugar_expedicion="42501")
    [issue] = [i for i in validate(doc) if i.path == "Receptor.Nombre"]
    assert issue.code == "NOMBRE_CARACTER" and issue.severity == "error"
    expected = receptor_issues(rfc="XIQB891116QE4", name="KARLA | FUENTE", tax_regime="605", postal_code="01160",
                               cfdi_use="S01")
    assert [(i.code, i.message) for i in expected] == [(issue.code, issue.message)]


def test_valid_data_passes_every_path_cleaned_the_same(client, api, merchant, branch, make_ticket):
    typed = {**FISICA, "rfc": " xiqb-891116-qe4 ", "name": " karla   fuente nolasco ", "cfdi_use": "s01",
             "emails": ["Karla@Example.com", "karla@example.com"]}
    assert client.get(f"/t/{make_ticket(branch, number='P1').public_code}").status_code == 302
    assert client.post(f"/{merchant.slug}/datos/", {**typed, "emails": ", ".join(typed["emails"])}).status_code == 302
    client.post(f"/{merchant.slug}/confirmar/")
    response = api.post("/api/v1/invoices", {"ticket_ids": [make_ticket(branch, number="A1").pk], "receptor": typed},
                        format="json")
    assert response.status_code == 202 and response.json()["warnings"] == []
    globalized = make_ticket(branch, number="G1")
    Ticket.objects.filter(pk=globalized.pk).update(status=Ticket.Status.GLOBALIZED)
    late_request_issue(merchant=merchant, ticket_ids=[globalized.pk], receptor=_receptor(typed))
    stored = list(Invoice.objects.values_list("receptor_rfc", "receptor_name", "receptor_cfdi_use", "receptor_emails"))
    assert stored == [("XIQB891116QE4", "KARLA FUENTE NOLASCO", "S01", ["karla@example.com"])] * 3


def _stamped_receptor(invoice_id: int) -> dict:
    invoice = Invoice.objects.get(pk=invoice_id)
    invoice_stamp(invoice_id=invoice.pk)
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.STAMPED, invoice.last_error_message
    xml = etree.fromstring(bytes(invoice.stamped_xml))
    assert xml.get("LugarExpedicion") == "06600"
    return dict(xml.find("{http://www.sat.gob.mx/cfd/4}Receptor").attrib)


XEXX_RECEPTOR = {"Rfc": "XEXX010101000", "Nombre": "JOHN SMITH", "DomicilioFiscalReceptor": "06600",
                 "ResidenciaFiscal": "USA", "NumRegIdTrib": "123456789", "RegimenFiscalReceptor": "616",
                 "UsoCFDI": "S01"}


def test_a_foreign_customer_is_invoiced_over_the_api_and_stamped(api, merchant, branch, make_ticket, certificate,
                                                               tmp_path):
    from django.core.management import call_command

    from invoicing.cfdi.verify import verify

    # What a POS sends for a tourist: an EIN typed with its dash, a postal code that is not the invoice's.
    typed = {**FOREIGN, "rfc": "xexx010101000", "postal_code": "90210", "foreign_country": "usa",
             "foreign_tax_id": "12-3456789"}
    response = api.post("/api/v1/invoices", {"ticket_ids": [make_ticket(branch, number="A1").pk], "receptor": typed},
                        format="json", HTTP_IDEMPOTENCY_KEY="tourist-1")
    assert response.status_code == 202, response.json()
    body = response.json()
    assert body["receptor"] | {"emails": []} == {
        "rfc": "XEXX010101000", "name": "JOHN SMITH", "tax_regime": "616", "postal_code": "06600",
        "cfdi_use": "S01", "emails": [], "foreign_country": "USA", "foreign_tax_id": "123456789"}
    # The same request again is the same invoice (the stored postal code is the branch's, not the request's).
    again = api.post("/api/v1/invoices", {"ticket_ids": [body["ticket_ids"][0]], "receptor": typed}, format="json",
                     HTTP_IDEMPOTENCY_KEY="tourist-1")
    assert (again.status_code, again.json()["id"]) == (202, body["id"])
    other = api.post("/api/v1/invoices", {"ticket_ids": [body["ticket_ids"][0]],
                                          "receptor": {**typed, "foreign_tax_id": "987654321"}},
                     format="json", HTTP_IDEMPOTENCY_KEY="tourist-1")
    assert other.status_code == 422
    assert other.json()["error"]["details"]["fields"] == ["receptor.foreign_tax_id"]

    assert _stamped_receptor(body["id"]) == XEXX_RECEPTOR
    cer = tmp_path / "sandbox.cer"
    call_command("sandbox_pac_certificate", "--out", str(cer))
    check = verify(bytes(Invoice.objects.get(pk=body["id"]).stamped_xml), cer.read_bytes())
    assert check.ok, check.summary()
    # The printed representation shows the receptor's residence and tax id too.
    from django.template.loader import render_to_string

    from invoicing.cfdi.parser import parse_cfdi
    from invoicing.pdf import document_context, invoice_branding

    xml = bytes(Invoice.objects.get(pk=body["id"]).stamped_xml)
    html = render_to_string("invoicing/pdf.html", document_context(parse_cfdi(xml), sandbox=True,
                                                                   branding=invoice_branding(merchant)))
    assert "Residencia fiscal: USA · Registro tributario: 123456789" in html


def test_soy_extranjero_in_the_portal_works_without_the_script(client, merchant, branch, make_ticket, certificate):
    # No JS: the RFC, régimen and uso are left as typed (empty or not), the box sets them on the server.
    assert client.get(f"/t/{make_ticket(branch, number='P1').public_code}").status_code == 302
    response = client.post(f"/{merchant.slug}/datos/", {
        "foreign": "on", "rfc": "", "name": "John Smith", "tax_regime": "", "cfdi_use": "", "postal_code": "",
        "foreign_country": "USA", "foreign_tax_id": "123-456-789", "emails": "john@example.com"})
    assert response.status_code == 302, response.context["form"].errors
    page = client.get(response.url).content.decode()
    assert "Estados Unidos" in page and "123456789" in page and "XEXX010101000" in page
    client.post(f"/{merchant.slug}/confirmar/")
    invoice = Invoice.objects.get()
    assert (invoice.receptor_rfc, invoice.receptor_tax_regime, invoice.receptor_cfdi_use, invoice.receptor_country,
            invoice.receptor_tax_id, invoice.receptor_postal_code) == (
        "XEXX010101000", "616", "S01", "USA", "123456789", "06600")
    assert _stamped_receptor(invoice.pk) == XEXX_RECEPTOR


def test_soy_extranjero_still_asks_for_country_and_tax_id(client, merchant, branch, make_ticket):
    assert client.get(f"/t/{make_ticket(branch, number='P1').public_code}").status_code == 302
    response = client.post(f"/{merchant.slug}/datos/", {"foreign": "on", "name": "John Smith",
                                                        "foreign_country": "MEX", "emails": "john@example.com"})
    assert response.status_code == 400
    errors = {f: [e.code for e in es] for f, es in response.context["form"].errors.as_data().items()}
    assert errors == {"foreign_country": ["CFDI40152"], "foreign_tax_id": ["CFDI40153"]}
    page = response.content.decode()
    assert "Soy extranjero" in page and "País de residencia fiscal" in page
    assert not Invoice.objects.exists()


def test_a_foreign_customer_through_a_late_request(merchant, branch, make_ticket):
    globalized = make_ticket(branch, number="G1")
    Ticket.objects.filter(pk=globalized.pk).update(status=Ticket.Status.GLOBALIZED)
    invoice = late_request_issue(merchant=merchant, ticket_ids=[globalized.pk], receptor=_receptor(FOREIGN))
    invoice.refresh_from_db()
    assert (invoice.receptor_rfc, invoice.receptor_country, invoice.receptor_tax_id,
            invoice.receptor_postal_code) == ("XEXX010101000", "USA", "123456789", "06600")
