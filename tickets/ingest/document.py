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
    h = n.Header(number, None, None, None, None, None, n.ZERO, None, data)
    h.branch_code = _branch(raw, c, ctx, errs, h.warnings)
    _emisor_notice(c, ctx, h.warnings)
    sold_at = raw.get("sold_at")
    if sold_at is None:
        try:
            # Fecha is the local time of the document's LugarExpedicion: the branch's zone.
            sold_at = dt.datetime.strptime(c.fecha, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=ctx.branch_tz(h.branch_code))
        except ValueError:
            errs.add("document", f"Fecha del CFDI inválida: «{c.fecha[:30]}».")
            sold_at = None
    else:
        sold_at = n.parse_datetime(sold_at, "sold_at", errs)
    h.sold_at = sold_at
    h.currency, h.rate = n._currency(raw.get("currency") or c.moneda or "MXN",
                                     raw.get("exchange_rate", c.tipo_cambio), errs)
    payment_form = raw.get("payment_form") or c.forma_pago or "01"
    if payment_form not in n.catalogs.FORMAS_PAGO or payment_form == "99":
        errs.add("payment_form", "Forma de pago del catálogo c_FormaPago; un ticket pagado no usa 99.")
    h.payment_form = payment_form

    pairs = []
    for i, k in enumerate(c.conceptos):
        p = f"document.conceptos[{i}]"
        if k.retenciones:
            errs.add(p, "Los tickets no admiten retenciones.")
            continue
        line_errs = n._Errors()
        taxes = n._taxes(
            [{"tax": t.impuesto, "factor": t.tipo_factor, "rate": t.tasa_o_cuota} for t in k.traslados],
            f"{p}.traslados", line_errs, ctx.tasas,
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
        h.tax_paths.append(f"{p}.traslados")
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
    h.total = total
    return h, pairs


def _branch(raw: dict, c, ctx, errs, warnings: list[str]) -> str | None:
    """The ticket's branch: the one it names; else the one whose postal code is the document's
    LugarExpedicion; else the API key's branch; else a per-ticket error."""
    code = raw.get("branch")
    if code is not None and code != "":
        code = n._text(code, "branch", errs, max_len=40)
        if code and code not in ctx.branches:
            errs.add("branch", f"La sucursal «{code}» no existe en este comercio.")
        return code
    place = c.lugar_expedicion or ""
    by_postal_code = sorted(b for b, branch in ctx.branches.items() if branch.postal_code == place)
    if len(by_postal_code) == 1:
        return by_postal_code[0]
    if ctx.default_branch is not None and (not by_postal_code or ctx.default_branch in by_postal_code):
        branch = ctx.branches[ctx.default_branch]
        if place != branch.postal_code:
            warnings.append(f"El CFDI trae LugarExpedicion «{n._shown(place, 10)}»; se registró en la sucursal "
                            f"{branch.code} de la llave de API y se facturará con su código postal "
                            f"{branch.postal_code}.")
        return ctx.default_branch
    if by_postal_code:
        errs.add("branch", f"Varias sucursales tienen el código postal {place} ({', '.join(by_postal_code)}): "
                           "indica cuál en «branch».")
    else:
        errs.add("branch", n.no_branch_message(ctx, f"; ninguna sucursal tiene el código postal "
                                                   f"«{n._shown(place, 10)}» del CFDI (LugarExpedicion)"))
    return None


def _emisor_notice(c, ctx, warnings: list[str]) -> None:
    """The Emisor of the invoice is always the merchant's; a POS's CFDI may carry a placeholder."""
    m = ctx.merchant
    e = c.emisor
    rfc = (e.rfc or "").strip().upper() if e else ""
    if rfc != m.rfc:
        warnings.append(f"El Emisor del CFDI ({n._shown(rfc, 13) or 'vacío'}) no es el del comercio: se ignora y la "
                        f"factura se emitirá con el RFC {m.rfc} ({m.legal_name}).")
