"""Back office for webhooks: endpoints (secret shown once, rotated with an overlap), their recent deliveries, a
test event, and "reenviar"."""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.http import Http404, HttpResponseRedirect
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from infra.admin_scope import MerchantScopedAdmin, user_merchant_id
from infra.errors import DomainError
from infra.roles import Cap
from invoicing.webhooks.models import EVENTS, WebhookDelivery, WebhookEndpoint
from invoicing.webhooks.services import (
    MAX_ENDPOINTS_PER_MERCHANT,
    _clean_url,
    webhook_endpoint_create,
    webhook_endpoint_update,
    webhook_redeliver,
    webhook_secret_rotate,
    webhook_send_test,
)
from tickets.models import Merchant

INLINE_DELIVERIES = 20
# The event names are the API's (what a receiver matches on); staff read what each one means.
EVENT_LABELS = {
    "invoice.stamped": "factura timbrada",
    "invoice.failed": "factura rechazada",
    "invoice.cancelled": "factura cancelada",
    "invoice.duplicate_stamp": "timbre duplicado de una factura (se cancela el sobrante)",
    "global_invoice.stamped": "factura global timbrada",
    "global_invoice.deadline_alert": "plazo de la factura global por vencer",
    "batch.completed": "lote de tickets terminado",
    "webhook.test": "evento de prueba",
}
EVENT_CHOICES = [(e, f"{EVENT_LABELS.get(e, e)} ({e})") for e in EVENTS]


class EventFilter(admin.SimpleListFilter):
    title = "evento"
    parameter_name = "evento"

    def lookups(self, request, model_admin):
        used = model_admin.get_queryset(request).order_by().values_list("event", flat=True).distinct()[:20]
        return [(e, EVENT_LABELS.get(e, e)) for e in sorted(set(used))]

    def queryset(self, request, queryset):
        return queryset.filter(event=self.value()) if self.value() else queryset


class WebhookEndpointForm(forms.ModelForm):
    url = forms.CharField(label="URL", max_length=500, help_text="https://… que recibirá los eventos por POST")
    events = forms.MultipleChoiceField(label="eventos", choices=EVENT_CHOICES, required=False,
                                       widget=forms.CheckboxSelectMultiple,
                                       help_text="Sin marcar ninguno: recibe todos los eventos.")

    merchant_id_for_staff = None  # set per request by the admin's get_form

    class Meta:
        model = WebhookEndpoint
        fields = ["merchant", "url", "events", "description", "is_active"]

    def clean_url(self):
        try:
            return _clean_url(self.cleaned_data["url"])
        except DomainError as exc:
            raise forms.ValidationError(exc.details.get("url") or exc.message) from exc

    def clean(self):
        data = super().clean()
        if not self.instance.pk:
            merchant = data.get("merchant")
            merchant_id = self.merchant_id_for_staff or (merchant.pk if merchant else None)
            if WebhookEndpoint.objects.filter(merchant_id=merchant_id).count() >= MAX_ENDPOINTS_PER_MERCHANT:
                raise forms.ValidationError(f"Se admite un máximo de {MAX_ENDPOINTS_PER_MERCHANT} webhooks por "
                                            "comercio.")
        return data


class DeliveryInline(admin.TabularInline):
    model = WebhookDelivery
    extra = 0
    can_delete = False
    max_num = 0
    fields = readonly_fields = ["created_at", "event", "status", "attempts", "last_status_code", "next_attempt_at",
                                "delivered_at", "response_excerpt"]
    ordering = ["-created_at", "-id"]
    verbose_name_plural = f"entregas recientes (últimas {INLINE_DELIVERIES})"

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        recent = list(qs.order_by("-created_at", "-id").values_list("pk", flat=True)[:INLINE_DELIVERIES])
        return qs.filter(pk__in=recent)

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(MerchantScopedAdmin):
    edit_capability = Cap.WEBHOOKS
    form = WebhookEndpointForm
    list_display = ["url", "description", "event_list", "is_active", "created_at"]
    list_filter = ["is_active"]
    search_fields = ["url", "description"]
    readonly_fields = ["secret_rotated_at", "previous_secret_expires_at"]
    inlines = [DeliveryInline]
    actions = ["send_test", "rotate_secret", "redeliver_failed"]

    change_form_template = "admin/invoicing/webhookendpoint/change_form.html"
    custom_view_capabilities = {"test": Cap.WEBHOOKS, "rotate": Cap.WEBHOOKS}

    @admin.display(description="eventos")
    def event_list(self, obj):
        return ", ".join(EVENT_LABELS.get(e, e) for e in obj.events) or "todos"

    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        return [path("<path:object_id>/probar/", self.admin_site.admin_view(self.test_view),
                     name="{}_{}_test".format(*info)),
                path("<path:object_id>/rotar-secreto/", self.admin_site.admin_view(self.rotate_view),
                     name="{}_{}_rotate".format(*info))] + super().get_urls()

    def test_view(self, request, object_id):
        """The "Probar" button: the API's test service, one webhook.test delivery to this endpoint."""
        endpoint = self.get_object(request, unquote(object_id))
        if endpoint is None:
            raise Http404("El webhook no existe.")
        if request.method != "POST":
            return HttpResponseRedirect(reverse("admin:invoicing_webhookendpoint_change", args=(endpoint.pk,)))
        delivery = webhook_send_test(endpoint=endpoint, actor=request.user.get_username())
        self.message_user(request, f"Evento de prueba en cola para {endpoint.url} (entrega {delivery.event_id}). "
                          "Su resultado aparece abajo, en «entregas recientes».", messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:invoicing_webhookendpoint_change", args=(endpoint.pk,)))

    def rotate_view(self, request, object_id):
        """The "Rotar el secreto" button: a new secret shown once; the old one keeps signing for the overlap."""
        endpoint = self.get_object(request, unquote(object_id))
        if endpoint is None:
            raise Http404("El webhook no existe.")
        if request.method == "POST":
            self._rotate(request, endpoint)
        return HttpResponseRedirect(reverse("admin:invoicing_webhookendpoint_change", args=(endpoint.pk,)))

    def _rotate(self, request, endpoint):
        endpoint, secret = webhook_secret_rotate(endpoint=endpoint, actor=request.user.get_username())
        expires = endpoint.previous_secret_expires_at
        old = (f"El secreto anterior sigue firmando junto con este hasta el "
               f"{timezone.localtime(expires):%d/%m/%Y %H:%M}: cambia tu receptor antes de esa hora."
               if expires else "El secreto anterior ya no firma.")
        messages.warning(request, format_html(
            "Secreto nuevo de {}. Cópialo ahora: no se volverá a mostrar.<br><code>{}</code><br>{}",
            endpoint.url, secret, old))

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        form.merchant_id_for_staff = None if request.user.is_superuser else user_merchant_id(request.user)
        return form

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        actor = request.user.get_username()
        if change:
            webhook_endpoint_update(endpoint=obj, url=data["url"], events=data["events"],
                                    description=data["description"], is_active=data["is_active"], actor=actor)
            return
        merchant_id = obj.merchant_id if request.user.is_superuser else user_merchant_id(request.user)
        endpoint, secret = webhook_endpoint_create(
            merchant=Merchant.objects.get(pk=merchant_id), url=data["url"], events=data["events"],
            description=data["description"], is_active=data["is_active"], actor=actor)
        obj.pk, obj.created_at, obj.secret, obj.merchant_id = endpoint.pk, endpoint.created_at, secret, merchant_id
        messages.warning(request, format_html(
            "Webhook creado. Copia su secreto de firma ahora: no se volverá a mostrar.<br><code>{}</code>", secret))

    @admin.action(description="Enviar un evento de prueba", permissions=["webhooks"])
    def send_test(self, request, queryset):
        for endpoint in queryset:
            webhook_send_test(endpoint=endpoint, actor=request.user.get_username())
        self.message_user(request, f"{queryset.count()} evento(s) de prueba en cola.", messages.SUCCESS)

    @admin.action(description="Rotar el secreto de firma (el anterior sigue firmando durante la transición)",
                  permissions=["webhooks"])
    def rotate_secret(self, request, queryset):
        for endpoint in queryset.order_by("pk")[:MAX_ENDPOINTS_PER_MERCHANT]:
            self._rotate(request, endpoint)

    @admin.action(description="Reenviar las entregas fallidas", permissions=["webhooks"])
    def redeliver_failed(self, request, queryset):
        failed = WebhookDelivery.objects.filter(endpoint__in=queryset, status=WebhookDelivery.Status.FAILED)
        count = sum(webhook_redeliver(delivery=d, actor=request.user.get_username()) for d in failed)
        self.message_user(request, f"{count} entrega(s) en cola de nuevo.", messages.SUCCESS)


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(MerchantScopedAdmin):
    edit_capability = Cap.WEBHOOKS
    list_display = ["created_at", "event", "endpoint", "status", "attempts", "last_status_code", "delivered_at"]
    list_filter = ["status", EventFilter]
    search_fields = ["endpoint__url"]
    readonly_fields = [f.name for f in WebhookDelivery._meta.fields if f.name != "id"]
    actions = ["redeliver"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.action(description="Reenviar (solo las fallidas)", permissions=["webhooks"])
    def redeliver(self, request, queryset):
        actor = request.user.get_username()
        count = sum(webhook_redeliver(delivery=d, actor=actor)
                    for d in queryset.filter(status=WebhookDelivery.Status.FAILED))
        self.message_user(request, f"{count} entrega(s) en cola de nuevo.", messages.SUCCESS)
