"""The README's API flow through the client openapi-python-client generates (the ``generated_api_client``
fixture): used by tests/contract (live server, queue drained by the test) and tests/e2e (a real worker)."""

from __future__ import annotations

import importlib
import time

from django.utils import timezone


def run_readme_flow(client_module, base_url: str, key: str, *, between_polls=lambda: None, timeout: float = 60):
    """The README's example, through the generated client. Returns (ticket, invoice, xml bytes, pdf bytes)."""
    api = importlib.import_module(f"{client_module.__name__}.api")
    models = importlib.import_module(f"{client_module.__name__}.models")
    tickets_create = importlib.import_module(f"{api.__name__}.tickets.tickets_create")
    invoices_create = importlib.import_module(f"{api.__name__}.facturas.invoices_create")
    invoices_retrieve = importlib.import_module(f"{api.__name__}.facturas.invoices_retrieve")
    invoices_document = importlib.import_module(f"{api.__name__}.facturas.invoices_document")

    client = client_module.AuthenticatedClient(base_url=base_url, token=key, raise_on_unexpected_status=True)
    sold_at = timezone.now().replace(microsecond=0)
    created = tickets_create.sync_detailed(client=client, body=models.TicketInRequest.from_dict({
        "branch": "CENTRO", "number": "A-1001", "sold_at": sold_at.isoformat(), "payment_form": "01",
        "total": "116.00",
        "lines": [{"product_code": "50202306", "unit_code": "H87", "description": "REFRESCO 600 ML", "quantity": "2",
                   "unit_price": "58.00", "taxes": [{"tax": "002", "factor": "Tasa", "rate": "0.160000"}]}]}))
    assert created.status_code == 201, created.content
    ticket = created.parsed
    assert isinstance(ticket, models.TicketOut) and ticket.status == models.TicketStatusEnum.OPEN
    assert ticket.self_invoice_url.startswith("http") and ticket.total == "116.00"
    assert int(created.headers["X-RateLimit-Remaining"]) >= 0

    body = models.InvoiceCreateInRequest.from_dict({"ticket_ids": [ticket.id], "receptor": {
        "rfc": "CACX7605101P8", "name": "XOCHILT CASAS CHAVEZ", "tax_regime": "612", "postal_code": "36257",
        "cfdi_use": "G03", "emails": ["cliente@example.com"]}})
    accepted = invoices_create.sync_detailed(client=client, body=body, idempotency_key="venta-1001")
    assert accepted.status_code == 202, accepted.content
    invoice = accepted.parsed
    assert isinstance(invoice, models.InvoiceCreatedOut) and invoice.status == models.InvoiceStatusEnum.PENDING
    again = invoices_create.sync_detailed(client=client, body=body, idempotency_key="venta-1001")
    assert again.status_code == 202 and again.parsed.id == invoice.id  # a retry is the same invoice

    deadline = time.monotonic() + timeout
    while True:
        between_polls()
        current = invoices_retrieve.sync(client=client, id=invoice.id)
        assert isinstance(current, models.InvoiceOut)
        if current.status == models.InvoiceStatusEnum.STAMPED:
            break
        assert current.status != models.InvoiceStatusEnum.FAILED, current.error
        assert time.monotonic() < deadline, f"la factura sigue en {current.status}"
        time.sleep(0.2)
    assert current.uuid and current.links.xml and current.receptor.rfc == "CACX7605101P8"

    xml = invoices_document.sync(client=client, id=invoice.id, fmt=models.InvoicesDocumentFmt.XML)
    pdf = invoices_document.sync(client=client, id=invoice.id, fmt=models.InvoicesDocumentFmt.PDF)
    assert isinstance(xml, client_module.types.File) and isinstance(pdf, client_module.types.File)
    xml_bytes, pdf_bytes = xml.payload.read(), pdf.payload.read()
    assert xml_bytes.startswith(b"<?xml") and str(current.uuid).upper().encode() in xml_bytes.upper()
    assert pdf_bytes.startswith(b"%PDF-")
    return ticket, current, xml_bytes, pdf_bytes
