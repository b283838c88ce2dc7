"""Example payloads of the invoicing APIs for their OpenAPI schema (SAT's test RFCs; amounts that add up).

tests/contract/test_contract_examples.py validates every example against the schema it illustrates.
"""

from __future__ import annotations

BASE = "https://factura.ejemplo.mx"
API = f"{BASE}/api/v1"
UUID = "053DC7AB-C6FB-41FB-B06C-A28DB40F309A"

RECEPTOR_IN = {"rfc": "CACX7605101P8", "name": "XOCHILT CASAS CHAVEZ", "tax_regime": "612", "postal_code": "36257",
               "cfdi_use": "G03", "emails": ["xochilt@example.com"]}
RECEPTOR_OUT = {**RECEPTOR_IN, "foreign_country": "", "foreign_tax_id": ""}
FOREIGN_RECEPTOR_IN = {"rfc": "XEXX010101000", "name": "JOHN SMITH", "tax_regime": "616", "cfdi_use": "S01",
                       "foreign_country": "USA", "foreign_tax_id": "123456789", "emails": ["john@example.com"]}


def links(pk: int, documents: bool = True) -> dict:
    base = f"{API}/invoices/{pk}"
    return {"self": base, **({"xml": f"{base}/xml", "pdf": f"{base}/pdf", "zip": f"{base}/zip"} if documents else {})}


INVOICE = {
    "id": 871, "kind": "ingreso", "status": "stamped", "serie": "F", "folio": 871, "uuid": UUID, "currency": "MXN",
    "exchange_rate": None, "payment_form": "04", "payment_method": "PUE", "subtotal": "140.95", "discount": "0.00",
    "tax_total": "22.55", "withheld_total": "0.00", "total": "163.50", "issued_at": "2026-05-31T13:50:12-06:00",
    "stamped_at": "2026-05-31T13:50:13-06:00", "pac": "finkok", "attempts": 1, "receptor": RECEPTOR_OUT,
    "ticket_ids": [5012], "error": None, "links": links(871), "cancellation": None,
    "created_at": "2026-05-31T13:50:11.204000-06:00",
}

INVOICE_PENDING = {**INVOICE, "status": "pending", "uuid": None, "issued_at": None, "stamped_at": None, "pac": "",
                   "attempts": 0, "links": links(871, documents=False)}

INVOICE_CREATED = {**INVOICE_PENDING, "warnings": []}
INVOICE_CREATED_WARNING = {**INVOICE_PENDING, "id": 872, "folio": 872, "links": links(872, documents=False),
                           "receptor": {**RECEPTOR_OUT, "rfc": "EKU9003173C9", "name": "ESCUELA KEMPER URGATE",
                                        "tax_regime": "601", "postal_code": "42501"},
                           "warnings": [{"field": "name", "code": "REGIMEN_CAPITAL",
                                         "message": "Quitamos «S.A. DE C.V.» del nombre: el CFDI 4.0 lleva el nombre "
                                                    "sin el régimen de capital."}]}

INVOICE_FAILED = {**INVOICE_PENDING, "id": 873, "folio": 873, "status": "failed", "attempts": 1,
                  "links": links(873, documents=False),
                  "error": {"code": "CFDI40147", "message": "El código postal del receptor no corresponde a su RFC "
                                                            "en el SAT.", "permanent": True}}

INVOICE_LIST = {"count": 1245, "limit": 2, "offset": 0, "results": [
    INVOICE, {**INVOICE, "id": 870, "folio": 870, "uuid": "97862ADA-EB3C-41AB-AD47-736800D18C7B", "subtotal": "100.00",
              "tax_total": "16.00", "total": "116.00", "ticket_ids": [5011], "links": links(870)}]}

CANCELLATION = {
    "id": 41, "status": "requested", "motive": "02", "motive_name": "Comprobante emitido con errores sin relación",
    "replacement_id": None, "replacement_uuid": None, "tickets": "release",
    "tickets_message": "Se liberan (se pueden volver a facturar o van a la global)", "requires_acceptance": False,
    "acceptance_reason": "total_hasta_1000",
    "acceptance_message": "No requiere aceptación del receptor: su total es de hasta $1,000.00.",
    "deadline": "2027-03-31", "source": "api", "sat_status": "", "last_code": "", "last_message": "",
    "requested_at": None, "finished_at": None, "next_check_at": "2026-05-31T20:05:00Z",
    "created_at": "2026-05-31T20:05:00Z",
}

CANCEL_ACCEPTED = {"invoice": {**INVOICE, "status": "cancelling", "cancellation": CANCELLATION},
                   "cancellation": CANCELLATION}

REISSUE_CANCELLATION = {**CANCELLATION, "id": 42, "status": "waiting",
                        "motive_name": "Comprobante emitido con errores con relación", "motive": "01",
                        "replacement_id": 874, "tickets": "replacement",
                        "tickets_message": "Quedan en el CFDI sustituto"}
REISSUE_ACCEPTED = {
    "invoice": {**INVOICE, "cancellation": REISSUE_CANCELLATION},
    "replacement": {**INVOICE_PENDING, "id": 874, "folio": 874, "links": links(874, documents=False),
                    "receptor": {**RECEPTOR_OUT, "rfc": "XIQB891116QE4", "name": "BERENICE XIMO QUEZADA",
                                 "postal_code": "26015"}},
    "cancellation": REISSUE_CANCELLATION,
}

PDF_PENDING = {"status": "generating", "message": "Estamos generando tu PDF; estará listo en unos segundos.",
               "retry_after": 5}

XML_DOCUMENT = ('<?xml version="1.0" encoding="UTF-8"?>\n<cfdi:Comprobante xmlns:cfdi="http://www.sat.gob.mx/cfd/4" '
                'Version="4.0" Serie="F" Folio="871" Fecha="2026-05-31T13:50:12" SubTotal="140.95" Moneda="MXN" '
                'Total="163.50" TipoDeComprobante="I" Exportacion="01" MetodoPago="PUE" LugarExpedicion="06600">'
                '<cfdi:Emisor Rfc="EKU9003173C9" Nombre="ESCUELA KEMPER URGATE" RegimenFiscal="601"/>'
                '<cfdi:Receptor Rfc="CACX7605101P8" Nombre="XOCHILT CASAS CHAVEZ" DomicilioFiscalReceptor="36257" '
                'RegimenFiscalReceptor="612" UsoCFDI="G03"/>…</cfdi:Comprobante>')

GLOBAL_INVOICE = {
    "id": 880, "status": "stamped", "serie": "G", "folio": 31, "uuid": "96BF679E-103C-463E-A542-ED3D55B77D12",
    "branch": "CENTRO", "period": "2026-05-30..2026-05-30", "global_periodicity": "01", "global_months": "05",
    "global_year": 2026, "currency": "MXN", "exchange_rate": None, "payment_form": "01", "subtotal": "20431.03",
    "discount": "0.00", "tax_total": "3268.97", "total": "23700.00", "ticket_count": 187,
    "issued_at": "2026-05-31T00:05:10-06:00", "stamped_at": "2026-05-31T00:05:12-06:00", "error": None,
    "created_at": "2026-05-31T00:05:09.880000-06:00",
}
GLOBAL_INVOICE_DETAIL = {**GLOBAL_INVOICE, "ticket_count": 3, "subtotal": "300.00", "tax_total": "48.00",
                         "total": "348.00", "ticket_ids": [4990, 4991, 4995]}
GLOBAL_LIST = {"count": 31, "limit": 1, "offset": 0, "results": [GLOBAL_INVOICE]}
GLOBAL_ISSUED = {
    "period": "2026-05-30..2026-05-30", "label": "30 de mayo de 2026",
    "invoices": [{**GLOBAL_INVOICE_DETAIL, "status": "pending", "uuid": None, "issued_at": None, "stamped_at": None}],
    "included": [4990, 4991, 4995], "excluded": [], "late": [],
}
del GLOBAL_ISSUED["invoices"][0]["ticket_ids"]
GLOBAL_ISSUED_TICKETS = {
    "period": "2026-05-30..2026-05-30", "label": "30 de mayo de 2026",
    "invoices": [{**GLOBAL_INVOICE, "status": "pending", "uuid": None, "issued_at": None, "stamped_at": None,
                  "ticket_count": 2, "subtotal": "200.00", "tax_total": "32.00", "total": "232.00",
                  "created_at": "2026-06-02T10:00:00.000000-06:00"}],
    "included": [4990, 4991],
    "excluded": [{"ticket_id": 4992, "code": "ticket_already_invoiced",
                  "message": "El ticket A-004992 ya fue facturado."}],
    "late": [{"invoice_id": 880, "deadline": "2026-06-01T00:00:00-06:00",
              "message": "La factura global G-31 (30 de mayo de 2026, sucursal CENTRO) se emite fuera de plazo: debía "
                         "timbrarse a más tardar el 01/06/2026 a las 00:00 (24 horas tras el cierre del periodo, "
                         "regla 2.7.1.21 de la RMF); van 34 hora(s) de retraso."}],
}
GLOBAL_ELIGIBLE = {
    "period": "2026-05-30..2026-05-30", "label": "30 de mayo de 2026", "periodicity": "01",
    "starts_at": "2026-05-30T00:00:00-06:00", "ends_at": "2026-05-31T00:00:00-06:00",
    "deadline": "2026-06-01T00:00:00-06:00", "closed": True, "count": 187, "total": "23700.00",
    "subtotal": "20431.03", "tax_total": "3268.97",
    "by_branch": [{"branch": "CENTRO", "postal_code": "06600", "count": 187, "total": "23700.00"}],
    "by_payment_form": [{"payment_form": "01", "total": "15200.00"}, {"payment_form": "04", "total": "8500.00"}],
}

EXPORT = {"id": 12, "status": "done", "date_from": "2026-05-01", "date_to": "2026-05-31", "branch": None,
          "include_pdfs": False, "processed": 1245, "total": 1245, "error": "",
          "created_at": "2026-06-01T09:00:00.000000-06:00", "finished_at": "2026-06-01T09:00:41.000000-06:00",
          "links": {"self": f"{API}/exports/12", "download": f"{API}/exports/12/download"}}
EXPORT_QUEUED = {**EXPORT, "status": "queued", "processed": 0, "total": 0, "finished_at": None,
                 "links": {"self": f"{API}/exports/12"}}

REFUND_REDUCED = {"id": 9, "refund_key": "DEV-000124", "ticket_id": 5012, "kind": "reduced", "amount": "50.00",
                  "lines": [], "returned_goods": False, "ticket": {"id": 5012, "status": "open", "total": "113.50"},
                  "credit_note": None, "created_at": "2026-05-31T15:10:00.000000-06:00"}
REFUND_CREDIT_NOTE = {
    "id": 10, "refund_key": "DEV-000123", "ticket_id": 5012, "kind": "credit_note", "amount": "48.50",
    "lines": [{"position": 2, "quantity": "1"}], "returned_goods": True,
    "ticket": {"id": 5012, "status": "invoiced", "total": "163.50"},
    "credit_note": {"id": 875, "status": "pending", "serie": "NC", "folio": 12, "total": "48.50", "relation_type": "03",
                    "related_invoice_id": 871, "related_uuid": UUID, "links": {"self": "/api/v1/invoices/875"}},
    "created_at": "2026-06-02T11:30:00.000000-06:00",
}
