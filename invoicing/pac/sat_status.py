"""SAT's ConsultaCFDIService: the official status of a CFDI (PROTOCOLS.md §3, RULES.md §6)."""

from __future__ import annotations

from decimal import Decimal
from xml.sax.saxutils import escape

from invoicing.cfdi.qr import format_total

from . import soap
from .base import PacError, StatusResult

PRODUCTION_URL = "https://consultaqr.facturaelectronica.sat.gob.mx/ConsultaCFDIService.svc"
TEST_URL = "https://pruebacfdiconsultaqr.cloudapp.net/ConsultaCFDIService.svc"
ACTION = "http://tempuri.org/IConsultaCFDIService/Consulta"
PROVIDER = "El servicio de consulta del SAT"


def expresion_impresa(*, uuid: str, emisor_rfc: str, receptor_rfc: str, total) -> str:
    """The 3.2-style expression every client sends (``?re=&rr=&tt=&id=``); escaped again for the SOAP body.

    An ``&`` inside an RFC is written ``&amp;`` (RULES.md §5, tested against SAT by phpcfdi)."""
    emisor_rfc, receptor_rfc = emisor_rfc.replace("&", "&amp;"), receptor_rfc.replace("&", "&amp;")
    return f"?re={emisor_rfc}&rr={receptor_rfc}&tt={format_total(Decimal(str(total)))}&id={uuid.upper()}"


def consulta(
    *, uuid: str, emisor_rfc: str, receptor_rfc: str, total, url: str = PRODUCTION_URL, verify: bool = True
) -> StatusResult:
    expression = expresion_impresa(uuid=uuid, emisor_rfc=emisor_rfc, receptor_rfc=receptor_rfc, total=total)
    body = (
        f'<?xml version="1.0" encoding="UTF-8"?><s:Envelope xmlns:s="{soap.SOAP_ENV}"><s:Body>'
        f'<c:Consulta xmlns:c="http://tempuri.org/"><c:expresionImpresa>{escape(expression)}</c:expresionImpresa>'
        f"</c:Consulta></s:Body></s:Envelope>"
    ).encode()
    root = soap.call(PROVIDER, url, f'"{ACTION}"', body, verify=verify)
    result = soap.first(root, "ConsultaResult")
    if result is None:
        raise PacError(
            "malformed",
            "El servicio de consulta del SAT envió una respuesta que no se pudo leer. Intenta más tarde.",
            permanent=False,
            raw=soap.etree.tostring(root),
        )
    return status_from_acuse(result)


def status_from_acuse(node) -> StatusResult:
    """Read an ``Acuse`` (ConsultaResult, or Finkok's ``sat`` element, same field names)."""
    codigo = soap.text(node, "CodigoEstatus")
    estado = soap.text(node, "Estado")
    if not estado:
        estado = "No Encontrado" if codigo.startswith("N") else ""
    return StatusResult(
        estado=estado,
        es_cancelable=soap.text(node, "EsCancelable"),
        estatus_cancelacion=soap.text(node, "EstatusCancelacion"),
        codigo_estatus=codigo,
        validacion_efos=soap.text(node, "ValidacionEFOS"),
    )
