"""The accountant's export over the API (scope "invoices"): ask for a period, poll its status, download the ZIP."""

import datetime as dt

from django.http import FileResponse
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from infra.api.auth import HasScope
from invoicing.api.serializers import ErrorOut
from invoicing.errors import InvoicingError
from invoicing.models import AccountingExport
from invoicing.services.exports import export_file, export_request
from tickets.models import Branch


class ExportIn(serializers.Serializer):
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

    def get_links(self, obj) -> dict:
        request = self.context.get("request")
        base = f"/api/v1/exports/{obj.pk}"
        base = request.build_absolute_uri(base) if request else base
        links = {"self": base}
        if obj.status == AccountingExport.Status.DONE:
            links["download"] = f"{base}/download"
        return links


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
                   request=ExportIn, responses={202: ExportOut, 400: ErrorOut, 404: ErrorOut})
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
    @extend_schema(summary="Consultar una exportación", responses={200: ExportOut, 404: ErrorOut})
    def get(self, request, pk: int):
        return Response(ExportOut(self.get_export(request, pk), context={"request": request}).data)


class ExportDownload(_ExportsView):
    @extend_schema(summary="Descargar el ZIP de una exportación", operation_id="v1_exports_download",
                   responses={(200, "application/zip"): bytes, 404: ErrorOut, 409: ErrorOut})
    def get(self, request, pk: int):
        export = self.get_export(request, pk)
        return FileResponse(export_file(export), as_attachment=True, filename=export.file.name.rsplit("/", 1)[-1],
                            content_type="application/zip")
