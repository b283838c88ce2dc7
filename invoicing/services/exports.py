"""The accountant's export: for a period (and optionally a branch), one ZIP with every stamped CFDI's XML (PDFs
optional), ``facturas.csv`` and ``facturas.xlsx`` listing them.

Requested by the back office or the API (``export_request``), built by a django-q2 task (``export_run``) that
streams the invoices in chunks, writes the ZIP to a temporary file and stores it with Django's storage. Progress
and a heartbeat are written per chunk; the sweeper re-queues an export whose worker died. The list is read from
each XML (what SAT has), not from our columns: the CSV is what the accountant would get from the files.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import logging
import tempfile
import zipfile
from dataclasses import dataclass, field
from decimal import Decimal

from django.core.files import File
from django.db import transaction
from django.utils import timezone

from infra.events import record_event, transition
from infra.queues import BULK, after_commit, enqueue
from invoicing.cfdi.parser import parse_xml
from invoicing.errors import InvoicingError
from invoicing.models import AccountingExport, Invoice
from invoicing.periods import local_midnight
from invoicing.services.documents import DOWNLOADABLE, invoice_pdf_bytes
from tickets.models import Branch, Merchant

log = logging.getLogger(__name__)

MAX_DAYS = 366
CHUNK = 500
# Invoices are found by their CFDI date (Fecha), pre-filtered on created_at by the (merchant, status, created_at)
# index: an invoice is sealed (Fecha) within hours of its creation, a parked late request within days.
CREATED_MARGIN = dt.timedelta(days=31)
STALE_AFTER = dt.timedelta(minutes=10)
GIVE_UP_AFTER = dt.timedelta(hours=24)
TAX_NAMES = {"001": "ISR", "002": "IVA", "003": "IEPS"}
KIND_NAMES = {"I": "Ingreso", "E": "Egreso", "T": "Traslado", "P": "Pago", "N": "Nómina"}
BASE_COLUMNS = ["UUID", "Serie-folio", "Fecha", "Tipo", "RFC receptor", "Nombre receptor", "Uso CFDI", "Subtotal",
                "Descuento"]
END_COLUMNS = ["Total", "Moneda", "Estado", "UUID relacionados"]


def _in_period(merchant: Merchant, first_day: dt.date, last_day: dt.date, branch_id: int | None):
    tz = merchant.tzinfo
    start, end = local_midnight(first_day, tz), local_midnight(last_day + dt.timedelta(days=1), tz)
    qs = Invoice.objects.filter(merchant=merchant, status__in=DOWNLOADABLE, created_at__gte=start - CREATED_MARGIN,
                                created_at__lt=end + CREATED_MARGIN, issued_at__gte=start, issued_at__lt=end,
                                stamped_xml__isnull=False)
    return qs.filter(branch_id=branch_id) if branch_id else qs


def export_invoices(export: AccountingExport):
    return _in_period(export.merchant, export.first_day, export.last_day, export.branch_id)


@transaction.atomic
def export_request(*, merchant: Merchant, first_day: dt.date, last_day: dt.date, branch: Branch | None = None,
                   include_pdfs: bool = False, actor: str = "") -> AccountingExport:
    """Queue an export; the task runs after commit. Bad periods and another merchant's branch are refused."""
    if last_day < first_day:
        raise InvoicingError("invalid_period", "La fecha final es anterior a la inicial.",
                             {"date_to": ["Debe ser igual o posterior a date_from."]}, status=400)
    if (last_day - first_day).days >= MAX_DAYS:
        raise InvoicingError("invalid_period", f"El periodo admite hasta {MAX_DAYS} días.",
                             {"date_to": [f"Máximo {MAX_DAYS} días."]}, status=400)
    if branch is not None and branch.merchant_id != merchant.pk:
        raise InvoicingError("not_found", "No existe esa sucursal.", {"branch": ["No existe."]}, status=404)
    export = AccountingExport.objects.create(merchant=merchant, branch=branch, first_day=first_day, last_day=last_day,
                                             include_pdfs=include_pdfs, requested_by=actor[:150])
    record_event(merchant_id=merchant.pk, entity="export", object_id=export.pk, from_status="",
                 to_status=export.status, actor=actor, reason=f"exportación {export} solicitada")
    after_commit(enqueue_export, export.pk)
    return export


def enqueue_export(export_id: int) -> None:
    enqueue("invoicing.tasks_export.run_export", export_id, queue=BULK, group="export", task_name=f"export-{export_id}")


# ---------------------------------------------------------------- reading a CFDI


@dataclass
class ExportRow:
    values: dict
    taxes: dict[str, Decimal] = field(default_factory=dict)


def _dec(value: str | None) -> Decimal:
    return Decimal(value) if value not in (None, "") else Decimal("0")


def _rate(value: str | None) -> str:
    rate = _dec(value) * 100
    text = f"{rate.normalize():f}" if rate else "0"
    return text


def cfdi_row(xml: bytes, *, status_label: str) -> ExportRow:
    """One line of the list, read from the stamped XML: the comprobante's own totals and tax summary."""
    root = parse_xml(xml)
    ns = root.nsmap.get(root.prefix) or root.tag[1:].split("}")[0]

    def child(parent, name):
        return parent.find(f"{{{ns}}}{name}")

    receptor = child(root, "Receptor")
    tfd = next((e for e in root.iter() if isinstance(e.tag, str) and e.tag.endswith("}TimbreFiscalDigital")), None)
    kind = root.get("TipoDeComprobante", "")
    related = []
    for group in root.findall(f"{{{ns}}}CfdiRelacionados"):
        related += [f"{group.get('TipoRelacion')}:{r.get('UUID', '').upper()}"
                    for r in group.findall(f"{{{ns}}}CfdiRelacionado")]
    taxes: dict[str, Decimal] = {}
    impuestos = child(root, "Impuestos")  # the comprobante's summary, not each concepto's
    if impuestos is not None:
        for t in impuestos.iter(f"{{{ns}}}Traslado"):
            name = TAX_NAMES.get(t.get("Impuesto"), t.get("Impuesto"))
            factor = t.get("TipoFactor")
            if factor == "Exento":
                column = f"{name} exento (base)"
                amount = _dec(t.get("Base"))
            elif factor == "Cuota":
                column = f"{name} cuota {t.get('TasaOCuota')} trasladado"
                amount = _dec(t.get("Importe"))
            else:
                column = f"{name} {_rate(t.get('TasaOCuota'))}% trasladado"
                amount = _dec(t.get("Importe"))
            taxes[column] = taxes.get(column, Decimal("0")) + amount
        for r in impuestos.iter(f"{{{ns}}}Retencion"):
            column = f"{TAX_NAMES.get(r.get('Impuesto'), r.get('Impuesto'))} retenido"
            taxes[column] = taxes.get(column, Decimal("0")) + _dec(r.get("Importe"))
    serie, folio = root.get("Serie", ""), root.get("Folio", "")
    values = {
        "UUID": (tfd.get("UUID", "") if tfd is not None else "").upper(),
        "Serie-folio": f"{serie}-{folio}" if serie and folio else serie or folio,
        "Fecha": root.get("Fecha", ""),
        "Tipo": f"{kind} {KIND_NAMES.get(kind, '')}".strip(),
        "RFC receptor": receptor.get("Rfc", "") if receptor is not None else "",
        "Nombre receptor": receptor.get("Nombre", "") if receptor is not None else "",
        "Uso CFDI": receptor.get("UsoCFDI", "") if receptor is not None else "",
        "Subtotal": _dec(root.get("SubTotal")),
        "Descuento": _dec(root.get("Descuento")),
        "Total": _dec(root.get("Total")),
        "Moneda": root.get("Moneda", ""),
        "Estado": status_label,
        "UUID relacionados": " ".join(related),
    }
    return ExportRow(values=values, taxes=taxes)


# ---------------------------------------------------------------- running


def export_run(*, export_id: int) -> str:
    """Build the export's ZIP (the task's body). Idempotent: a done or failed export is left as it is."""
    export = AccountingExport.objects.select_related("merchant", "branch").filter(pk=export_id).first()
    if export is None:
        return "missing"
    now = timezone.now()
    if not transition(export, entity="export", expected=AccountingExport.Status.QUEUED,
                      to=AccountingExport.Status.RUNNING, reason="generando", heartbeat_at=now, processed=0):
        return export.status
    try:
        name = _build(export)
    except _Abandoned:
        return "abandoned"
    except Exception as exc:  # noqa: BLE001 - recorded on the export: the person who asked sees why
        log.exception("export %s failed", export.pk)
        transition(export, entity="export", expected=AccountingExport.Status.RUNNING,
                   to=AccountingExport.Status.FAILED, reason=f"error: {type(exc).__name__}",
                   error=f"No se pudo generar la exportación ({type(exc).__name__}).", finished_at=timezone.now())
        return AccountingExport.Status.FAILED
    if not transition(export, entity="export", expected=AccountingExport.Status.RUNNING,
                      to=AccountingExport.Status.DONE, reason="lista", file=name, finished_at=timezone.now()):
        AccountingExport._meta.get_field("file").storage.delete(name)  # someone else finished or failed it
    return export.status


class _Abandoned(Exception):
    """The export is no longer ours (the sweeper re-queued it): stop writing."""


def _beat(export: AccountingExport, processed: int, total: int | None = None) -> None:
    fields = {"processed": processed, "heartbeat_at": timezone.now()}
    if total is not None:
        fields["total"] = total
    if not AccountingExport.objects.filter(pk=export.pk, status=AccountingExport.Status.RUNNING).update(**fields):
        raise _Abandoned
    export.processed = processed


def _build(export: AccountingExport) -> str:
    merchant = export.merchant
    invoices = export_invoices(export)
    total = invoices.count()
    _beat(export, 0, total)
    statuses = dict(Invoice.Status.choices)
    rows: list[ExportRow] = []
    tax_columns: dict[str, None] = {}
    with tempfile.TemporaryFile(suffix=".zip") as tmp:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            fields = ["pk", "serie", "folio", "uuid", "status", "stamped_xml", "pdf", "merchant_id"]
            stream = invoices.only(*fields[1:]).order_by("issued_at", "pk").iterator(chunk_size=CHUNK)
            for count, invoice in enumerate(stream, start=1):
                xml = bytes(invoice.stamped_xml)
                base = f"{merchant.rfc}_{invoice.serie}{invoice.folio or ''}_{str(invoice.uuid).upper()}"
                zf.writestr(f"xml/{base}.xml", xml)
                if export.include_pdfs:
                    invoice.merchant = merchant
                    zf.writestr(f"pdf/{base}.pdf", invoice_pdf_bytes(invoice))
                row = cfdi_row(xml, status_label=statuses.get(invoice.status, invoice.status))
                tax_columns.update(dict.fromkeys(row.taxes))
                rows.append(row)
                if count % CHUNK == 0:
                    _beat(export, count)
            columns = BASE_COLUMNS + sorted(tax_columns) + END_COLUMNS
            zf.writestr("facturas.csv", _csv(rows, columns))
            zf.writestr("facturas.xlsx", _xlsx(rows, columns))
        _beat(export, len(rows))
        tmp.seek(0)
        file_field = AccountingExport._meta.get_field("file")
        suffix = f"_{export.branch.code}" if export.branch_id else ""
        filename = f"{merchant.rfc}_{export.first_day:%Y%m%d}-{export.last_day:%Y%m%d}{suffix}.zip"
        return file_field.storage.save(file_field.generate_filename(export, filename), File(tmp),
                                       max_length=file_field.max_length)


def _cells(row: ExportRow, columns: list[str]) -> list:
    return [row.values[c] if c in row.values else row.taxes.get(c, Decimal("0")) for c in columns]


def _csv(rows: list[ExportRow], columns: list[str]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(columns)
    for row in rows:
        writer.writerow([f"{v:.2f}" if isinstance(v, Decimal) else v for v in _cells(row, columns)])
    return ("\ufeff" + out.getvalue()).encode("utf-8")  # the BOM makes Excel read the accents right


def _xlsx(rows: list[ExportRow], columns: list[str]) -> bytes:
    import xlsxwriter

    out = io.BytesIO()
    book = xlsxwriter.Workbook(out, {"in_memory": True, "constant_memory": True})
    sheet = book.add_worksheet("Facturas")
    bold = book.add_format({"bold": True})
    money = book.add_format({"num_format": "#,##0.00"})
    sheet.write_row(0, 0, columns, bold)
    for r, row in enumerate(rows, start=1):
        for c, value in enumerate(_cells(row, columns)):
            if isinstance(value, Decimal):
                sheet.write_number(r, c, float(value), money)
            else:
                sheet.write_string(r, c, str(value))
    sheet.freeze_panes(1, 0)
    book.close()
    return out.getvalue()


def export_sweep(*, now: dt.datetime | None = None) -> int:
    """Periodic: an export whose worker stopped beating is queued again; one asked for over a day ago, failed."""
    now = now or timezone.now()
    requeued = 0
    stale = AccountingExport.objects.filter(status=AccountingExport.Status.RUNNING,
                                            heartbeat_at__lt=now - STALE_AFTER)
    for export in stale:
        if export.created_at < now - GIVE_UP_AFTER:
            transition(export, entity="export", expected=AccountingExport.Status.RUNNING,
                       to=AccountingExport.Status.FAILED, reason="abandonada",
                       error="La exportación se interrumpió; solicítala de nuevo.", finished_at=now)
        elif transition(export, entity="export", expected=AccountingExport.Status.RUNNING,
                        to=AccountingExport.Status.QUEUED, reason="reanudada tras interrupción"):
            after_commit(enqueue_export, export.pk)
            requeued += 1
    return requeued


def export_file(export: AccountingExport):
    """The stored ZIP, opened for a download; a 409 until the export is done."""
    if export.status != AccountingExport.Status.DONE or not export.file:
        raise InvoicingError("export_not_ready", "La exportación todavía no está lista.", {"status": export.status},
                             status=409)
    return export.file.storage.open(export.file.name, "rb")
