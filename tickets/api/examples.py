"""Example payloads of the tickets API for its OpenAPI schema: what a POS in Mexico City really sends and receives.

tests/contract/test_contract_examples.py validates every example against the schema it illustrates.
"""

from __future__ import annotations

BASE = "https://factura.ejemplo.mx"

TICKET_IN = {
    "branch": "CENTRO",
    "number": "A-000123",
    "sold_at": "2026-05-31T13:45:00-06:00",
    "payment_form": "04",
    "total": "163.50",
    "lines": [
        {"product_code": "50202306", "unit_code": "H87", "description": "REFRESCO DE COLA 600 ML",
         "quantity": "2", "unit_price": "22.00", "tax_object": "02",
         "taxes": [{"tax": "002", "factor": "Tasa", "rate": "0.160000"}]},
        {"product_code": "50181900", "unit_code": "H87", "description": "PAN BLANCO CAJA",
         "quantity": "1", "unit_price": "48.50", "tax_object": "02",
         "taxes": [{"tax": "002", "factor": "Tasa", "rate": "0.000000"}]},
        {"product_code": "14111514", "unit_code": "H87", "description": "CUADERNO PROFESIONAL",
         "quantity": "1", "unit_price": "71.00", "discount": "0.00", "tax_object": "02",
         "taxes": [{"tax": "002", "factor": "Tasa", "rate": "0.160000"}]},
    ],
}

TICKET_IN_USD = {
    "branch": "CENTRO", "number": "A-000125", "sold_at": "2026-05-31T14:10:00-06:00", "currency": "USD",
    "exchange_rate": "17.250300", "payment_form": "04", "total": "23.20",
    "lines": [{"product_code": "53102500", "unit_code": "H87", "description": "GORRA BORDADA", "quantity": "1",
               "unit_price": "23.20", "taxes": [{"tax": "002", "factor": "Tasa", "rate": "0.160000"}]}],
}

TICKET_SUMMARY = {
    "id": 5012, "branch": "CENTRO", "number": "A-000123", "sold_at": "2026-05-31T13:45:00-06:00", "currency": "MXN",
    "exchange_rate": None, "payment_form": "04", "subtotal": "147.64", "discount": "0.00", "tax_total": "15.86",
    "total": "163.50", "status": "open", "source": "api", "expires_at": "2026-06-30T23:59:59-06:00",
    "can_self_invoice": True, "self_invoice_url": f"{BASE}/t/tXb996WKZqZ-jv7G",
    "created_at": "2026-05-31T13:45:02.118000-06:00",
}


def _line(position, product, description, quantity, price, amount, rate):
    return {"position": position, "product_code": product, "unit_code": "H87", "sku": "", "description": description,
            "quantity": quantity, "unit_price": price, "prices_include_tax": True, "amount": amount,
            "discount": "0.000000", "tax_object": "02", "taxes": [{"tax": "002", "factor": "Tasa", "rate": rate}]}


TICKET_OUT = {
    **TICKET_SUMMARY,
    "lines": [
        _line(1, "50202306", "REFRESCO DE COLA 600 ML", "2.000000", "22.000000", "44.000000", "0.160000"),
        _line(2, "50181900", "PAN BLANCO CAJA", "1.000000", "48.500000", "48.500000", "0.000000"),
        _line(3, "14111514", "CUADERNO PROFESIONAL", "1.000000", "71.000000", "71.000000", "0.160000"),
    ],
    "invoices": [],
}

TICKET_INVOICED = {
    **TICKET_OUT, "status": "invoiced", "can_self_invoice": False,
    "invoices": [{"id": 871, "kind": "ingreso", "status": "stamped", "uuid": "053DC7AB-C6FB-41FB-B06C-A28DB40F309A",
                  "serie": "F", "folio": 871, "amount": "163.50", "url": f"{BASE}/api/v1/invoices/871"}],
}

TICKET_LIST = {"count": 214, "total_amount": "48210.75", "limit": 2, "offset": 0, "results": [
    TICKET_SUMMARY,
    {**TICKET_SUMMARY, "id": 5011, "number": "A-000122", "sold_at": "2026-05-31T13:31:10-06:00", "payment_form": "01",
     "subtotal": "100.00", "tax_total": "16.00", "total": "116.00", "self_invoice_url": f"{BASE}/t/8ZYSZkq0d1Vw3mQe",
     "created_at": "2026-05-31T13:31:11.402000-06:00"},
]}

BATCH_OUT = {
    "batch_id": "2026-05-31-CENTRO-1", "status": "done", "source": "json", "total_count": 2, "processed_count": 2,
    "created_count": 1, "duplicate_count": 0, "rejected_count": 1, "progress": 1.0, "error": "",
    "created_at": "2026-05-31T22:00:01.004000-06:00", "finished_at": "2026-05-31T22:00:01.290000-06:00",
    "url": f"{BASE}/api/v1/batches/2026-05-31-CENTRO-1",
    "report_csv_url": f"{BASE}/api/v1/batches/2026-05-31-CENTRO-1/report.csv",
    "report": [
        {"index": 0, "branch": "CENTRO", "number": "A-000123", "status": "created", "ticket_id": 5012,
         "self_invoice_url": f"{BASE}/t/tXb996WKZqZ-jv7G", "expires_at": "2026-06-30T23:59:59-06:00"},
        {"index": 1, "branch": "CENTRO", "number": "A-000124", "status": "rejected", "code": "invalid_ticket",
         "errors": {"total": ["El total (100.00) no coincide con la suma de las partidas menos descuentos (163.50): "
                              "difiere -63.50."]}},
    ],
}

BATCH_DONE = {**BATCH_OUT, "created_count": 2, "rejected_count": 0, "report": [
    BATCH_OUT["report"][0],
    {"index": 1, "branch": "CENTRO", "number": "A-000124", "status": "duplicate", "ticket_id": 5013,
     "self_invoice_url": f"{BASE}/t/Qm2LwQpY0aHk7RzU", "expires_at": "2026-06-30T23:59:59-06:00"},
]}

BATCH_PROCESSING = {**BATCH_OUT, "batch_id": "2026-05-31-CENTRO-2", "status": "processing", "total_count": 8000,
                    "processed_count": 3000, "created_count": 2998, "duplicate_count": 2, "rejected_count": 0,
                    "progress": 0.375, "finished_at": None, "url": f"{BASE}/api/v1/batches/2026-05-31-CENTRO-2",
                    "report_csv_url": f"{BASE}/api/v1/batches/2026-05-31-CENTRO-2/report.csv", "report": []}

BATCH_CSV = ("\ufeffindex,file,ref_id,branch,number,status,ticket_id,code,errors,warnings,self_invoice_url,expires_at\n"
             f"0,,,CENTRO,A-000123,created,5012,,,,{BASE}/t/tXb996WKZqZ-jv7G,2026-06-30T23:59:59-06:00\n"
             "1,,,CENTRO,A-000124,rejected,,invalid_ticket,total: El total (100.00) no coincide con la suma de las "
             "partidas menos descuentos (163.50): difiere -63.50.,,,\n")

RATES_LIST = {"results": [
    {"currency": "USD", "valid_from": "2026-06-01", "rate": "17.250300", "source": "dof_fix"},
    {"currency": "EUR", "valid_from": "2026-06-01", "rate": "19.871200", "source": "dof_fix"},
]}
