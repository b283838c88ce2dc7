"""Webhooks API (scope "webhooks"): endpoints CRUD, secret rotation, a test event, recent deliveries. Views only
call services."""

import datetime as dt

from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from infra.api.auth import HasScope
from infra.api.schema import TAG_WEBHOOKS, error, error_example, path_id
from infra.api.strict import StrictJsonSerializer
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


class WebhookIn(StrictJsonSerializer):
    url = serializers.CharField(max_length=500, help_text="https://… que recibirá los eventos por POST")
    events = serializers.ListField(child=serializers.ChoiceField(choices=EVENTS), max_length=len(EVENTS),
                                   required=False, default=list, help_text="Vacío: todos los eventos.")
    description = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    is_active = serializers.BooleanField(required=False, default=True)


class WebhookPatchIn(StrictJsonSerializer):
    url = serializers.CharField(max_length=500, required=False)
    events = serializers.ListField(child=serializers.ChoiceField(choices=EVENTS), max_length=len(EVENTS),
                                   required=False)
    description = serializers.CharField(max_length=200, required=False, allow_blank=True)
    is_active = serializers.BooleanField(required=False)


class WebhookLinksOut(serializers.Serializer):
    self = serializers.URLField()
    test = serializers.URLField()
    deliveries = serializers.URLField()


class WebhookOut(serializers.ModelSerializer):
    links = serializers.SerializerMethodField()

    class Meta:
        model = WebhookEndpoint
        fields = ["id", "url", "events", "description", "is_active", "created_at", "secret_rotated_at",
                  "previous_secret_expires_at", "links"]

    @extend_schema_field(WebhookLinksOut)
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


WEBHOOK_ID = path_id("id", "Id del webhook.")
BASE = "https://factura.ejemplo.mx/api/v1/webhooks"
WEBHOOK = {"id": 7, "url": "https://erp.example.com/webhooks/facturas", "events": ["invoice.stamped", "invoice.failed"],
           "description": "ERP central", "is_active": True, "created_at": "2026-05-31T09:12:00.000000-06:00",
           "links": {"self": f"{BASE}/7", "test": f"{BASE}/7/test", "deliveries": f"{BASE}/7/deliveries"}}
DELIVERY = {
    "id": 3051, "event": "invoice.stamped", "event_id": "0b6c0f5e-3f4e-4a0b-9d1e-5f2a7c8d9e10", "status": "delivered",
    "attempts": 1, "next_attempt_at": None, "last_status_code": 200, "response_excerpt": "{\"ok\": true}",
    "payload": {"id": "0b6c0f5e-3f4e-4a0b-9d1e-5f2a7c8d9e10", "type": "invoice.stamped",
                "created_at": "2026-05-31T19:50:13.532000+00:00",
                "data": {"id": 871, "kind": "ingreso", "status": "stamped",
                         "uuid": "053DC7AB-C6FB-41FB-B06C-A28DB40F309A", "serie": "F", "folio": 871, "currency": "MXN",
                         "total": "163.50", "receptor_rfc": "CACX7605101P8"}},
    "created_at": "2026-05-31T13:50:13.540000-06:00", "delivered_at": "2026-05-31T13:50:14.002000-06:00",
}
TEST_DELIVERY = {
    **DELIVERY, "id": 3052, "event": "webhook.test", "event_id": "af3799a9-94f5-4998-bff1-e9875fe90aae",
    "status": "pending", "attempts": 0, "next_attempt_at": "2026-05-31T14:00:00.000000-06:00", "last_status_code": None,
    "response_excerpt": "", "delivered_at": None, "created_at": "2026-05-31T14:00:00.000000-06:00",
    "payload": {"id": "af3799a9-94f5-4998-bff1-e9875fe90aae", "type": "webhook.test",
                "created_at": "2026-05-31T20:00:00.000000+00:00",
                "data": {"message": "Evento de prueba: si lo recibes, tu webhook está bien configurado.",
                         "endpoint_id": 7, "requested_by": "api:afk_4P3FvuAE"}},
}
URL_REFUSED = error("La URL o los eventos no son válidos.", error_example(
    "validation_error", "Hay datos inválidos en la solicitud.",
    {"url": ["Usa una URL completa que empiece con https:// (o http://)."]}))


class _WebhooksView(APIView):
    permission_classes = [HasScope("webhooks")]

    def get_endpoint(self, request, pk: int) -> WebhookEndpoint:
        endpoint = WebhookEndpoint.objects.filter(merchant=request.auth.merchant, pk=pk).first()
        if endpoint is None:
            raise InvoicingError("not_found", "No existe ese webhook.", status=404)
        return endpoint


class WebhookCollection(_WebhooksView):
    @extend_schema(summary="Listar webhooks", operation_id="webhooks_list", tags=[TAG_WEBHOOKS],
                   responses={200: WebhookListOut},
                   examples=[OpenApiExample("Uno", response_only=True, value={"count": 1, "results": [WEBHOOK]})])
    def get(self, request):
        endpoints = WebhookEndpoint.objects.filter(merchant=request.auth.merchant).order_by("-created_at", "-pk")
        data = WebhookOut(endpoints, many=True, context={"request": request}).data
        return Response({"count": len(data), "results": data})

    @extend_schema(
        summary="Registrar un webhook", operation_id="webhooks_create", tags=[TAG_WEBHOOKS],
        description="Devuelve el secreto de firma una sola vez. Los envíos siguen el formato Standard Webhooks "
                    "(webhook-id, webhook-timestamp, webhook-signature: ver «Webhooks» en la descripción de la API).",
        request=WebhookIn,
        responses={201: WebhookCreatedOut, 400: URL_REFUSED,
                   422: error("Ya tienes el máximo de webhooks.", error_example(
                       "too_many_webhooks", "Se admite un máximo de 20 webhooks por comercio."))},
        examples=[OpenApiExample("ERP", request_only=True, value={
            "url": "https://erp.example.com/webhooks/facturas", "events": ["invoice.stamped", "invoice.failed"],
            "description": "ERP central"}),
            OpenApiExample("Registrado", response_only=True, status_codes=["201"], value={
                **WEBHOOK, "secret": "whsec_zyfdq2Ei65x6uFiRC23dwxpGCxChqB7diKByq23wVs"})],
    )
    def post(self, request):
        data = WebhookIn(data=request.data)
        data.is_valid(raise_exception=True)
        endpoint, secret = webhook_endpoint_create(merchant=request.auth.merchant, actor=str(request.user),
                                                   **data.validated_data)
        out = WebhookCreatedOut(endpoint, context={"request": request, "secret": secret})
        return Response(out.data, status=status.HTTP_201_CREATED)


class WebhookDetail(_WebhooksView):
    @extend_schema(summary="Consultar un webhook", operation_id="webhooks_retrieve", tags=[TAG_WEBHOOKS],
                   parameters=[WEBHOOK_ID], responses={200: WebhookOut},
                   examples=[OpenApiExample("Activo", response_only=True, value=WEBHOOK)])
    def get(self, request, pk: int):
        return Response(WebhookOut(self.get_endpoint(request, pk), context={"request": request}).data)

    @extend_schema(summary="Modificar un webhook", operation_id="webhooks_update", tags=[TAG_WEBHOOKS],
                   description="Solo los campos enviados cambian.", parameters=[WEBHOOK_ID], request=WebhookPatchIn,
                   responses={200: WebhookOut, 400: URL_REFUSED},
                   examples=[OpenApiExample("Pausar", request_only=True, value={"is_active": False}),
                             OpenApiExample("Pausado", response_only=True, value={**WEBHOOK, "is_active": False})])
    def patch(self, request, pk: int):
        endpoint = self.get_endpoint(request, pk)
        data = WebhookPatchIn(data=request.data)
        data.is_valid(raise_exception=True)
        endpoint = webhook_endpoint_update(endpoint=endpoint, actor=str(request.user), **data.validated_data)
        return Response(WebhookOut(endpoint, context={"request": request}).data)

    @extend_schema(summary="Eliminar un webhook", operation_id="webhooks_delete", tags=[TAG_WEBHOOKS],
                   parameters=[WEBHOOK_ID], responses={204: None})
    def delete(self, request, pk: int):
        webhook_endpoint_delete(endpoint=self.get_endpoint(request, pk), actor=str(request.user))
        return Response(status=status.HTTP_204_NO_CONTENT)


class WebhookTest(_WebhooksView):
    @extend_schema(summary="Enviar un evento de prueba", operation_id="webhooks_test",
                   description="Encola un evento «webhook.test» para este webhook (aunque esté inactivo o "
                               "filtre eventos); consulta su resultado en /deliveries.",
                   tags=[TAG_WEBHOOKS], parameters=[WEBHOOK_ID], request=None, responses={202: DeliveryOut},
                   examples=[OpenApiExample("Encolado", response_only=True, status_codes=["202"],
                                            value=TEST_DELIVERY)])
    def post(self, request, pk: int):
        delivery = webhook_send_test(endpoint=self.get_endpoint(request, pk), actor=str(request.user))
        return Response(DeliveryOut(delivery).data, status=status.HTTP_202_ACCEPTED)


class WebhookRotateSecret(_WebhooksView):
    @extend_schema(
        summary="Rotar el secreto de firma",
        operation_id="webhooks_rotate_secret",
        description="Crea un secreto nuevo y lo devuelve una sola vez en «secret». El anterior sigue firmando "
                    "junto al nuevo hasta «previous_secret_expires_at» (24 h si no indicas "
                    "«previous_secret_hours»): mientras tanto cada envío lleva dos firmas en webhook-signature "
                    "(«v1,firmaNueva v1,firmaAnterior»), así que tu receptor puede cambiar de secreto sin perder "
                    "eventos. Rotar otra vez durante ese plazo termina de inmediato el secreto más antiguo.",
        tags=[TAG_WEBHOOKS], request=RotateIn, parameters=[WEBHOOK_ID],
        responses={200: WebhookCreatedOut,
                   400: error("Plazo fuera de rango.", error_example(
                       "validation_error", "Datos inválidos.", {"previous_secret_hours": [
                           "Asegúrese de que este valor es menor o igual a 168."]}))},
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
        summary="Entregas recientes", operation_id="webhooks_deliveries", tags=[TAG_WEBHOOKS],
        description="De la más reciente a la más antigua, con el contenido enviado y la respuesta de tu servidor.",
        parameters=[WEBHOOK_ID, OpenApiParameter("status", str, enum=[s for s, _ in WebhookDelivery.Status.choices]),
                    OpenApiParameter("limit", int, description=f"1 a {DELIVERIES_MAX} ({DELIVERIES_DEFAULT} por "
                                                               "omisión)")],
        responses={200: DeliveryListOut},
        examples=[OpenApiExample("Recientes", response_only=True, value={"count": 2, "results": [TEST_DELIVERY,
                                                                                              DELIVERY]})],
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
