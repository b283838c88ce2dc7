"""Webhooks API (scope "webhooks"): endpoints CRUD, a test event, recent deliveries. Views only call services."""

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from infra.api.auth import HasScope
from invoicing.api.serializers import ErrorOut
from invoicing.errors import InvoicingError
from invoicing.webhooks.models import EVENTS, WebhookDelivery, WebhookEndpoint
from invoicing.webhooks.services import (
    webhook_endpoint_create,
    webhook_endpoint_delete,
    webhook_endpoint_update,
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
        fields = ["id", "url", "events", "description", "is_active", "created_at", "links"]

    def get_links(self, obj) -> dict:
        base = f"/api/v1/webhooks/{obj.pk}"
        request = self.context.get("request")
        if request:
            base = request.build_absolute_uri(base)
        return {"self": base, "test": f"{base}/test", "deliveries": f"{base}/deliveries"}


class WebhookCreatedOut(WebhookOut):
    secret = serializers.SerializerMethodField(
        help_text="Secreto de firma (HMAC-SHA256). Solo se muestra en esta respuesta: guárdalo.")

    class Meta(WebhookOut.Meta):
        fields = [*WebhookOut.Meta.fields, "secret"]

    def get_secret(self, obj) -> str:
        return self.context["secret"]


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
        description="Devuelve el secreto de firma una sola vez. Cada envío lleva "
                    "X-Webhook-Signature: sha256=HMAC(secreto, \"{timestamp}.{cuerpo}\").",
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
