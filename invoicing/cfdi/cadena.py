"""Cadena original: the official SAT XSLT, and a fast path proven equal to it in the tests.

The XSLT costs ~70 µs for a one-line document but grows with every Concepto; the fast path writes the same
string straight from the Comprobante data (same field order and optional-field rules as
cadenaoriginal_4_0.xslt, RULES.md §3.1). Documents with nodes the fast path does not know (complementos,
ACuentaTerceros...) only come from the parser, and those always go through the XSLT.
"""

from __future__ import annotations

import re

from lxml import etree

from . import document as d
from .money import fmt, fmt_rate
from .resources import cadena_xslt, tfd_cadena_xslt

_WS = re.compile(r"[ \t\r\n]+")


def cadena_original(root: etree._Element) -> str:
    """Run SAT's cadenaoriginal_4_0.xslt over the document (any CFDI 4.0, any complement it knows)."""
    return str(cadena_xslt()(etree.ElementTree(root)))


def tfd_cadena_original(tfd: etree._Element) -> str:
    """Cadena original del complemento de certificación digital del SAT (TFD 1.1)."""
    return str(tfd_cadena_xslt()(etree.ElementTree(tfd)))


def _n(value: str) -> str:
    # XPath normalize-space(): only XML whitespace, not Python's wider notion of it.
    return _WS.sub(" ", value).strip(" \t\r\n")


def fast_cadena(c: d.Comprobante) -> str:
    """Same output as the XSLT for documents made by our builder (no complementos)."""
    p: list[str] = [c.version]
    add = p.append

    def opt(v):
        # Same test as render(): the attribute exists when the value is not empty.
        if v is not None and v != "":
            add(_n(v))

    opt(c.serie)
    opt(c.folio)
    add(c.fecha)
    opt(c.forma_pago)
    add(c.no_certificado)
    opt(c.condiciones_de_pago)
    add(fmt(c.subtotal))
    if c.descuento is not None:
        add(fmt(c.descuento))
    add(c.moneda)
    if c.tipo_cambio is not None:
        add(fmt(c.tipo_cambio))
    add(fmt(c.total))
    add(c.tipo_de_comprobante)
    add(c.exportacion)
    opt(c.metodo_pago)
    add(c.lugar_expedicion)
    opt(c.confirmacion)
    g = c.informacion_global
    if g is not None:
        p += (g.periodicidad, g.meses, g.anio)
    for rel in c.relacionados:
        add(rel.tipo_relacion)
        p += rel.uuids
    e = c.emisor
    p += (e.rfc, _n(e.nombre), e.regimen_fiscal)
    opt(e.fac_atr_adquirente)
    r = c.receptor
    p += (r.rfc, _n(r.nombre), r.domicilio_fiscal)
    opt(r.residencia_fiscal)
    opt(r.num_reg_id_trib)
    p += (r.regimen_fiscal, r.uso_cfdi)
    for k in c.conceptos:
        add(k.clave_prod_serv)
        opt(k.no_identificacion)
        add(fmt(k.cantidad))
        add(k.clave_unidad)
        opt(k.unidad)
        add(_n(k.descripcion))
        add(fmt(k.valor_unitario))
        add(fmt(k.importe))
        if k.descuento is not None:
            add(fmt(k.descuento))
        add(k.objeto_imp)
        for t in k.traslados:
            p += (fmt(t.base), t.impuesto, t.tipo_factor)
            if t.tasa_o_cuota is not None:
                add(fmt_rate(t.tasa_o_cuota))
            if t.importe is not None:
                add(fmt(t.importe))
        for t in k.retenciones:
            p += (fmt(t.base), t.impuesto, t.tipo_factor, fmt_rate(t.tasa_o_cuota), fmt(t.importe))
    i = c.impuestos
    if i is not None:
        for x in i.retenciones:
            p += (x.impuesto, fmt(x.importe))
        if i.total_retenidos is not None:
            add(fmt(i.total_retenidos))
        for t in i.traslados:
            p += (fmt(t.base), t.impuesto, t.tipo_factor)
            if t.tasa_o_cuota is not None:
                add(fmt_rate(t.tasa_o_cuota))
            if t.importe is not None:
                add(fmt(t.importe))
        if i.total_traslados is not None:
            add(fmt(i.total_traslados))
    return "||" + "|".join(p) + "||"
