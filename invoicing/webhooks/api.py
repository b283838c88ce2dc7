"""Webhooks API (scope "webhooks"): endpoints CRUD, secret rotation, a test event, recent deliveries. Views only
call services."""

import datetime as dt

from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from infra.api.auth import HasScope
from invoicing.api.serializers import ErrorOut
from invoicing.errors import InvoicingError
from invoicing.webhooks.models import EVENTS, WebhookDelivery, WebhookEndpoint
from invoicing.webhooks.services import (
    MAX_OVERLAP_HOURS,
    webhook_endpoint_create,
    webhook_endpoint_delete,
    webhook_endpoint_update,
    webhook_secret_rotate,
    webhook_send_test,
)

DELIVERIES_DEFAULT = 50
DELIVERIES_MAX = 200


class WebhookIn(serializers.Serializer):
    url = serializers.CharField(max_length=500, help_text="https://… que recibirá los eventos por POST")
    events = serializers.ListField(child=serializers.ChoiceField(choices=EVENTS), max_length=len(EVENTS),
                                   required=False, default=list, help_text="Vacío: todos los eventos.")
    description = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    is_active = serializers.BooleanField(required=False, default=True)


class WebhookPatchIn(serializers.Serializer):
    url = serializers.CharField(max_length=500, required=False)
    events = serializers.ListField(child=serializers.ChoiceField(choices=EVENTS), max_length=len(EVENTS),
                                   required=False)
    description = serializers.CharField(max_length=200, required=False, allow_blank=True)
    is_active = serializers.BooleanField(required=False)


class WebhookOut(serializers.ModelSerializer):
    links = serializers.SerializerMethodField()

    class Meta:
        model = WebhookEndpoint
        fields = ["id", "url", "events", "description", "is_active", "created_at", "secret_rotated_at",
                  "previous_secret_expires_at", "links"]

    def get_links(self, obj) -> dict:
        base = f"/api/v1/webhooks/{obj.pk}"
        request = self.context.get("request")
        if request:
            base = request.build_absolute_uri(base)
        return {"self": base, "test": f"{base}/test", "deliveries": f"{base}/deliveries",
                "rotate_secret": f"{base}/rotate-secret"}


class WebhookCreatedOut(WebhookOut):
    secret = serializers.SerializerMethodField(
        help_text="Secreto de firma (whsec_ + base64 de la llave HMAC-SHA256, formato Standard Webhooks). Solo se "
                  "muestra en esta respuesta: guárdalo.")

    class Meta(WebhookOut.Meta):
        fields = [*WebhookOut.Meta.fields, "secret"]

    def get_secret(self, obj) -> str:
        return self.context["secret"]


class RotateIn(serializers.Serializer):
    previous_secret_hours = serializers.IntegerField(
        min_value=0, max_value=MAX_OVERLAP_HOURS, required=False,
        help_text="Horas que el secreto anterior sigue firmando junto al nuevo (predeterminado 24). 0: deja de "
                  "valer de inmediato (por ejemplo, si se filtró).")


class DeliveryOut(serializers.ModelSerializer):
    class Meta:
        model = WebhookDelivery
        fields = ["id", "event", "event_id", "status", "attempts", "next_attempt_at", "last_status_code",
                  "response_excerpt", "payload", "created_at", "delivered_at"]


class WebhookListOut(serializers.Serializer):
    count = serializers.IntegerField()
    results = WebhookOut(many=True)


class DeliveryListOut(serializers.Serializer):
    count = serializers.IntegerField()
    results = DeliveryOut(many=True)


class _WebhooksView(APIView):
    permission_classes = [HasScope("webhooks")]

    def get_endpoint(self, request, pk: int) -> WebhookEndpoint:
        endpoint = WebhookEndpoint.objects.filter(merchant=request.auth.merchant, pk=pk).first()
        if endpoint is None:
            raise InvoicingError("not_found", "No existe ese webhook.", status=404)
        return endpoint


class WebhookCollection(_WebhooksView):
    @extend_schema(summary="Listar webhooks", operation_id="v1_webhooks_list", tags=["webhooks"], responses={200: WebhookListOut})
    def get(self, request):
        endpoints = WebhookEndpoint.objects.filter(merchant=request.auth.merchant).order_by("-created_at", "-pk")
        data = WebhookOut(endpoints, many=True, context={"request": request}).data
        return Response({"count": len(data), "results": data})

    @extend_schema(
        summary="Registrar un webhook",
        description="Devuelve el secreto de firma una sola vez. Cada envío sigue el formato Standard Webhooks: "
                    "encabezados webhook-id, webhook-timestamp y webhook-signature: v1,<base64 de "
                    "HMAC-SHA256(llave, \"{webhook-id}.{webhook-timestamp}.{cuerpo}\")>, donde la llave es el "
                    "base64 que sigue a whsec_. Verifícalo con cualquier biblioteca de Standard Webhooks.",
        tags=["webhooks"], request=WebhookIn, responses={201: WebhookCreatedOut, 400: ErrorOut, 422: ErrorOut},
    )
    def post(self, request):
        data = WebhookIn(data=request.data)
        data.is_valid(raise_exception=True)
        endpoint, secret = webhook_endpoint_create(merchant=request.auth.merchant, actor=str(request.user),
                                                   **data.validated_data)
        out = WebhookCreatedOut(endpoint, context={"request": request, "secret": secret})
        return Response(out.data, status=status.HTTP_201_CREATED)


class WebhookDetail(_WebhooksView):
    @extend_schema(summary="Consultar un webhook", tags=["webhooks"], responses={200: WebhookOut, 404: ErrorOut})
    def get(self, request, pk: int):
        return Response(WebhookOut(self.get_endpoint(request, pk), context={"request": request}).data)

    @extend_schema(summary="Modificar un webhook", tags=["webhooks"], request=WebhookPatchIn,
                   responses={200: WebhookOut, 400: ErrorOut, 404: ErrorOut})
    def patch(self, request, pk: int):
        endpoint = self.get_endpoint(request, pk)
        data = WebhookPatchIn(data=request.data)
        data.is_valid(raise_exception=True)
        endpoint = webhook_endpoint_update(endpoint=endpoint, actor=str(request.user), **data.validated_data)
        return Response(WebhookOut(endpoint, context={"request": request}).data)

    @extend_schema(summary="Eliminar un webhook", tags=["webhooks"], responses={204: None, 404: ErrorOut})
    def delete(self, request, pk: int):
        webhook_endpoint_delete(endpoint=self.get_endpoint(request, pk), actor=str(request.user))
        return Response(status=status.HTTP_204_NO_CONTENT)


class WebhookTest(_WebhooksView):
    @extend_schema(summary="Enviar un evento de prueba",
                   description="Encola un evento «webhook.test» para este webhook (aunque esté inactivo o "
                               "filtre eventos); consulta su resultado en /deliveries.",
                   tags=["webhooks"], request=None, responses={202: DeliveryOut, 404: ErrorOut})
    def post(self, request, pk: int):
        delivery = webhook_send_test(endpoint=self.get_endpoint(request, pk), actor=str(request.user))
        return Response(DeliveryOut(delivery).data, status=status.HTTP_202_ACCEPTED)


class WebhookRotateSecret(_WebhooksView):
    @extend_schema(
        summary="Rotar el secreto de firma",
        operation_id="v1_webhooks_rotate_secret",
        description="Crea un secreto nuevo y lo devuelve una sola vez en «secret». El anterior sigue firmando "
                    "junto al nuevo hasta «previous_secret_expires_at» (24 h si no indicas "
                    "«previous_secret_hours»): mientras tanto cada envío lleva dos firmas en webhook-signature "
                    "(«v1,firmaNueva v1,firmaAnterior»), así que tu receptor puede cambiar de secreto sin perder "
                    "eventos. Rotar otra vez durante ese plazo termina de inmediato el secreto más antiguo.",
        tags=["webhooks"], request=RotateIn,
        responses={200: WebhookCreatedOut, 400: ErrorOut, 404: ErrorOut},
        examples=[
            OpenApiExample("Rotar con el plazo predeterminado (24 h)", value={}, request_only=True),
            OpenApiExample("Secreto filtrado: el anterior deja de valer ya", value={"previous_secret_hours": 0},
                           request_only=True),
            OpenApiExample("Secreto nuevo", response_only=True, status_codes=["200"], value={
                "id": 7, "url": "https://erp.example.com/webhooks/facturas", "events": ["invoice.stamped"],
                "description": "ERP", "is_active": True, "created_at": "2026-05-04T12:00:00-06:00",
                "secret_rotated_at": "2026-06-01T09:30:00-06:00",
                "previous_secret_expires_at": "2026-06-02T09:30:00-06:00",
                "links": {"self": "https://facturas.example.com/api/v1/webhooks/7",
                          "test": "https://facturas.example.com/api/v1/webhooks/7/test",
                          "deliveries": "https://facturas.example.com/api/v1/webhooks/7/deliveries",
                          "rotate_secret": "https://facturas.example.com/api/v1/webhooks/7/rotate-secret"},
                "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw8Y0xw3yYJc4="}),
        ],
    )
    def post(self, request, pk: int):
        endpoint = self.get_endpoint(request, pk)
        data = RotateIn(data=request.data)
        data.is_valid(raise_exception=True)
        hours = data.validated_data.get("previous_secret_hours")
        endpoint, secret = webhook_secret_rotate(
            endpoint=endpoint, overlap=None if hours is None else dt.timedelta(hours=hours), actor=str(request.user))
        return Response(WebhookCreatedOut(endpoint, context={"request": request, "secret": secret}).data)


class WebhookDeliveries(_WebhooksView):
    @extend_schema(
        summary="Entregas recientes",
        tags=["webhooks"],
        parameters=[OpenApiParameter("status", str, enum=[s for s, _ in WebhookDelivery.Status.choices]),
                    OpenApiParameter("limit", int, description=f"máximo {DELIVERIES_MAX}")],
        responses={200: DeliveryListOut, 400: ErrorOut, 404: ErrorOut},
    )
    def get(self, request, pk: int):
        endpoint = self.get_endpoint(request, pk)
        qs = endpoint.deliveries.all()
        wanted = request.query_params.get("status")
        if wanted:
            if wanted not in WebhookDelivery.Status.values:
                raise InvoicingError("validation_error", "Estado de entrega desconocido.",
                                     {"status": [f"Valores: {', '.join(WebhookDelivery.Status.values)}."]},
                                     status=400)
            qs = qs.filter(status=wanted)
        limit = request.query_params.get("limit") or DELIVERIES_DEFAULT
        try:
            limit = int(limit)
        except (TypeError, ValueError):
            limit = -1
        if limit < 1:
            raise InvoicingError("validation_error", "«limit» debe ser un entero positivo.",
                                 {"limit": ["Debe ser un entero positivo."]}, status=400)
        page = qs.order_by("-created_at", "-pk")[:min(limit, DELIVERIES_MAX)]
        return Response({"count": qs.count(), "results": DeliveryOut(page, many=True).data})
