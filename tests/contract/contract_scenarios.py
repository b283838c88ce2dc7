"""One or more real requests per operation of the API (by operationId), made against the ``world`` fixture.

The first request of each operation is its success; the others are answers the operation documents (a conflict,
a PDF still rendering…). A new operation without a scenario fails tests/contract/test_contract_conformance.py.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass, field

SCOPES = ["tickets", "invoices", "webhooks"]
RECEPTOR = {"rfc": "CACX7605101P8", "name": "XOCHILT CASAS CHAVEZ", "tax_regime": "612", "postal_code": "36257",
            "cfdi_use": "G03", "emails": ["xochilt@example.com"]}


@dataclass
class Call:
    method: str
    path: str
    status: int
    body: object = None
    headers: dict = field(default_factory=dict)
    multipart: bool = False
    valid_request: bool = True  # False for a call that sends what the schema forbids, to see the refusal


def _ticket(number: str, sold_at: str) -> dict:
    return {"branch": "CENTRO", "number": number, "sold_at": sold_at, "payment_form": "04", "total": "163.50",
            "lines": [
                {"product_code": "50202306", "unit_code": "H87", "description": "REFRESCO DE COLA 600 ML",
                 "quantity": "2", "unit_price": "22.00", "taxes": [{"tax": "002", "factor": "Tasa",
                                                                    "rate": "0.160000"}]},
                {"product_code": "50181900", "unit_code": "H87", "description": "PAN BLANCO CAJA", "quantity": "1",
                 "unit_price": "48.50", "taxes": [{"tax": "002", "factor": "Tasa", "rate": "0.000000"}]},
                {"product_code": "14111514", "unit_code": "H87", "description": "CUADERNO PROFESIONAL",
                 "quantity": "1", "unit_price": "71.00", "taxes": [{"tax": "002", "factor": "Tasa",
                                                                    "rate": "0.160000"}]}]}


def _zip(*files: tuple[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in files:
            archive.writestr(name, data)
    return out.getvalue()


def scenarios(w, now_iso: str) -> dict[str, list[Call]]:
    i = w.ids
    v1 = "/api/v1"
    return {
        # --- tickets
        "tickets_create": [
            Call("POST", f"{v1}/tickets", 201, _ticket("A-000123", now_iso)),
            Call("POST", f"{v1}/tickets", 200, _ticket("A-000123", now_iso)),
            Call("POST", f"{v1}/tickets", 409, {**_ticket("A-000123", now_iso), "payment_form": "01"}),
            Call("POST", f"{v1}/tickets", 400, {**_ticket("A-000124", now_iso), "total": "100.00"}),
        ],
        "tickets_list": [Call("GET", f"{v1}/tickets?status=open&limit=2", 200),
                         Call("GET", f"{v1}/tickets?limit=0", 400, valid_request=False)],
        "tickets_retrieve": [Call("GET", f"{v1}/tickets/{i['open']}", 200)],
        "tickets_validate": [Call("GET", f"{v1}/tickets/validate?number=A-100&total=116.00", 200),
                             Call("GET", f"{v1}/tickets/validate?number=NO-EXISTE", 200)],
        "tickets_expire": [Call("POST", f"{v1}/tickets/{i['to_expire']}/expire", 200)],
        "tickets_void": [Call("POST", f"{v1}/tickets/{i['to_void']}/void", 200, {"reason": "Devolución en caja"}),
                         Call("POST", f"{v1}/tickets/{i['invoiced_ticket']}/void", 409, {})],
        "tickets_refund": [
            Call("POST", f"{v1}/tickets/{i['to_refund']}/refunds", 201, {"refund_key": "DEV-1", "amount": "50.00"}),
            Call("POST", f"{v1}/tickets/{i['to_refund']}/refunds", 200, {"refund_key": "DEV-1", "amount": "50.00"}),
            Call("POST", f"{v1}/tickets/{i['to_refund']}/refunds", 422, {"refund_key": "DEV-1", "amount": "20.00"}),
        ],
        # --- batches
        "batches_create": [
            Call("POST", f"{v1}/tickets/batch", 200, {"batch_id": "LOTE-2", "tickets": [_ticket("L-2", now_iso)]}),
            Call("POST", f"{v1}/tickets/batch", 207, {"batch_id": "LOTE-3", "tickets": [
                _ticket("L-3", now_iso), {**_ticket("L-4", now_iso), "total": "1.00"}]}),
            Call("POST", f"{v1}/tickets/batch", 422, {"batch_id": "LOTE-2", "tickets": [_ticket("L-2", now_iso)]}),
            Call("POST", f"{v1}/tickets/batch", 200, {"batchId": "LOTE-ZIP", "file": _zip(
                ("t/L-5.json", __import__("json").dumps(_ticket("L-5", now_iso)).encode()))}, multipart=True),
        ],
        "batches_retrieve": [Call("GET", f"{v1}/batches/{i['batch']}", 200)],
        "batches_report_csv": [Call("GET", f"{v1}/batches/{i['batch']}/report.csv", 200)],
        # --- exchange rates
        "exchange_rates_list": [Call("GET", f"{v1}/exchange-rates?currency=USD", 200)],
        "exchange_rates_set": [
            Call("POST", f"{v1}/exchange-rates", 201, {"currency": "EUR", "valid_from": "2026-05-30",
                                                       "rate": "19.871200"}),
            Call("POST", f"{v1}/exchange-rates", 200, {"currency": "EUR", "valid_from": "2026-05-30",
                                                       "rate": "19.901100"}),
            Call("POST", f"{v1}/exchange-rates", 400, {"currency": "MXN", "valid_from": "2026-05-30",
                                                       "rate": "1"}),
        ],
        # --- invoices
        "invoices_list": [Call("GET", f"{v1}/invoices?status=stamped&limit=2", 200)],
        "invoices_create": [
            Call("POST", f"{v1}/invoices", 202, {"ticket_ids": [i["to_invoice"]], "receptor": RECEPTOR},
                 headers={"Idempotency-Key": "venta-A-101-1"}),
            Call("POST", f"{v1}/invoices", 202, {"ticket_ids": [i["to_invoice"]], "receptor": RECEPTOR},
                 headers={"Idempotency-Key": "venta-A-101-1"}),
            Call("POST", f"{v1}/invoices", 422, {"ticket_ids": [i["open"]], "receptor": RECEPTOR},
                 headers={"Idempotency-Key": "venta-A-101-1"}),
            Call("POST", f"{v1}/invoices", 409, {"ticket_ids": [i["to_invoice"]], "receptor": RECEPTOR}),
            Call("POST", f"{v1}/invoices", 400, {"ticket_ids": [i["open"]], "receptor": {**RECEPTOR,
                                                                                       "rfc": "XYZ"}}),
        ],
        "invoices_retrieve": [Call("GET", f"{v1}/invoices/{i['invoice']}", 200)],
        "invoices_document": [Call("GET", f"{v1}/invoices/{i['invoice']}/xml", 200),
                              Call("GET", f"{v1}/invoices/{i['invoice']}/pdf", 200),
                              Call("GET", f"{v1}/invoices/{i['invoice']}/zip", 200),
                              Call("GET", f"{v1}/invoices/{i['pending_invoice']}/xml", 409)],
        "invoices_resend": [Call("POST", f"{v1}/invoices/{i['to_resend']}/resend", 202,
                                 {"emails": ["contabilidad@example.com"]}),
                            Call("POST", f"{v1}/invoices/{i['pending_invoice']}/resend", 409, {})],
        "invoices_withdraw": [Call("POST", f"{v1}/invoices/{i['scheduled_invoice']}/withdraw", 200),
                              Call("POST", f"{v1}/invoices/{i['scheduled_invoice']}/withdraw", 409)],
        "invoices_cancel": [Call("POST", f"{v1}/invoices/{i['to_cancel']}/cancel", 202,
                                 {"motive": "02", "tickets": "release"}),
                            Call("POST", f"{v1}/invoices/{i['to_cancel']}/cancel", 409, {"motive": "02"}),
                            Call("POST", f"{v1}/invoices/{i['invoice']}/cancel", 422, {"motive": "09"})],
        "invoices_reissue": [Call("POST", f"{v1}/invoices/{i['to_reissue']}/reissue", 202,
                                  {"receptor": {"cfdi_use": "G01"}}),
                             Call("POST", f"{v1}/invoices/{i['invoice']}/reissue", 422,
                                  {"receptor": {"cfdi_use": "G03"}})],
        # --- global invoices
        "global_invoices_list": [Call("GET", f"{v1}/global-invoices?limit=5", 200)],
        "global_invoices_create": [
            Call("POST", f"{v1}/global-invoices", 201, {"period": i["global_day_2"]}),
            Call("POST", f"{v1}/global-invoices", 200, {"period": i["global_day_2"]}),
        ],
        "global_invoices_retrieve": [Call("GET", f"{v1}/global-invoices/{i['global_invoice']}", 200)],
        "global_invoices_eligible": [Call("GET", f"{v1}/global-invoices/eligible?period={i['global_day_2']}", 200)],
        # --- exports
        "exports_create": [Call("POST", f"{v1}/exports", 202, {"month": "2026-05"}),
                           Call("POST", f"{v1}/exports", 400, {"month": "2026-13"}, valid_request=False)],
        "exports_retrieve": [Call("GET", f"{v1}/exports/{i['export']}", 200)],
        "exports_download": [Call("GET", f"{v1}/exports/{i['export']}/download", 200)],
        # --- webhooks
        "webhooks_list": [Call("GET", f"{v1}/webhooks", 200)],
        "webhooks_create": [Call("POST", f"{v1}/webhooks", 201, {
            "url": "https://erp.example.com/webhooks/facturas", "events": ["invoice.stamped", "invoice.failed"],
            "description": "ERP central"})],
        "webhooks_retrieve": [Call("GET", f"{v1}/webhooks/{i['webhook']}", 200)],
        "webhooks_update": [Call("PATCH", f"{v1}/webhooks/{i['webhook']}", 200, {"is_active": False})],
        "webhooks_delete": [Call("DELETE", f"{v1}/webhooks/{i['webhook_to_delete']}", 204)],
        "webhooks_test": [Call("POST", f"{v1}/webhooks/{i['webhook']}/test", 202)],
        "webhooks_rotate_secret": [Call("POST", f"{v1}/webhooks/{i['webhook']}/rotate-secret", 200, {}),
                                   Call("POST", f"{v1}/webhooks/{i['webhook']}/rotate-secret", 400,
                                        {"previous_secret_hours": 500}, valid_request=False)],
        "webhooks_deliveries": [Call("GET", f"{v1}/webhooks/{i['webhook']}/deliveries?limit=10", 200)],
    }
