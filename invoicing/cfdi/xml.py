"""Comprobante (data) → lxml tree in SAT's element order, and → UTF-8 bytes."""

from __future__ import annotations

from lxml import etree

from . import document as d
from .money import fmt, fmt_rate
from .resources import CFDI_NS

_C = f"{{{CFDI_NS}}}"
NSMAP = {"cfdi": CFDI_NS, "xsi": "http://www.w3.org/2001/XMLSchema-instance"}
SCHEMA_LOCATION = "http://www.sat.gob.mx/cfd/4 http://www.sat.gob.mx/sitio_internet/cfd/4/cfdv40.xsd"
_XSI_LOC = "{http://www.w3.org/2001/XMLSchema-instance}schemaLocation"

_SE = etree.SubElement


def _opt(attrs: dict, name: str, value) -> None:
    if value is not None and value != "":
        attrs[name] = value


def render(c: d.Comprobante) -> etree._Element:
    """Build the cfdi:Comprobante element (Sello left as in ``c``; the sealer fills it)."""
    a: dict[str, str] = {_XSI_LOC: SCHEMA_LOCATION, "Version": c.version}
    _opt(a, "Serie", c.serie)
    _opt(a, "Folio", c.folio)
    a["Fecha"] = c.fecha
    a["Sello"] = c.sello
    _opt(a, "FormaPago", c.forma_pago)
    a["NoCertificado"] = c.no_certificado
    a["Certificado"] = c.certificado
    _opt(a, "CondicionesDePago", c.condiciones_de_pago)
    a["SubTotal"] = fmt(c.subtotal)
    if c.descuento is not None:
        a["Descuento"] = fmt(c.descuento)
    a["Moneda"] = c.moneda
    if c.tipo_cambio is not None:
        a["TipoCambio"] = fmt(c.tipo_cambio)
    a["Total"] = fmt(c.total)
    a["TipoDeComprobante"] = c.tipo_de_comprobante
    a["Exportacion"] = c.exportacion
    _opt(a, "MetodoPago", c.metodo_pago)
    a["LugarExpedicion"] = c.lugar_expedicion
    _opt(a, "Confirmacion", c.confirmacion)
    root = etree.Element(_C + "Comprobante", a, nsmap=NSMAP)

    if c.informacion_global is not None:
        g = c.informacion_global
        _SE(root, _C + "InformacionGlobal", {"Periodicidad": g.periodicidad, "Meses": g.meses, "Año": g.anio})
    for rel in c.relacionados:
        node = _SE(root, _C + "CfdiRelacionados", TipoRelacion=rel.tipo_relacion)
        for uuid in rel.uuids:
            _SE(node, _C + "CfdiRelacionado", UUID=uuid)
    e = c.emisor
    ea = {"Rfc": e.rfc, "Nombre": e.nombre, "RegimenFiscal": e.regimen_fiscal}
    _opt(ea, "FacAtrAdquirente", e.fac_atr_adquirente)
    _SE(root, _C + "Emisor", ea)
    r = c.receptor
    ra = {"Rfc": r.rfc, "Nombre": r.nombre, "DomicilioFiscalReceptor": r.domicilio_fiscal}
    _opt(ra, "ResidenciaFiscal", r.residencia_fiscal)
    _opt(ra, "NumRegIdTrib", r.num_reg_id_trib)
    ra["RegimenFiscalReceptor"] = r.regimen_fiscal
    ra["UsoCFDI"] = r.uso_cfdi
    _SE(root, _C + "Receptor", ra)

    conceptos = _SE(root, _C + "Conceptos")
    for k in c.conceptos:
        ka = {"ClaveProdServ": k.clave_prod_serv}
        _opt(ka, "NoIdentificacion", k.no_identificacion)
        ka["Cantidad"] = fmt(k.cantidad)
        ka["ClaveUnidad"] = k.clave_unidad
        _opt(ka, "Unidad", k.unidad)
        ka["Descripcion"] = k.descripcion
        ka["ValorUnitario"] = fmt(k.valor_unitario)
        ka["Importe"] = fmt(k.importe)
        if k.descuento is not None:
            ka["Descuento"] = fmt(k.descuento)
        ka["ObjetoImp"] = k.objeto_imp
        node = _SE(conceptos, _C + "Concepto", ka)
        if k.traslados or k.retenciones:
            imp = _SE(node, _C + "Impuestos")
            if k.traslados:
                tr = _SE(imp, _C + "Traslados")
                for t in k.traslados:
                    _SE(tr, _C + "Traslado", _tax_attrs(t.base, t.impuesto, t.tipo_factor, t.tasa_o_cuota, t.importe))
            if k.retenciones:
                rt = _SE(imp, _C + "Retenciones")
                for t in k.retenciones:
                    _SE(rt, _C + "Retencion", _tax_attrs(t.base, t.impuesto, t.tipo_factor, t.tasa_o_cuota, t.importe))

    if c.impuestos is not None:
        i = c.impuestos
        ia: dict[str, str] = {}
        if i.total_retenidos is not None:
            ia["TotalImpuestosRetenidos"] = fmt(i.total_retenidos)
        if i.total_traslados is not None:
            ia["TotalImpuestosTrasladados"] = fmt(i.total_traslados)
        imp = _SE(root, _C + "Impuestos", ia)
        if i.retenciones:
            rt = _SE(imp, _C + "Retenciones")
            for x in i.retenciones:
                _SE(rt, _C + "Retencion", Impuesto=x.impuesto, Importe=fmt(x.importe))
        if i.traslados:
            tr = _SE(imp, _C + "Traslados")
            for t in i.traslados:
                _SE(tr, _C + "Traslado", _tax_attrs(t.base, t.impuesto, t.tipo_factor, t.tasa_o_cuota, t.importe))
    return root


def _tax_attrs(base, impuesto, factor, rate, importe) -> dict[str, str]:
    a = {"Base": fmt(base), "Impuesto": impuesto, "TipoFactor": factor}
    if rate is not None:
        a["TasaOCuota"] = fmt_rate(rate)
    if importe is not None:
        a["Importe"] = fmt(importe)
    return a


def to_bytes(root: etree._Element) -> bytes:
    """UTF-8 with declaration: the attribute ``Año`` is not ASCII (RULES.md §3.2)."""
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")
