"""A ticket sent as a CFDI XML the POS built (3.3 or 4.0, Receptor optional): its lines and totals.

Read with the engine's safe parser (no DTD, no entities, no network, size cap). Conceptos are net of taxes;
each becomes a line whose tax-inclusive amount is exactly Importe − Descuento + its Traslados, so the
ticket's total is the CFDI's Total to the cent.
"""

from __future__ import annotations

import datetime as dt

from lxml import etree

from invoicing.cfdi.errors import CfdiError
from invoicing.cfdi.parser import ParseError, comprobante_from_element, parse_xml
from invoicing.cfdi.resources import CFDI33_NS, CFDI_NS, TFD_NS
from tickets.ingest import normalize as n


def _read(data: bytes):
    """The engine's safe parser; a POS's CFDI may come without Receptor, which the engine requires."""
    root = parse_xml(data, max_bytes=n.MAX_DOCUMENT_BYTES)
    qname = etree.QName(root)
    if qname.namespace not in (CFDI_NS, CFDI33_NS) or qname.localname != "Comprobante":
        raise ParseError("El XML no es un CFDI (se esperaba cfdi:Comprobante versión 4.0 o 3.3).")
    q = f"{{{qname.namespace}}}"
    if root.find(q + "Receptor") is None:
        emisor = root.find(q + "Emisor")
        if emisor is None:
            raise ParseError("El CFDI no tiene Emisor.")
        emisor.addnext(etree.Element(q + "Receptor"))
    stamped = root.find(f"{q}Complemento/{{{TFD_NS}}}TimbreFiscalDigital") is not None
    return comprobante_from_element(root), qname.namespace, stamped


def lines_from_document(raw: dict, ctx, errs):
    data = n.decode_document(raw.get("document"), errs)
    if data is None:
        return None, []
    try:
        c, namespace, stamped = _read(data)
    except CfdiError as exc:
        errs.add("document", str(exc))
        return None, []
    expected = {CFDI_NS: "4.0", CFDI33_NS: "3.3"}[namespace]
    if c.version != expected:
        errs.add("document", f"Versión de CFDI no admitida: «{c.version}» (se aceptan 3.3 y 4.0).")
    if c.tipo_de_comprobante != "I":
        errs.add("document", "El CFDI del ticket debe ser de ingreso (TipoDeComprobante «I»).")
    if stamped:
        errs.add("document", "El CFDI ya está timbrado: envía el ticket, no una factura emitida.")

    number = raw.get("number") or "".join(x for x in (c.serie, c.folio) if x)
    number = n._text(number, "number", errs, max_len=64)
    branch_code = raw.get("branch")
    if branch_code is None:
        by_postal_code = [code for code, b in ctx.branches.items() if b.postal_code == c.lugar_expedicion]
        if len(by_postal_code) == 1:
            branch_code = by_postal_code[0]
        elif len(ctx.branches) == 1:
            branch_code = next(iter(ctx.branches))
    branch_code = n._text(branch_code, "branch", errs, max_len=40)
    if branch_code and branch_code not in ctx.branches:
        errs.add("branch", f"La sucursal «{branch_code}» no existe en este comercio.")
    sold_at = raw.get("sold_at")
    if sold_at is None:
        try:
            sold_at = dt.datetime.strptime(c.fecha, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=ctx.tz)
        except ValueError:
            errs.add("document", f"Fecha del CFDI inválida: «{c.fecha[:30]}».")
            sold_at = None
    else:
        sold_at = n.parse_datetime(sold_at, "sold_at", errs)
    currency, rate = n._currency(c.moneda or "MXN", c.tipo_cambio, errs)
    payment_form = raw.get("payment_form") or c.forma_pago or "01"
    if payment_form not in n.catalogs.FORMAS_PAGO or payment_form == "99":
        errs.add("payment_form", "Forma de pago del catálogo c_FormaPago; un ticket pagado no usa 99.")

    pairs = []
    for i, k in enumerate(c.conceptos):
        p = f"document.conceptos[{i}]"
        if k.retenciones:
            errs.add(p, "Los tickets no admiten retenciones.")
            continue
        line_errs = n._Errors()
        taxes = n._taxes(
            [{"tax": t.impuesto, "factor": t.tipo_factor, "rate": t.tasa_o_cuota} for t in k.traslados],
            f"{p}.traslados", line_errs,
        )
        quantity = n._decimal(k.cantidad, f"{p}.cantidad", line_errs, places=6, positive=True)
        objeto = k.objeto_imp if k.objeto_imp in n.TAX_OBJECTS else None
        if objeto is None:
            line_errs.add(f"{p}.objeto_imp", f"ObjetoImp «{k.objeto_imp}» no admitido en tickets.")
        description = n._text(k.descripcion, f"{p}.descripcion", line_errs, max_len=1000)
        if not n._PRODUCT.match(k.clave_prod_serv or "") or not n._UNIT.match(k.clave_unidad or ""):
            line_errs.add(p, "ClaveProdServ (8 dígitos) o ClaveUnidad inválidas.")
        if line_errs or taxes is None:
            for key, msgs in line_errs.items():
                errs.setdefault(key, []).extend(msgs)
            continue
        engine_taxes, stored = taxes
        discount_net = k.descuento or n.ZERO
        charged = k.importe - discount_net + sum((t.importe or n.ZERO for t in k.traslados), n.ZERO)
        factor, _ = n._gross_factor(engine_taxes if objeto == "02" else ())
        discount_gross = n.round_money(discount_net * factor)
        pairs.append(n._draft_line(
            k.clave_prod_serv, k.clave_unidad, k.no_identificacion or "", description, quantity,
            k.valor_unitario, False, objeto, engine_taxes if objeto == "02" else (), stored if objeto == "02" else [],
            n.round_money(charged + discount_gross), discount_gross,
        ))
    if not c.conceptos:
        errs.add("document", "El CFDI no tiene conceptos.")
    total = c.total
    if total is not None and total != n.round_money(total):
        errs.add("document", "El Total del CFDI tiene más de 2 decimales.")
    return (number, branch_code, sold_at, currency, rate, payment_form, n.ZERO, total, data), pairs
