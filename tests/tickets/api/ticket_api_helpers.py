"""Helpers for the tickets API tests (importable from test modules: pytest puts this folder on sys.path)."""

import base64
import io
import zipfile


def line(description="REFRESCO", price="22.00", quantity="2", rate="0.160000", **extra):
    data = {"product_code": "50202306", "unit_code": "H87", "description": description, "quantity": quantity,
            "unit_price": price, "tax_object": "02", "taxes": [{"tax": "002", "factor": "Tasa", "rate": rate}]}
    data.update(extra)
    return data


def make_zip(files: dict[str, bytes | str], compression=zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as zf:
        for name, content in files.items():
            zf.writestr(name, content)
    return buf.getvalue()


def cfdi_xml(*, version="4.0", total="116.00", folio="9001", with_receptor=False) -> bytes:
    ns = "http://www.sat.gob.mx/cfd/4" if version == "4.0" else "http://www.sat.gob.mx/cfd/3"
    objeto = ' ObjetoImp="02"' if version == "4.0" else ""
    receptor = ('<cfdi:Receptor Rfc="XAXX010101000" Nombre="PUBLICO EN GENERAL" UsoCFDI="S01"/>'
                if with_receptor else "")
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>'
        f'<cfdi:Comprobante xmlns:cfdi="{ns}" Version="{version}" Serie="T" Folio="{folio}" '
        f'Fecha="2026-01-15T12:00:00" SubTotal="100.00" Moneda="MXN" Total="{total}" TipoDeComprobante="I" '
        f'FormaPago="01" LugarExpedicion="06600">'
        f'<cfdi:Emisor Rfc="EKU9003173C9" Nombre="ESCUELA KEMPER URGATE" RegimenFiscal="601"/>{receptor}'
        f'<cfdi:Conceptos><cfdi:Concepto ClaveProdServ="50202306" Cantidad="1" ClaveUnidad="H87" '
        f'Descripcion="REFRESCO" ValorUnitario="100.00" Importe="100.00"{objeto}>'
        f'<cfdi:Impuestos><cfdi:Traslados><cfdi:Traslado Base="100.00" Impuesto="002" TipoFactor="Tasa" '
        f'TasaOCuota="0.160000" Importe="16.00"/></cfdi:Traslados></cfdi:Impuestos></cfdi:Concepto>'
        f'</cfdi:Conceptos></cfdi:Comprobante>'
    ).encode()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
