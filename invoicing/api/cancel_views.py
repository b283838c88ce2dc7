"""Cancel and reissue over the API (scope "invoices"). Views only translate HTTP ↔ services/cancel.py, reissue.py."""

from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import status
from rest_framework.response import Response

from infra.api.schema import TAG_CANCELLATIONS, error, error_example
from invoicing.api import examples as ex
from invoicing.api.serializers import (
    CancelIn,
    CancellationAcceptedOut,
    InvoiceOut,
    ReissueAcceptedOut,
    ReissueIn,
)
from invoicing.api.views import INVOICE_ID, _InvoicesView
from invoicing.models import Invoice
from invoicing.services.cancel import cancellation_request
from invoicing.services.cancel_notify import cancellation_data
from invoicing.services.reissue import invoice_reissue

IN_PROGRESS = error("La factura no está timbrada, ya se está cancelando o ya se canceló.", error_example(
    "cancellation_in_progress", "Esta factura ya tiene una cancelación en proceso; espera la respuesta del SAT.",
    {"status": "cancelling"}))


def _invoice_out(request, pk: int) -> dict:
    invoice = Invoice.objects.prefetch_related("ticket_links", "cancellations__replacement").get(pk=pk)
    return InvoiceOut(invoice, context={"request": request}).data


class InvoiceCancel(_InvoicesView):
    @extend_schema(
        summary="Cancelar una factura", operation_id="invoices_cancel", tags=[TAG_CANCELLATIONS],
        parameters=[INVOICE_ID],
        description=(
            "Solicita la cancelación ante el SAT y responde 202: la factura pasa a «cancelling» y se envía al PAC en "
            "segundo plano; si el receptor debe aceptarla queda «cancel_pending» hasta su respuesta (3 días hábiles; "
            "el silencio es aceptación). El seguimiento consulta el estado con el SAT hasta que sea definitivo: "
            "«cancelled», o de vuelta a «stamped» si se rechaza (se avisa al comercio por correo). Cada paso envía "
            "el webhook `invoice.cancellation_updated`.\n\n"
            "Los tickets siguen al motivo cuando el SAT confirma: 01 ya están en el sustituto; 02 y 03 se liberan "
            "o se cancelan según «tickets».\n\n"
            "Errores: 404 `not_found`; 409 `not_stamped`, `cancellation_in_progress`, `already_cancelled`, "
            "`has_related_documents`, `replacement_not_stamped`; 422 `invalid_motive`, `motive_04_late_request_only`, "
            "`replacement_required`, `replacement_not_related`, `replacement_tickets_differ`, "
            "`replacement_not_allowed`, `invalid_tickets_action`, `tickets_not_allowed`, "
            "`cancellation_deadline_passed` (el plazo del CFF 29-A terminó: marzo o abril del año siguiente)."
        ),
        request=CancelIn,
        responses={202: CancellationAcceptedOut, 409: IN_PROGRESS,
                   422: error("El motivo, el sustituto o el plazo no lo permiten.", error_example(
                       "cancellation_deadline_passed",
                       "Ya no se puede cancelar esta factura: el plazo terminó el 31 de marzo de 2027 (mes de la "
                       "declaración anual del ejercicio en que se emitió, CFF 29-A).", {"deadline": "2027-03-31"}),
                       error_example("invalid_motive", "El motivo de cancelación debe ser 01, 02, 03 o 04.",
                                     {"motive": ["09"]}))},
        examples=[
            OpenApiExample("Errores sin relación, liberando los tickets", value={"motive": "02", "tickets": "release"},
                           request_only=True),
            OpenApiExample("Venta no realizada", value={"motive": "03"}, request_only=True),
            OpenApiExample("Sustituida", value={"motive": "01", "replacement_id": 874}, request_only=True),
            OpenApiExample("Solicitada", value=ex.CANCEL_ACCEPTED, response_only=True, status_codes=["202"]),
        ],
    )
    def post(self, request, pk: int):
        data = CancelIn(data=request.data)
        data.is_valid(raise_exception=True)
        self.get_invoice(request, pk)  # 404 for another merchant's invoice, before anything else
        cancellation = cancellation_request(
            merchant=request.auth.merchant, invoice_id=pk, motive=data.validated_data["motive"],
            replacement_id=data.validated_data.get("replacement_id"), tickets=data.validated_data.get("tickets"),
            actor=str(request.user),
        )
        return Response({"invoice": _invoice_out(request, pk), "cancellation": cancellation_data(cancellation)},
                        status=status.HTTP_202_ACCEPTED)


class InvoiceReissue(_InvoicesView):
    @extend_schema(
        summary="Corregir los datos del receptor (sustitución, motivo 01)", operation_id="invoices_reissue",
        tags=[TAG_CANCELLATIONS], parameters=[INVOICE_ID],
        description=(
            "Emite la factura sustituta con los datos corregidos (los mismos tickets, TipoRelacion 04 a la "
            "original) y responde 202. Cuando la sustituta queda timbrada se solicita la cancelación de la "
            "original con motivo 01 y FolioSustitucion = UUID de la sustituta; el seguimiento es el de "
            "«cancel». Si el receptor rechaza la cancelación, ambas facturas quedan vigentes (como las ve el SAT) y "
            "se avisa al comercio; si la sustituta no se timbra, la original queda intacta.\n\n"
            "Errores: 400 `invalid_receptor` (las mismas reglas que al facturar), 404 `not_found`, 409 "
            "`not_stamped`, `cancellation_in_progress`; 422 `not_reissuable` (solo facturas nominativas), "
            "`no_changes`, `cancellation_deadline_passed`."
        ),
        request=ReissueIn,
        responses={202: ReissueAcceptedOut,
                   400: error("Los datos nuevos del receptor no son válidos (las reglas de facturar).", error_example(
                       "invalid_receptor", "El código postal 00000 no existe en el catálogo del SAT.",
                       {"postal_code": ["El código postal 00000 no existe en el catálogo del SAT."],
                        "problems": [{"field": "postal_code", "code": "CFDI40147",
                                      "message": "El código postal 00000 no existe en el catálogo del SAT."}]})),
                   409: IN_PROGRESS,
                   422: error("No hay nada que corregir, no es nominativa o el plazo terminó.", error_example(
                       "no_changes", "Los datos fiscales son los mismos de la factura: no hay nada que corregir "
                                     "(para enviarla a otro correo, usa «reenviar»)."))},
        examples=[OpenApiExample("RFC equivocado", request_only=True, value={"receptor": {
            "rfc": "XIQB891116QE4", "name": "BERENICE XIMO QUEZADA", "postal_code": "26015"}}),
            OpenApiExample("Sustituta en timbrado", response_only=True, status_codes=["202"],
                           value=ex.REISSUE_ACCEPTED)],
    )
    def post(self, request, pk: int):
        data = ReissueIn(data=request.data)
        data.is_valid(raise_exception=True)
        self.get_invoice(request, pk)
        cancellation = invoice_reissue(merchant=request.auth.merchant, invoice_id=pk,
                                       changes=dict(data.validated_data["receptor"]), actor=str(request.user))
        return Response({"invoice": _invoice_out(request, pk),
                         "replacement": _invoice_out(request, cancellation.replacement_id),
                         "cancellation": cancellation_data(cancellation)}, status=status.HTTP_202_ACCEPTED)
