"""The accountant's export over the API (scope "invoices"): ask for a period, poll its status, download the ZIP."""

import datetime as dt

from django.http import FileResponse
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from infra.api.auth import HasScope
from infra.api.schema import TAG_EXPORTS, content_disposition, error, error_example, path_id
from infra.api.strict import StrictJsonSerializer
from invoicing.api import examples as ex
from invoicing.errors import InvoicingError
from invoicing.models import AccountingExport
from invoicing.services.exports import export_file, export_request
from tickets.models import Branch


class ExportIn(StrictJsonSerializer):
    month = serializers.RegexField(r"^\d{4}-(0[1-9]|1[0-2])$", required=False,
                                  help_text="AAAA-MM; o bien date_from y date_to")
    date_from = serializers.DateField(required=False)
    date_to = serializers.DateField(required=False)
    branch = serializers.CharField(max_length=40, required=False, help_text="Clave de la sucursal (opcional)")
    include_pdfs = serializers.BooleanField(required=False, default=False)

    def validate(self, data):
        if data.get("month"):
            first = dt.date.fromisoformat(f"{data['month']}-01")
            data["date_from"] = first
            data["date_to"] = (first.replace(day=28) + dt.timedelta(days=4)).replace(day=1) - dt.timedelta(days=1)
        elif not (data.get("date_from") and data.get("date_to")):
            raise serializers.ValidationError({"month": ["Indica month, o date_from y date_to."]})
        return data


class ExportLinksOut(serializers.Serializer):
    self = serializers.URLField()
    download = serializers.URLField(required=False, help_text="Cuando status es «done».")


class ExportOut(serializers.ModelSerializer):
    date_from = serializers.DateField(source="first_day")
    date_to = serializers.DateField(source="last_day")
    branch = serializers.SerializerMethodField()
    links = serializers.SerializerMethodField()

    class Meta:
        model = AccountingExport
        fields = ["id", "status", "date_from", "date_to", "branch", "include_pdfs", "processed", "total", "error",
                  "created_at", "finished_at", "links"]

    def get_branch(self, obj) -> str | None:
        return obj.branch.code if obj.branch_id else None

    @extend_schema_field(ExportLinksOut)
    def get_links(self, obj) -> dict:
        request = self.context.get("request")
        base = f"/api/v1/exports/{obj.pk}"
        base = request.build_absolute_uri(base) if request else base
        links = {"self": base}
        if obj.status == AccountingExport.Status.DONE:
            links["download"] = f"{base}/download"
        return links


EXPORT_ID = path_id("id", "Id de la exportación.")


class _ExportsView(APIView):
    permission_classes = [HasScope("invoices")]

    def get_export(self, request, pk: int) -> AccountingExport:
        export = (AccountingExport.objects.select_related("branch")
                  .filter(merchant=request.auth.merchant, pk=pk).first())
        if export is None:
            raise InvoicingError("not_found", "No existe esa exportación.", status=404)
        return export


class ExportCollection(_ExportsView):
    @extend_schema(summary="Exportar un periodo para contabilidad",
                   description="Genera en segundo plano un ZIP con el XML de cada CFDI timbrado del periodo (por "
                               "fecha del CFDI), facturas.csv y facturas.xlsx. Consulta su avance en «links.self» y "
                               "descárgalo en «links.download» cuando «status» sea «done».",
                   operation_id="exports_create", tags=[TAG_EXPORTS], request=ExportIn,
                   responses={202: ExportOut,
                              400: error("Periodo inválido.", error_example(
                                  "validation_error", "Hay datos inválidos en la solicitud.",
                                  {"month": ["Indica month, o date_from y date_to."]})),
                              404: error("La sucursal no existe.", error_example(
                                  "not_found", "No existe esa sucursal.", {"branch": ["No existe."]}))},
                   examples=[OpenApiExample("Un mes", request_only=True, value={"month": "2026-05"}),
                             OpenApiExample("Fechas, una sucursal, con PDF", request_only=True, value={
                                 "date_from": "2026-05-01", "date_to": "2026-05-15", "branch": "CENTRO",
                                 "include_pdfs": True}),
                             OpenApiExample("En cola", response_only=True, status_codes=["202"],
                                            value=ex.EXPORT_QUEUED)])
    def post(self, request):
        data = ExportIn(data=request.data)
        data.is_valid(raise_exception=True)
        merchant = request.auth.merchant
        branch = None
        if code := data.validated_data.get("branch"):
            branch = Branch.objects.filter(merchant=merchant, code=code).first()
            if branch is None:
                raise InvoicingError("not_found", "No existe esa sucursal.", {"branch": ["No existe."]}, status=404)
        export = export_request(merchant=merchant, first_day=data.validated_data["date_from"],
                                last_day=data.validated_data["date_to"], branch=branch,
                                include_pdfs=data.validated_data["include_pdfs"], actor=str(request.user))
        return Response(ExportOut(export, context={"request": request}).data, status=status.HTTP_202_ACCEPTED)


class ExportDetail(_ExportsView):
    @extend_schema(summary="Consultar una exportación", operation_id="exports_retrieve", tags=[TAG_EXPORTS],
                   parameters=[EXPORT_ID], responses={200: ExportOut},
                   examples=[OpenApiExample("Lista", value=ex.EXPORT, response_only=True)])
    def get(self, request, pk: int):
        return Response(ExportOut(self.get_export(request, pk), context={"request": request}).data)


class ExportDownload(_ExportsView):
    @extend_schema(summary="Descargar el ZIP de una exportación", operation_id="exports_download",
                   tags=[TAG_EXPORTS], parameters=[EXPORT_ID, content_disposition(200)],
                   description="xml/ (cada CFDI timbrado del periodo), pdf/ si se pidió, facturas.csv y facturas.xlsx.",
                   responses={(200, "application/zip"): OpenApiResponse(
                                  {"type": "string", "format": "binary"}, description="El ZIP, como adjunto."),
                              (409, "application/json"): error("Todavía no termina.", error_example(
                                  "export_not_ready", "La exportación todavía no está lista.",
                                  {"status": "running"}))})
    def get(self, request, pk: int):
        export = self.get_export(request, pk)
        return FileResponse(export_file(export), as_attachment=True, filename=export.file.name.rsplit("/", 1)[-1],
                            content_type="application/zip")
