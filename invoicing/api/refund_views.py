"""POST /api/v1/tickets/{id}/refunds (scope "tickets"): the view only translates HTTP ↔ services/refund.py."""

from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from infra.api.auth import HasScope
from infra.api.parsers import TicketJSONParser
from infra.api.schema import IDEMPOTENCY_KEY, TAG_TICKETS, error, error_example, path_id
from infra.api.strict import StrictJsonSerializer
from invoicing.api import examples as ex
from invoicing.models import Refund
from invoicing.services.refund import ticket_refund


class RefundLineIn(StrictJsonSerializer):
    position = serializers.IntegerField(min_value=1, help_text="Número de renglón del ticket (1, 2, …).")
    quantity = serializers.DecimalField(max_digits=24, decimal_places=6, min_value=0, help_text="Cantidad devuelta.")


class RefundIn(StrictJsonSerializer):
    refund_key = serializers.CharField(max_length=100, required=False, help_text="Identifica el reembolso en el punto "
                                       "de venta: repetirlo con la misma llave no devuelve dos veces. También se "
                                       "acepta el encabezado Idempotency-Key.")
    amount = serializers.DecimalField(max_digits=18, decimal_places=2, required=False, help_text="Importe devuelto "
                                      "(con impuestos), repartido entre los renglones en proporción.")
    lines = RefundLineIn(many=True, required=False, help_text="O bien: renglones y cantidades devueltas.")
    returned_goods = serializers.BooleanField(default=False, help_text="Se devolvió mercancía: la nota de crédito "
                                              "relaciona la factura con TipoRelacion 03 en lugar de 01.")
    reason = serializers.CharField(max_length=500, required=False, allow_blank=True)


class RefundLineOut(serializers.Serializer):
    position = serializers.IntegerField()
    quantity = serializers.CharField(help_text="Cantidad devuelta, como decimal en texto.")


class RefundTicketOut(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.CharField()
    total = serializers.DecimalField(max_digits=18, decimal_places=2, help_text="Lo que queda del ticket.")


class CreditNoteLinksOut(serializers.Serializer):
    self = serializers.CharField()


class CreditNoteOut(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.CharField()
    serie = serializers.CharField(allow_blank=True)
    folio = serializers.IntegerField(allow_null=True)
    total = serializers.DecimalField(max_digits=18, decimal_places=2)
    relation_type = serializers.CharField(allow_null=True, help_text="TipoRelacion: 01 o 03 (mercancía devuelta).")
    related_invoice_id = serializers.IntegerField(allow_null=True)
    related_uuid = serializers.CharField(allow_null=True)
    links = CreditNoteLinksOut()


class RefundOut(serializers.Serializer):
    id = serializers.IntegerField()
    refund_key = serializers.CharField(source="key")
    ticket_id = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=Refund.Kind.choices, help_text="reduced: el ticket abierto se redujo; "
                                   "voided: se devolvió completo y quedó cancelado; credit_note: se emitió una nota "
                                   "de crédito a su factura o a su factura global.")
    amount = serializers.DecimalField(max_digits=18, decimal_places=2)
    lines = RefundLineOut(many=True)
    returned_goods = serializers.BooleanField()
    ticket = serializers.SerializerMethodField()
    credit_note = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField()

    @extend_schema_field(RefundTicketOut)
    def get_ticket(self, obj) -> dict:
        ticket = obj.ticket
        return {"id": ticket.pk, "status": ticket.status, "total": f"{ticket.total:.2f}"}

    @extend_schema_field(CreditNoteOut(allow_null=True))
    def get_credit_note(self, obj) -> dict | None:
        note = obj.credit_note
        if note is None:
            return None
        relation = note.relations.first()
        return {"id": note.pk, "status": note.status, "serie": note.serie, "folio": note.folio,
                "total": str(note.total), "relation_type": relation.relation_type if relation else None,
                "related_invoice_id": relation.related_invoice_id if relation else None,
                "related_uuid": str(relation.related_uuid).upper() if relation else None,
                "links": {"self": f"/api/v1/invoices/{note.pk}"}}


class TicketRefunds(APIView):
    permission_classes = [HasScope("tickets")]
    parser_classes = [TicketJSONParser]

    @extend_schema(
        operation_id="tickets_refund", summary="Registrar una devolución del ticket", tags=[TAG_TICKETS],
        parameters=[path_id("id", "Id del ticket."), IDEMPOTENCY_KEY],
        description=(
            "Un importe («amount») o renglones y cantidades («lines»). Según dónde esté el ticket:\n\n"
            "- abierto (sin factura): se reduce; devuelto completo queda cancelado (void);\n"
            "- facturado: nota de crédito (egreso) al receptor de la factura, relacionada con TipoRelacion 01 "
            "(o 03 si se devolvió mercancía);\n"
            "- en una factura global timbrada: nota de crédito a público en general relacionada con la global.\n\n"
            "La nota se timbra en segundo plano (consúltala en /api/v1/invoices/{id}). Idempotente por "
            "«refund_key»: repetir con la misma llave responde 200 con el mismo reembolso; la misma llave con otro "
            "contenido, 422 `refund_key_reused`. Errores: 404 `ticket_not_found`; 409 `ticket_void`, "
            "`invoice_not_stamped` (repite más tarde con la misma llave), `invoice_cancellation_in_progress`, "
            "`ticket_busy`; 422 `refund_exceeds_ticket`, `refund_exceeds_line`, `line_not_found`."
        ),
        request=RefundIn,
        responses={201: RefundOut, 200: RefundOut,
                   404: error("El ticket no existe en tu comercio.", error_example(
                       "ticket_not_found", "No existe ese ticket en tu comercio.")),
                   409: error("El ticket está cancelado o su factura no lo permite ahora.", error_example(
                       "invoice_not_stamped", "La factura del ticket aún se está timbrando; repite el reembolso con "
                                              "la misma llave en unos minutos.",
                       {"invoice_id": 871, "status": "sealed"})),
                   422: error("El reembolso no cabe en el ticket, o la llave ya se usó con otro contenido.",
                              error_example("refund_key_reused", "Esa llave de reembolso ya se usó para otro "
                                                                 "reembolso.", {"refund_id": 9, "ticket_id": 5012}))},
        examples=[OpenApiExample("Un renglón devuelto", request_only=True, value={
            "refund_key": "DEV-000123", "lines": [{"position": 2, "quantity": "1"}], "returned_goods": True}),
            OpenApiExample("Un importe", request_only=True, value={"refund_key": "DEV-000124", "amount": "50.00"}),
            OpenApiExample("Ticket abierto reducido", response_only=True, status_codes=["201", "200"],
                           value=ex.REFUND_REDUCED),
            OpenApiExample("Nota de crédito", response_only=True, status_codes=["201", "200"],
                           value=ex.REFUND_CREDIT_NOTE)],
    )
    def post(self, request, pk: str):
        data = RefundIn(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        key = values.get("refund_key") or (request.headers.get("Idempotency-Key") or "").strip()
        lines = [dict(item) for item in values.get("lines") or []]
        refund, created = ticket_refund(merchant=request.auth.merchant, ticket_id=pk, key=key,
                                        amount=values.get("amount"), lines=lines,
                                        returned_goods=values["returned_goods"], reason=values.get("reason", ""),
                                        actor=f"api:{request.auth.prefix}")
        return Response(RefundOut(refund).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)
