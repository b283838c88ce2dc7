"""POST /api/v1/tickets/{id}/refunds (scope "tickets"): the view only translates HTTP ↔ services/refund.py."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from infra.api.auth import HasScope
from infra.api.parsers import TicketJSONParser
from invoicing.api.serializers import ErrorOut
from invoicing.models import Refund
from invoicing.services.refund import ticket_refund


class RefundLineIn(serializers.Serializer):
    position = serializers.IntegerField(min_value=1, help_text="Número de renglón del ticket (1, 2, …).")
    quantity = serializers.DecimalField(max_digits=24, decimal_places=6, min_value=0, help_text="Cantidad devuelta.")


class RefundIn(serializers.Serializer):
    refund_key = serializers.CharField(max_length=100, required=False, help_text="Identifica el reembolso en el punto "
                                       "de venta: repetirlo con la misma llave no devuelve dos veces. También se "
                                       "acepta el encabezado Idempotency-Key.")
    amount = serializers.DecimalField(max_digits=18, decimal_places=2, required=False, help_text="Importe devuelto "
                                      "(con impuestos), repartido entre los renglones en proporción.")
    lines = RefundLineIn(many=True, required=False, help_text="O bien: renglones y cantidades devueltas.")
    returned_goods = serializers.BooleanField(default=False, help_text="Se devolvió mercancía: la nota de crédito "
                                              "relaciona la factura con TipoRelacion 03 en lugar de 01.")
    reason = serializers.CharField(max_length=500, required=False, allow_blank=True)


class RefundOut(serializers.Serializer):
    id = serializers.IntegerField()
    refund_key = serializers.CharField(source="key")
    ticket_id = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=Refund.Kind.choices, help_text="reduced: el ticket abierto se redujo; "
                                   "voided: se devolvió completo y quedó cancelado; credit_note: se emitió una nota "
                                   "de crédito a su factura o a su factura global.")
    amount = serializers.DecimalField(max_digits=18, decimal_places=2)
    lines = serializers.ListField(child=serializers.DictField())
    returned_goods = serializers.BooleanField()
    ticket = serializers.SerializerMethodField()
    credit_note = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField()

    def get_ticket(self, obj) -> dict:
        ticket = obj.ticket
        return {"id": ticket.pk, "status": ticket.status, "total": str(ticket.total)}

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
        operation_id="tickets_refund", summary="Registrar una devolución del ticket", tags=["tickets"],
        parameters=[OpenApiParameter("pk", OpenApiTypes.INT, OpenApiParameter.PATH, description="Id del ticket."),
                    OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER)],
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
        responses={201: RefundOut, 200: RefundOut, 400: ErrorOut, 401: ErrorOut, 403: ErrorOut, 404: ErrorOut,
                   409: ErrorOut, 422: ErrorOut},
        examples=[OpenApiExample("Un renglón devuelto", request_only=True, value={
            "refund_key": "DEV-000123", "lines": [{"position": 2, "quantity": "1"}], "returned_goods": True}),
            OpenApiExample("Un importe", request_only=True, value={"refund_key": "DEV-000124", "amount": "50.00"})],
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
