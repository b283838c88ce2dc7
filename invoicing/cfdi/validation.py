"""Business rules SAT (or the PAC) applies that can be checked offline (RULES.md §7), before sealing.

``validate(comprobante)`` returns a list of ValidationIssue (code, path, Spanish message, severity); the
document may be sealed only when no issue has severity "error". Codes are SAT's CFDI40xxx where one
exists, otherwise a short descriptive code.
"""

from __future__ import annotations

import dataclasses
import re
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from . import catalogs as cat
from . import document as d
from .errors import WARNING, ValidationIssue
from .money import ZERO, decimals_of, fmt, importe_limits, round_money, tax_limits
from .receptor import XML_PATHS as RECEPTOR_XML_PATHS
from .receptor import receptor_issues, regimen_capital_of
from .resources import big_catalog
from .rfc import is_generic, is_persona_moral, rfc_issues

FECHA_PATTERN = re.compile(r"^20[1-9][0-9]-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]$")
CP_PATTERN = re.compile(r"^[0-9]{5}$")
UUID_PATTERN = re.compile(r"^[a-fA-F0-9]{8}-[a-fA-F0-9]{4}-[a-fA-F0-9]{4}-[a-fA-F0-9]{4}-[a-fA-F0-9]{12}$")
GLOBAL_CLAVE = "01010101"


class _Report(list):
    def add(self, code: str, path: str, message: str, severity: str = "error") -> None:
        self.append(ValidationIssue(code, path, message, severity))


def validate(
    c: d.Comprobante,
    *,
    now: datetime | None = None,
    tz: str = "America/Mexico_City",
    csd=None,
    tasas: cat.TasasOCuotas | None = None,
    tipo_cambio_referencia: Decimal | None = None,
    iva_frontera: bool | None = None,
) -> list[ValidationIssue]:
    """All offline rules for a CFDI 4.0 ingreso/egreso. ``csd`` (a loaded Csd or CertificateInfo) adds the
    certificate checks; ``now`` (aware, the stamping time) with ``tz`` (zone of LugarExpedicion) adds the
    PAC's "within 72 hours, not in the future" check. ``tasas`` is c_TasaOCuota (SAT's current one by
    default); ``tipo_cambio_referencia`` (e.g. the DOF FIX rate of the day) adds c_Moneda's variation check;
    ``iva_frontera`` False refuses IVA 8 % (LugarExpedicion outside the border region, or an issuer that does
    not apply the stimulus)."""
    r = _Report()
    places = cat.currency_places(c.moneda)
    _header(c, r, places)
    _currency(c, r, tipo_cambio_referencia)
    _global(c, r)
    _emisor(c, r)
    _receptor(c, r)
    _relacionados(c, r)
    tasas = tasas or cat.SAT_TASAS_O_CUOTAS
    for i, k in enumerate(c.conceptos):
        _concepto(c, k, f"Conceptos[{i}]", r, tasas)
    if iva_frontera is False:
        _border_vat(c, r)
    _totals(c, r, places)
    if csd is not None:
        _certificate(c, csd, r)
    if now is not None:
        _timing(c, now, tz, r)
    return list(r)


def _header(c: d.Comprobante, r: _Report, places: int) -> None:
    if not FECHA_PATTERN.match(c.fecha):
        r.add("CFDI40101", "Fecha", "La fecha de emisión debe tener la forma AAAA-MM-DDThh:mm:ss (hora local).")
    if c.tipo_de_comprobante not in ("I", "E"):
        r.add("CFDI40124", "TipoDeComprobante", "Solo se emiten comprobantes de ingreso (I) o egreso (E).")
    if c.forma_pago is None:
        r.add("CFDI40104", "FormaPago", "Falta la forma de pago.")
    elif c.forma_pago not in cat.FORMAS_PAGO:
        r.add("CFDI40104", "FormaPago", f"La forma de pago «{c.forma_pago}» no existe en el catálogo del SAT.")
    if c.metodo_pago not in cat.METODOS_PAGO:
        r.add("CFDI40125", "MetodoPago", "El método de pago debe ser PUE (una exhibición) o PPD (diferido).")
    if c.metodo_pago == "PPD" and c.forma_pago != "99":
        r.add("CFDI40105", "FormaPago", "Si el pago es diferido (PPD), la forma de pago debe ser 99 «Por definir».")
    if c.metodo_pago == "PUE" and c.forma_pago == "99":
        r.add(
            "FORMAPAGO_99_PUE",
            "FormaPago",
            "Una venta pagada (PUE) debe indicar la forma en que se pagó, no 99 «Por definir».",
        )
    if c.exportacion != "01":
        r.add("CFDI40122", "Exportacion", "Las ventas al público se emiten con Exportación 01 «No aplica».")
    if not CP_PATTERN.match(c.lugar_expedicion or ""):
        r.add("CFDI40126", "LugarExpedicion", "El lugar de expedición debe ser el código postal de 5 dígitos de la sucursal.")
    elif c.lugar_expedicion not in big_catalog("c_CodigoPostal"):
        r.add("CFDI40126", "LugarExpedicion",
              f"El código postal de expedición {c.lugar_expedicion} no existe en el catálogo del SAT: revisa el de la sucursal.")
    if c.confirmacion:
        r.add("CFDI40127", "Confirmacion", "La clave de confirmación solo se usa con importes o tipos de cambio fuera de rango.")
    if not c.conceptos:
        r.add("CFDI40162", "Conceptos", "El comprobante debe tener al menos un concepto.")


def _currency(c: d.Comprobante, r: _Report, reference: Decimal | None) -> None:
    """Moneda and TipoCambio (Anexo 20; CFDI40113–40118)."""
    if cat.moneda(c.moneda) is None:
        r.add("CFDI40113", "Moneda", f"La moneda «{c.moneda}» no existe en el catálogo c_Moneda del SAT.")
        return
    tc = c.tipo_cambio
    if c.moneda == "MXN":
        if tc is not None and tc != Decimal(1):
            r.add("CFDI40114", "TipoCambio", "Con moneda MXN el tipo de cambio se omite o es 1.")
        return
    if c.moneda == "XXX":
        if tc is not None:
            r.add("CFDI40116", "TipoCambio", "Con moneda XXX no se registra tipo de cambio.")
        return
    if tc is None:
        r.add("CFDI40115", "TipoCambio", f"Con moneda {c.moneda} se requiere el tipo de cambio.")
        return
    if not tc.is_finite() or tc < Decimal("0.000001") or decimals_of(tc) > 6 or tc >= Decimal("1e18"):
        r.add("CFDI40117", "TipoCambio", "El tipo de cambio debe ser mayor que cero, con a lo más 6 decimales.")
        return
    if reference is not None and not c.confirmacion:
        lo, hi = cat.tipo_cambio_range(reference)
        if not lo <= tc <= hi:
            r.add(
                "CFDI40118",
                "TipoCambio",
                f"El tipo de cambio {fmt(tc)} se aleja más de {cat.MONEDA_VARIACION_PCT} % del de referencia "
                f"({fmt(reference)}): el SAT lo rechaza sin clave de confirmación.",
            )


def _border_vat(c: d.Comprobante, r: _Report) -> None:
    for i, k in enumerate(c.conceptos):
        for j, t in enumerate(k.traslados):
            if t.impuesto == "002" and t.tipo_factor == "Tasa" and t.tasa_o_cuota == cat.IVA_FRONTERA:
                r.add(
                    "IVA_FRONTERA",
                    f"Conceptos[{i}].Traslados[{j}].TasaOCuota",
                    "El IVA al 8 % solo aplica a quien tiene el estímulo fiscal de la región fronteriza y expide "
                    "desde un código postal de esa región.",
                )


def _global(c: d.Comprobante, r: _Report) -> None:
    rec = c.receptor
    publico = rec.rfc == cat.RFC_PUBLICO_GENERAL and rec.nombre == cat.NOMBRE_PUBLICO_GENERAL
    g = c.informacion_global
    if g is None:
        if publico and c.tipo_de_comprobante == "I":
            r.add(
                "CFDI40130",
                "InformacionGlobal",
                "Una factura a «PUBLICO EN GENERAL» es una factura global y requiere la información global "
                "(periodicidad, meses y año).",
            )
        return
    if not publico:
        r.add(
            "CFDI40130",
            "Receptor.Rfc",
            "La factura global debe emitirse al RFC XAXX010101000 con nombre «PUBLICO EN GENERAL».",
        )
    if g.periodicidad not in cat.PERIODICIDADES:
        r.add("CFDI40131", "InformacionGlobal.Periodicidad", "La periodicidad no existe en el catálogo del SAT.")
    elif g.periodicidad == "05" and c.emisor.regimen_fiscal != "621":
        r.add(
            "CFDI40132",
            "InformacionGlobal.Periodicidad",
            "La periodicidad bimestral (05) solo la pueden usar emisores del Régimen de Incorporación Fiscal (621).",
        )
    if g.meses not in cat.MESES:
        r.add("CFDI40133", "InformacionGlobal.Meses", "El mes no existe en el catálogo del SAT.")
    elif g.periodicidad == "05" and not "13" <= g.meses <= "18":
        r.add("CFDI40135", "InformacionGlobal.Meses", "Con periodicidad bimestral, el periodo debe ser un bimestre (13 a 18).")
    elif g.periodicidad != "05" and not "01" <= g.meses <= "12":
        r.add("CFDI40134", "InformacionGlobal.Meses", "Con periodicidad distinta de bimestral, el periodo debe ser un mes (01 a 12).")
    year = c.fecha[:4]
    if not (g.anio.isascii() and g.anio.isdigit()) or (year.isascii() and year.isdigit() and int(g.anio) not in (int(year), int(year) - 1)):
        r.add(
            "CFDI40136",
            "InformacionGlobal.Año",
            "El año de la factura global debe ser el año de emisión o el inmediato anterior.",
        )
    if c.metodo_pago != "PUE":
        r.add("GLOBAL_METODO_PAGO", "MetodoPago", "La factura global siempre es de pago en una sola exhibición (PUE).")
    if c.condiciones_de_pago:
        r.add("GLOBAL_CONDICIONES", "CondicionesDePago", "La factura global no lleva condiciones de pago.")
    for i, k in enumerate(c.conceptos):
        p = f"Conceptos[{i}]"
        if (
            k.clave_prod_serv != GLOBAL_CLAVE
            or k.clave_unidad != "ACT"
            or k.unidad
            or k.descripcion != "Venta"
            or k.cantidad != 1
        ):
            r.add(
                "GLOBAL_CONCEPTO",
                p,
                "En la factura global cada ticket va como un concepto 01010101, cantidad 1, unidad ACT y "
                "descripción «Venta».",
            )
        if not k.no_identificacion:
            r.add("GLOBAL_TICKET", f"{p}.NoIdentificacion", "Cada concepto de la factura global lleva el número de ticket.")
        if k.retenciones:
            r.add("GLOBAL_RETENCIONES", f"{p}.Impuestos", "La factura global no admite retenciones.")


def _emisor(c: d.Comprobante, r: _Report) -> None:
    e = c.emisor
    if is_generic(e.rfc):
        r.add("CFDI40137", "Emisor.Rfc", "El emisor no puede usar un RFC genérico.")
    for issue in rfc_issues(e.rfc, "Emisor.Rfc", who="el RFC del emisor"):
        r.append(issue)
    reg = cat.REGIMENES_FISCALES.get(e.regimen_fiscal)
    if reg is None:
        r.add("CFDI40140", "Emisor.RegimenFiscal", f"El régimen fiscal «{e.regimen_fiscal}» no existe en el catálogo del SAT.")
    elif reg not in cat.regimenes_for(e.rfc):
        persona = "moral" if is_persona_moral(e.rfc) else "física"
        r.add(
            "CFDI40141",
            "Emisor.RegimenFiscal",
            f"El régimen {reg.code} «{reg.description}» no corresponde a una persona {persona}.",
        )
    if not e.nombre:
        r.add("CFDI40138", "Emisor.Nombre", "Falta el nombre o razón social del emisor.")
    elif regimen_capital_of(e.nombre):
        r.add(
            "CFDI40139",
            "Emisor.Nombre",
            "El nombre del emisor se escribe como en la Constancia de Situación Fiscal, sin el régimen "
            "de capital (por ejemplo, sin «S.A. DE C.V.»).",
            WARNING,
        )


def _receptor(c: d.Comprobante, r: _Report) -> None:
    # The same rules (and codes, and messages) the services applied when the receptor's data was taken.
    rec = c.receptor
    issues = receptor_issues(rfc=rec.rfc, name=rec.nombre, tax_regime=rec.regimen_fiscal,
                             postal_code=rec.domicilio_fiscal or "", cfdi_use=rec.uso_cfdi, generic_allowed=True,
                             lugar_expedicion=c.lugar_expedicion, foreign_country=rec.residencia_fiscal or "",
                             foreign_tax_id=rec.num_reg_id_trib or "")
    r.extend(dataclasses.replace(i, path=RECEPTOR_XML_PATHS[i.path]) for i in issues)


def _relacionados(c: d.Comprobante, r: _Report) -> None:
    for i, rel in enumerate(c.relacionados):
        p = f"CfdiRelacionados[{i}]"
        allowed = cat.TIPOS_RELACION_POR_COMPROBANTE.get(rel.tipo_relacion)
        if allowed is None:
            r.add("CFDI40128", f"{p}.TipoRelacion", "El tipo de relación no existe en el catálogo del SAT.")
        elif c.tipo_de_comprobante not in allowed:
            r.add(
                "CFDI40128",
                f"{p}.TipoRelacion",
                f"El tipo de relación {rel.tipo_relacion} «{cat.TIPOS_RELACION[rel.tipo_relacion]}» no se "
                f"permite en un comprobante de {cat.TIPOS_COMPROBANTE.get(c.tipo_de_comprobante, '?').lower()}.",
            )
        if not rel.uuids:
            r.add("CFDI40129", p, "Indica el folio fiscal (UUID) del CFDI relacionado.")
        for j, uuid in enumerate(rel.uuids):
            if not UUID_PATTERN.match(uuid):
                r.add("CFDI40129", f"{p}.CfdiRelacionado[{j}].UUID", f"«{uuid}» no es un folio fiscal (UUID) válido.")
    if c.tipo_de_comprobante == "E" and not c.relacionados:
        r.add(
            "EGRESO_SIN_RELACION",
            "CfdiRelacionados",
            "La nota de crédito debe relacionar la factura que corrige (tipo de relación 01).",
            WARNING,
        )


def _concepto(c: d.Comprobante, k: d.Concepto, p: str, r: _Report, tasas: cat.TasasOCuotas) -> None:
    if k.clave_prod_serv not in big_catalog("c_ClaveProdServ"):
        r.add("CFDI40162", f"{p}.ClaveProdServ",
              f"La clave de producto o servicio «{k.clave_prod_serv}» de «{k.descripcion}» no existe en el catálogo del SAT.")
    if k.clave_unidad not in big_catalog("c_ClaveUnidad"):
        r.add("CFDI40165", f"{p}.ClaveUnidad",
              f"La clave de unidad «{k.clave_unidad}» de «{k.descripcion}» no existe en el catálogo del SAT.")
    if k.cantidad <= ZERO:
        r.add("CFDI40163", f"{p}.Cantidad", "La cantidad debe ser mayor que cero.")
    if k.valor_unitario <= ZERO:
        r.add("CFDI40166", f"{p}.ValorUnitario", f"El valor unitario de «{k.descripcion}» debe ser mayor que cero.")
    elif k.cantidad > ZERO:
        lo, hi = importe_limits(k.cantidad, k.valor_unitario, min(decimals_of(k.importe), 6))
        if not lo <= k.importe <= hi:
            r.add(
                "CFDI40167",
                f"{p}.Importe",
                f"El importe de «{k.descripcion}» ({fmt(k.importe)}) no es cantidad × valor unitario "
                f"(debe estar entre {fmt(lo)} y {fmt(hi)}).",
            )
    if k.descuento is not None:
        if decimals_of(k.descuento) > decimals_of(k.importe):
            r.add("CFDI40168", f"{p}.Descuento", "El descuento tiene más decimales que el importe del concepto.")
        if k.descuento > k.importe:
            r.add("CFDI40169", f"{p}.Descuento", f"El descuento de «{k.descripcion}» es mayor que su importe.")
    if k.objeto_imp not in cat.OBJETOS_IMPUESTO:
        r.add("CFDI40170", f"{p}.ObjetoImp", "La clave de objeto de impuesto no existe en el catálogo del SAT.")
    has_taxes = bool(k.traslados or k.retenciones)
    if k.objeto_imp == "02" and not has_taxes:
        r.add("CFDI40171", f"{p}.Impuestos", "Un concepto objeto de impuesto (02) debe desglosar sus impuestos.")
    if k.objeto_imp in ("01", "03", "04") and has_taxes:
        r.add("CFDI40172", f"{p}.Impuestos", f"Un concepto con ObjetoImp {k.objeto_imp} no debe desglosar impuestos.")
    seen = set()
    for j, t in enumerate(k.traslados):
        tp = f"{p}.Traslados[{j}]"
        key = (t.impuesto, t.tipo_factor, t.tasa_o_cuota)
        if key in seen:
            r.add("CFDI40176", tp, "El mismo impuesto con la misma tasa aparece dos veces en el concepto.")
        seen.add(key)
        _tax(t.base, t.impuesto, t.tipo_factor, t.tasa_o_cuota, t.importe, tp, r, tasas, traslado=True)
    for j, t in enumerate(k.retenciones):
        _tax(t.base, t.impuesto, t.tipo_factor, t.tasa_o_cuota, t.importe, f"{p}.Retenciones[{j}]", r, tasas,
             traslado=False)


def _tax(base, impuesto, factor, rate, importe, p, r: _Report, tasas: cat.TasasOCuotas, *, traslado: bool) -> None:
    if base <= ZERO:
        r.add("CFDI40174", f"{p}.Base", "La base del impuesto debe ser mayor que cero.")
    if impuesto not in cat.IMPUESTOS or (traslado and impuesto == "001"):
        r.add("CFDI40175", f"{p}.Impuesto", "El impuesto debe ser IVA (002) o IEPS (003).")
    if factor not in cat.TIPOS_FACTOR or (not traslado and factor == "Exento"):
        r.add("CFDI40177", f"{p}.TipoFactor", "El tipo de factor no es válido para este impuesto.")
        return
    if factor == "Exento":
        if rate is not None or importe is not None:
            r.add("CFDI40178", p, "Un impuesto exento no lleva tasa ni importe.")
        return
    if rate is None or importe is None:
        r.add("CFDI40178", p, "Falta la tasa o cuota, o el importe del impuesto.")
        return
    if not tasas.allows(impuesto, factor, rate, traslado=traslado):
        r.add(
            "CFDI40179" if traslado else "RETENCION_TASA",
            f"{p}.TasaOCuota",
            f"La {factor.lower()} {fmt(rate)} no está en el catálogo c_TasaOCuota del SAT para el impuesto "
            f"{cat.IMPUESTOS.get(impuesto, impuesto)} (admite {tasas.described(impuesto, factor, traslado=traslado)}).",
        )
    lo, hi = tax_limits(base, rate, min(decimals_of(importe), 6))
    if not lo <= importe <= hi:
        r.add(
            "CFDI40180" if traslado else "CFDI40190",
            f"{p}.Importe",
            f"El importe del impuesto ({fmt(importe)}) no es base × tasa (debe estar entre {fmt(lo)} y {fmt(hi)}).",
        )


def _totals(c: d.Comprobante, r: _Report, places: int) -> None:
    if decimals_of(c.subtotal) > places:
        r.add("CFDI40107", "SubTotal", f"El subtotal admite a lo más {places} decimales.")
    subtotal = round_money(sum((k.importe for k in c.conceptos), ZERO), places)
    if c.subtotal != subtotal:
        r.add("CFDI40108", "SubTotal", f"El subtotal ({fmt(c.subtotal)}) no es la suma de los importes ({fmt(subtotal)}).")
    discounts = [k.descuento for k in c.conceptos if k.descuento is not None]
    if discounts:
        expected = round_money(sum(discounts, ZERO), places)
        if c.descuento is None or c.descuento != expected:
            r.add("CFDI40112", "Descuento", f"El descuento debe ser la suma de los descuentos de los conceptos ({fmt(expected)}).")
    elif c.descuento is not None and c.descuento != ZERO:
        r.add("CFDI40112", "Descuento", "Hay descuento en el comprobante pero ningún concepto tiene descuento.")
    if c.descuento is not None and c.descuento > c.subtotal:
        r.add("CFDI40110", "Descuento", "El descuento no puede ser mayor que el subtotal.")

    groups: dict[tuple, list[Decimal]] = {}
    ret: dict[str, Decimal] = {}
    for k in c.conceptos:
        for t in k.traslados:
            acc = groups.setdefault((t.impuesto, t.tipo_factor, t.tasa_o_cuota), [ZERO, ZERO])
            acc[0] += t.base
            acc[1] += t.importe or ZERO
        for t in k.retenciones:
            ret[t.impuesto] = ret.get(t.impuesto, ZERO) + t.importe
    imp = c.impuestos
    transferred = withheld = ZERO
    if imp is None:
        if groups or ret:
            r.add("CFDI40201", "Impuestos", "Faltan los totales de impuestos del comprobante.")
    else:
        seen = set()
        for j, t in enumerate(imp.traslados):
            p = f"Impuestos.Traslados[{j}]"
            key = (t.impuesto, t.tipo_factor, t.tasa_o_cuota)
            if key in seen:
                r.add("CFDI40218", p, "El mismo impuesto, tipo de factor y tasa aparece dos veces en el resumen.")
            seen.add(key)
            if key not in groups:
                r.add("CFDI40215", p, "El resumen tiene un impuesto que ningún concepto traslada.")
                continue
            base, amount = groups[key]
            if decimals_of(t.base) > places or t.base != round_money(base, places):
                r.add("CFDI40215", f"{p}.Base", f"La base del resumen debe ser la suma de las bases ({fmt(round_money(base, places))}).")
            if t.tipo_factor != "Exento":
                if t.importe is None or t.importe != round_money(amount, places):
                    r.add("CFDI40221", f"{p}.Importe", f"El importe del resumen debe ser la suma de los importes ({fmt(round_money(amount, places))}).")
                else:
                    transferred += t.importe
        for key in groups.keys() - seen:
            r.add("CFDI40215", "Impuestos.Traslados", f"Falta en el resumen el impuesto {key[0]} {key[1]} {key[2] or ''}.".replace("  ", " "))
        has_amounts = any(t.tipo_factor != "Exento" for t in imp.traslados)
        if has_amounts and imp.total_traslados != transferred:
            r.add("CFDI40205", "Impuestos.TotalImpuestosTrasladados", f"El total de impuestos trasladados debe ser {fmt(transferred)}.")
        if not has_amounts and imp.total_traslados is not None:
            r.add("CFDI40205", "Impuestos.TotalImpuestosTrasladados", "Con conceptos solo exentos no se registra el total de impuestos trasladados.")
        for j, x in enumerate(imp.retenciones):
            expected = round_money(ret.get(x.impuesto, ZERO), places)
            if x.importe != expected:
                r.add("CFDI40211", f"Impuestos.Retenciones[{j}].Importe", f"La retención del resumen debe ser {fmt(expected)}.")
            withheld += x.importe
        if imp.retenciones and imp.total_retenidos != withheld:
            r.add("CFDI40203", "Impuestos.TotalImpuestosRetenidos", f"El total de impuestos retenidos debe ser {fmt(withheld)}.")
        transferred = imp.total_traslados or ZERO
        withheld = imp.total_retenidos or ZERO
    total = c.subtotal - (c.descuento or ZERO) + transferred - withheld
    if c.total != total or decimals_of(c.total) > places:
        r.add("CFDI40119", "Total", f"El total ({fmt(c.total)}) debe ser subtotal − descuento + impuestos ({fmt(total)}).")


def _certificate(c: d.Comprobante, csd, r: _Report) -> None:
    info = getattr(csd, "info", csd)
    if c.emisor.rfc != info.rfc:
        r.add("CFDI40139", "Emisor.Rfc", f"El RFC del emisor ({c.emisor.rfc}) no es el del certificado ({info.rfc}).")
    if c.no_certificado and c.no_certificado != info.no_certificado:
        r.add("CFDI40106", "NoCertificado", "El número de certificado no corresponde al certificado incluido.")
    if FECHA_PATTERN.match(c.fecha):
        # Fecha is local time; a day of margin either side covers every Mexican zone against UTC.
        fecha = datetime.fromisoformat(c.fecha).replace(tzinfo=info.valid_to.tzinfo)
        if fecha > info.valid_to + timedelta(hours=12) or fecha < info.valid_from - timedelta(hours=12):
            r.add("305", "Fecha", "La fecha del comprobante está fuera de la vigencia del certificado (CSD).")


def _timing(c: d.Comprobante, now: datetime, tz: str, r: _Report) -> None:
    if not FECHA_PATTERN.match(c.fecha):
        return
    fecha = datetime.fromisoformat(c.fecha)
    local_now = now.astimezone(ZoneInfo(tz)).replace(tzinfo=None)
    if fecha > local_now + timedelta(minutes=5):
        r.add("401", "Fecha", "La fecha de emisión no puede estar en el futuro.")
    elif fecha < local_now - timedelta(hours=72):
        r.add("401", "Fecha", "Han pasado más de 72 horas desde la fecha de emisión: el PAC no lo timbraría.")
