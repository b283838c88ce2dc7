"""Explicit input and output shapes of the invoices API."""

from rest_framework import serializers

from invoicing.models import Invoice


class ReceptorIn(serializers.Serializer):
    rfc = serializers.CharField(max_length=13)
    name = serializers.CharField(max_length=300)
    tax_regime = serializers.CharField(max_length=3, help_text="c_RegimenFiscal, p. ej. 612")
    postal_code = serializers.CharField(max_length=5, help_text="Código postal del domicilio fiscal")
    cfdi_use = serializers.CharField(max_length=4, help_text="c_UsoCFDI, p. ej. G03")
    emails = serializers.ListField(child=serializers.EmailField(), max_length=10, required=False, default=list)


class InvoiceCreateIn(serializers.Serializer):
    ticket_ids = serializers.ListField(child=serializers.IntegerField(min_value=1), min_length=1, max_length=50)
    receptor = ReceptorIn()


class ResendIn(serializers.Serializer):
    emails = serializers.ListField(child=serializers.EmailField(), max_length=10, required=False)


class ErrorOut(serializers.Serializer):
    class _Error(serializers.Serializer):
        code = serializers.CharField()
        message = serializers.CharField()
        details = serializers.DictField()

    error = _Error()


class InvoiceOut(serializers.ModelSerializer):
    uuid = serializers.SerializerMethodField()
    ticket_ids = serializers.SerializerMethodField()
    receptor = serializers.SerializerMethodField()
    error = serializers.SerializerMethodField()
    links = serializers.SerializerMethodField()

    class Meta:
        model = Invoice
        fields = ["id", "kind", "status", "serie", "folio", "uuid", "currency", "exchange_rate", "payment_form",
                  "payment_method",
                  "subtotal", "discount", "tax_total", "withheld_total", "total", "issued_at", "stamped_at",
                  "pac", "attempts", "receptor", "ticket_ids", "error", "links", "created_at"]

    def get_uuid(self, obj) -> str | None:
        return str(obj.uuid).upper() if obj.uuid else None

    def get_ticket_ids(self, obj) -> list[int]:
        return [link.ticket_id for link in obj.ticket_links.all()]

    def get_receptor(self, obj) -> dict:
        return {"rfc": obj.receptor_rfc, "name": obj.receptor_name, "tax_regime": obj.receptor_tax_regime,
                "postal_code": obj.receptor_postal_code, "cfdi_use": obj.receptor_cfdi_use,
                "emails": obj.receptor_emails}

    def get_error(self, obj) -> dict | None:
        if not obj.last_error_code:
            return None
        return {"code": obj.last_error_code, "message": obj.last_error_message,
                "permanent": obj.last_error_permanent}

    def get_links(self, obj) -> dict:
        request = self.context.get("request")
        base = request.build_absolute_uri(f"/api/v1/invoices/{obj.pk}") if request else f"/api/v1/invoices/{obj.pk}"
        links = {"self": base}
        if obj.status in (Invoice.Status.STAMPED, Invoice.Status.CANCELLING, Invoice.Status.CANCELLED):
            links.update(xml=f"{base}/xml", pdf=f"{base}/pdf", zip=f"{base}/zip")
        return links
