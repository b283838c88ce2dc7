"""Builders for the three documents the product issues: nominative ingreso, factura global and egreso.

They return a ``Comprobante`` (data, not XML) whose amounts already satisfy RULES.md §1.4/§1.6; render it
with ``xml.render`` and seal it with ``seal.seal_document``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from . import document as d
from .catalogs import currency_places
from .catalogs import moneda as moneda_row
from .errors import BuildError
from .inputs import IEPS, IVA, Emisor, GlobalInfo, LineTax, Receptor, Related, Ticket
from .linecalc import LineResult, TaxAmount, is_gift, solve, spread_ticket_discount
from .money import ZERO, Amounts, decimals_of, round_money, tax_limits

DEFAULT_TZ = "America/Mexico_City"
_CENTS = Decimal("0.01")
_ONE = Decimal("1")


def fecha_local(moment: datetime, tz: str = DEFAULT_TZ) -> str:
    """Fecha as SAT wants it: local time of LugarExpedicion, no zone, no fractions."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("issued_at must be time-zone aware")
    return moment.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%dT%H:%M:%S")


def _clean(text: str) -> str:
    # The cadena original applies normalize-space(); writing the normalised text keeps XML and cadena equal.
    return " ".join(text.split())


def _emisor(e: Emisor) -> d.Emisor:
    return d.Emisor(e.rfc.strip().upper(), _clean(e.nombre), e.regimen_fiscal, e.fac_atr_adquirente)


def _receptor(r: Receptor) -> d.Receptor:
    return d.Receptor(
        r.rfc.strip().upper(),
        _clean(r.nombre),
        r.domicilio_fiscal,
        r.regimen_fiscal,
        r.uso_cfdi,
        r.residencia_fiscal,
        r.num_reg_id_trib,
    )


def _quantity(q: Decimal, where: str) -> Decimal:
    if q <= ZERO:
        raise BuildError("CFDI40163", where, "La cantidad debe ser mayor que cero.")
    exp = q.as_tuple().exponent
    if isinstance(exp, int) and exp < -6:
        if q != q.quantize(Decimal("0.000001")):
            raise BuildError("CFDI40163", where, "La cantidad admite a lo más 6 decimales.")
        q = q.quantize(Decimal("0.000001"))
    if isinstance(exp, int) and exp > 0:
        q = q.quantize(_ONE)
    return q


def _unit_value(importe: Decimal, quantity: Decimal, where: str) -> Decimal:
    value = importe / quantity
    two = value.quantize(_CENTS)
    value = two if two == value else value.quantize(Decimal("0.000001"))
    if value <= ZERO:
        raise BuildError("CFDI40166", where, "El valor unitario resultante debe ser mayor que cero.")
    return value


def tipo_cambio_for(moneda: str, tipo_cambio: Decimal | None) -> Decimal | None:
    """TipoCambio as CFDI 4.0 wants it: absent for MXN (1 is dropped), required for any other currency,
    never for XXX; at most 6 decimals, greater than zero (CFDI40113–40117)."""
    row = moneda_row(moneda)
    if row is None:
        raise BuildError("CFDI40113", "Moneda", f"La moneda «{moneda}» no existe en el catálogo c_Moneda del SAT.")
    if moneda == "MXN":
        if tipo_cambio is not None and tipo_cambio != _ONE:
            raise BuildError("CFDI40114", "TipoCambio", "Con moneda MXN el tipo de cambio se omite o es 1.")
        return None
    if moneda == "XXX":
        raise BuildError("CFDI40116", "Moneda", "La moneda XXX es solo para comprobantes sin importes.")
    if tipo_cambio is None:
        raise BuildError("CFDI40115", "TipoCambio", f"Con moneda {moneda} se requiere el tipo de cambio.")
    if not tipo_cambio.is_finite() or tipo_cambio <= ZERO or tipo_cambio >= Decimal("1e18"):
        raise BuildError("CFDI40117", "TipoCambio", "El tipo de cambio debe ser un número mayor que cero.")
    if decimals_of(tipo_cambio) > 6:
        exact = tipo_cambio.quantize(Decimal("0.000001"))
        if exact != tipo_cambio:
            raise BuildError("CFDI40117", "TipoCambio", "El tipo de cambio admite a lo más 6 decimales.")
        tipo_cambio = exact
    return tipo_cambio.normalize()  # written without trailing zeros: 17.250000 → 17.25


def _traslados(taxes: list[TaxAmount]) -> list[d.Traslado]:
    out = []
    for t in taxes:
        if t.tax.factor == "Exento":
            out.append(d.Traslado(t.base, t.tax.impuesto, "Exento"))
        else:
            out.append(d.Traslado(t.base, t.tax.impuesto, t.tax.factor, t.tax.rate, t.importe))
    return out


def _summary(conceptos: list[d.Concepto], places: int) -> d.Impuestos | None:
    groups: dict[tuple, list[Decimal]] = {}
    retained: dict[str, Decimal] = {}
    for c in conceptos:
        for t in c.traslados:
            acc = groups.setdefault((t.impuesto, t.tipo_factor, t.tasa_o_cuota), [ZERO, ZERO])
            acc[0] += t.base
            acc[1] += t.importe or ZERO
        for r in c.retenciones:
            retained[r.impuesto] = retained.get(r.impuesto, ZERO) + r.importe
    if not groups and not retained:
        return None
    rows = []
    total_t = ZERO
    has_amounts = False
    for (imp, factor, rate), (base, importe) in groups.items():
        if factor == "Exento":
            rows.append(d.TrasladoResumen(round_money(base, places), imp, factor))
        else:
            has_amounts = True
            amount = round_money(importe, places)
            total_t += amount
            rows.append(d.TrasladoResumen(round_money(base, places), imp, factor, rate, amount))
    ret_rows = [d.RetencionResumen(imp, round_money(v, places)) for imp, v in retained.items()]
    total_r = sum((r.importe for r in ret_rows), ZERO) if ret_rows else None
    return d.Impuestos(rows, ret_rows, total_t if has_amounts else None, total_r)


def _assemble(
    *,
    tipo: str,
    conceptos: list[d.Concepto],
    emisor: Emisor,
    receptor: Receptor,
    issued_at: datetime,
    tz: str,
    lugar_expedicion: str,
    forma_pago: str,
    metodo_pago: str,
    serie: str | None,
    folio: str | None,
    related: Sequence[Related],
    moneda: str,
    tipo_cambio: Decimal | None,
    expected_total: Decimal,
    informacion_global: GlobalInfo | None = None,
) -> d.Comprobante:
    tipo_cambio = tipo_cambio_for(moneda, tipo_cambio)
    places = currency_places(moneda)
    subtotal = round_money(sum((c.importe for c in conceptos), ZERO), places)
    discounts = [c.descuento for c in conceptos if c.descuento is not None]
    descuento = round_money(sum(discounts, ZERO), places) if discounts else None
    impuestos = _summary(conceptos, places)
    transferred = impuestos.total_traslados or ZERO if impuestos else ZERO
    withheld = impuestos.total_retenidos or ZERO if impuestos else ZERO
    total = subtotal - (descuento or ZERO) + transferred - withheld
    Amounts(subtotal, descuento or ZERO, transferred, withheld, total)
    if total != expected_total:
        raise BuildError(
            "CFDI40119",
            "Total",
            f"El total calculado ({total}) no coincide con el total de los tickets ({expected_total}).",
        )
    info = None
    if informacion_global is not None:
        info = d.InformacionGlobal(
            informacion_global.periodicidad, informacion_global.meses, str(informacion_global.anio)
        )
    return d.Comprobante(
        fecha=fecha_local(issued_at, tz),
        subtotal=subtotal,
        moneda=moneda,
        total=total,
        tipo_de_comprobante=tipo,
        lugar_expedicion=lugar_expedicion,
        emisor=_emisor(emisor),
        receptor=_receptor(receptor),
        conceptos=conceptos,
        serie=serie,
        folio=folio,
        forma_pago=forma_pago,
        metodo_pago=metodo_pago,
        descuento=descuento,
        tipo_cambio=tipo_cambio,
        informacion_global=info,
        relacionados=[d.CfdiRelacionados(r.tipo_relacion, list(r.uuids)) for r in related],
        impuestos=impuestos,
    )


def largest_ticket_payment_form(tickets: Sequence[Ticket], totals: Sequence[Decimal]) -> str:
    """FormaPago of the ticket with the largest amount (RULES.md §2; ties: the first one)."""
    best = max(range(len(tickets)), key=lambda i: totals[i])
    return tickets[best].payment_form


def build_ingreso(
    tickets: Sequence[Ticket],
    *,
    emisor: Emisor,
    receptor: Receptor,
    issued_at: datetime,
    lugar_expedicion: str,
    tz: str = DEFAULT_TZ,
    serie: str | None = None,
    folio: str | None = None,
    related: Sequence[Related] = (),
    forma_pago: str | None = None,
    moneda: str = "MXN",
    tipo_cambio: Decimal | None = None,
) -> d.Comprobante:
    """Nominative CFDI de ingreso for one or more tickets: one Concepto per ticket line, paid (PUE)."""
    if not tickets:
        raise BuildError("CFDI40162", "tickets", "Selecciona al menos un ticket para facturar.")
    conceptos: list[d.Concepto] = []
    totals = []
    for ti, ticket in enumerate(tickets):
        path = f"tickets[{ti}]"
        spread = spread_ticket_discount(ticket, path)
        totals.append(sum((g for g, _ in spread), ZERO))
        before = len(conceptos)
        for li, (line, (gross, disc)) in enumerate(zip(ticket.lines, spread, strict=True)):
            if is_gift(gross, disc):
                continue
            where = f"{path}.lines[{li}]"
            qty = _quantity(line.quantity, f"{where}.quantity")
            res = solve(gross, disc, qty, line.taxes, line.objeto_imp, where, line.net)
            conceptos.append(_concepto_from_line(res, line, qty, ticket.number, where))
        if len(conceptos) == before:
            raise BuildError("CFDI40166", path, f"El ticket {ticket.number} no tiene importe que facturar.")
    return _assemble(
        tipo="I",
        conceptos=conceptos,
        emisor=emisor,
        receptor=receptor,
        issued_at=issued_at,
        tz=tz,
        lugar_expedicion=lugar_expedicion,
        forma_pago=forma_pago or largest_ticket_payment_form(tickets, totals),
        metodo_pago="PUE",
        serie=serie,
        folio=folio,
        related=related,
        moneda=moneda,
        tipo_cambio=tipo_cambio,
        expected_total=sum(totals, ZERO),
    )


def _concepto_from_line(res: LineResult, line, qty: Decimal, ticket_number: str, where: str) -> d.Concepto:
    importe = res.importe
    return d.Concepto(
        clave_prod_serv=line.clave_prod_serv,
        no_identificacion=_clean(ticket_number) or None,
        cantidad=qty,
        clave_unidad=line.clave_unidad,
        unidad=_clean(line.unidad) if line.unidad else None,
        descripcion=_clean(line.description),
        valor_unitario=_unit_value(importe, qty, where),
        importe=importe,
        descuento=res.discount if res.discount else None,
        objeto_imp=res.objeto_imp,
        traslados=_traslados(res.taxes),
    )


def ticket_concepto(
    ticket: Ticket, path: str, *, clave_prod_serv: str, clave_unidad: str, descripcion: str
) -> tuple[d.Concepto, Decimal]:
    """One Concepto for a whole ticket (global and egreso): Cantidad 1, amounts per tax key.

    Lines sharing the same taxes are solved together, so the concept's tax amounts are computed on the
    concept's own bases and stay inside SAT's windows for the concept.
    """
    spread = spread_ticket_discount(ticket, path)
    groups: dict[tuple, list] = {}
    for li, (line, (gross, disc)) in enumerate(zip(ticket.lines, spread, strict=True)):
        if is_gift(gross, disc):
            continue
        qty = _quantity(line.quantity, f"{path}.lines[{li}].quantity")
        objeto = line.objeto_imp if gross else "01"
        key = (objeto, line.taxes if objeto == "02" else ())
        acc = groups.setdefault(key, [ZERO, ZERO, ZERO, ZERO])
        acc[0] += gross
        acc[1] += disc
        acc[2] += qty
        acc[3] = None if acc[3] is None or line.net is None else acc[3] + line.net
    if not groups:
        raise BuildError("CFDI40166", path, f"El ticket {ticket.number} no tiene importe.")
    results = [
        solve(gross, disc, qty, taxes, objeto, path, net)
        for (objeto, taxes), (gross, disc, qty, net) in groups.items()
    ]
    _repair_windows(results, path)
    importe = sum((r.importe for r in results), ZERO)
    descuento = sum((r.discount for r in results), ZERO)
    merged: dict[tuple, list] = {}
    for r in results:
        for t in r.taxes:
            acc = merged.setdefault(t.tax.key, [t.tax, ZERO, ZERO, t.importe is not None])
            acc[1] += t.base
            acc[2] += t.importe or ZERO
    taxes = [TaxAmount(tax, base, amount if has else None) for tax, base, amount, has in merged.values()]
    objeto = "02" if taxes else results[0].objeto_imp
    if importe <= ZERO:
        raise BuildError("CFDI40166", path, f"El ticket {ticket.number} no tiene importe.")
    concepto = d.Concepto(
        clave_prod_serv=clave_prod_serv,
        no_identificacion=_clean(ticket.number),
        cantidad=_ONE,
        clave_unidad=clave_unidad,
        descripcion=descripcion,
        valor_unitario=importe,
        importe=importe,
        descuento=descuento if descuento else None,
        objeto_imp=objeto,
        traslados=_traslados(taxes),
    )
    return concepto, sum((g for g, _ in spread), ZERO)


_FIT_CENTS = 100  # how far from the sum of the groups a row's amount is searched, in cents each way


def _repair_windows(results: list[LineResult], path: str) -> None:
    """Keep every Traslado row of the concept inside SAT's window for the row's summed Base (CFDI40180).

    Each group is solved inside its own windows, but a row adds the roundings of several groups while the
    window of the summed Base is as narrow as a single line's, so the sum can fall outside it (a 2-cent group
    with IEPS 160 % next to an IVA 16 % line is enough). Each row is fitted once, as a single line with the
    row's sums would be, by moving cents inside groups; no group's gross changes, so neither does the total:

    1. IEPS by cuota: a cent of the cuota traded with the group's IVA (or its Base when it has no IVA);
    2. IVA (the residual of every group with IVA at a positive rate): a cent traded between the group's Base
       and its IVA; it also moves the Base of the group's IEPS;
    3. IEPS by rate: a cent traded between the group's Base and its IEPS; the IVA Base (Base + IEPS) stays.

    A step never moves what an earlier step fitted. For IVA and IEPS by rate ``Base + Importe`` of the row is
    kept and a fit always exists: one cent of Base moves ``Importe − Base × rate`` by ``0.01 × (1 + rate)``,
    less than the width ``0.02 + 0.01 × rate`` of the window (RULES.md §1.6, truncated and ceiled to cents).
    """
    for key, rate in _amount_keys(results, lambda tax: tax.factor == "Cuota"):
        _fit_row(results, key, rate, path, _cuota_room, _cuota_shift)
    for key, rate in _amount_keys(results, lambda tax: tax.factor == "Tasa" and tax.impuesto == IVA):
        _fit_row(results, key, rate, path, _residual_room, _shift)
    for key, rate in _amount_keys(results, lambda tax: tax.factor == "Tasa" and tax.impuesto == IEPS):
        _fit_row(results, key, rate, path, _residual_room, _shift)
    _check_rows(results, path)


def _amount_keys(results: list[LineResult], pick) -> list[tuple[tuple, Decimal]]:
    """Tax keys with an amount and a positive rate (a rate of 0 only admits 0, which every group has)."""
    keys: dict[tuple, Decimal] = {}
    for r in results:
        for t in r.taxes:
            if t.importe is not None and t.tax.rate and pick(t.tax):
                keys.setdefault(t.tax.key, t.tax.rate)
    return list(keys.items())


def _row_sums(results: list[LineResult], key: tuple) -> tuple[Decimal, Decimal]:
    members = [t for r in results for t in r.taxes if t.tax.key == key]
    return sum((t.base for t in members), ZERO), sum((t.importe or ZERO for t in members), ZERO)


def _fits(base: Decimal, amount: Decimal, rate: Decimal) -> bool:
    lo, hi = tax_limits(base, rate, 2)
    return base > ZERO and lo <= amount <= hi


def _fit_row(results: list[LineResult], key: tuple, rate: Decimal, path: str, room, shift) -> None:
    """Bring one row inside its window with the fewest cents moved, spread over the groups that share it.

    A group keeps a positive Base when it can; only when several tiny groups share a row (their Bases of
    one cent each already exceed the row's) may a group's Base reach 0: groups are not written to the
    CFDI, only the row's sums are.
    """
    members = [(r, t) for r in results for t in r.taxes if t.tax.key == key]
    base, amount = _row_sums(results, key)
    if _fits(base, amount, rate):
        return
    base_moves = key[1] != "Cuota"  # a cuota's Base is the quantity; the others trade Base for Importe
    for keep_positive in (True, False):
        for n in range(1, _FIT_CENTS + 1):
            for cents in (n, -n):
                delta = _CENTS * cents
                if _fits(base - delta if base_moves else base, amount + delta, rate) and _spread(
                    members, cents, room, shift, keep_positive
                ):
                    return
    raise BuildError(
        "CFDI40180", path, "No es posible cuadrar los impuestos del ticket dentro de las tolerancias del SAT."
    )


def _spread(
    members: list[tuple[LineResult, TaxAmount]], cents: int, room, shift, keep_positive: bool
) -> bool:
    """Move ``cents`` one at a time, each to the group with the most room; undo everything if one cannot go."""
    unit = _CENTS if cents > 0 else -_CENTS
    done = []
    for _ in range(abs(cents)):
        options = [
            (left, i)
            for i, (r, t) in enumerate(members)
            if (left := room(r, t, unit, keep_positive)) is not None
        ]
        if not options:
            for r, t in reversed(done):
                shift(r, t, -unit)
            return False
        r, t = members[max(options)[1]]
        shift(r, t, unit)
        done.append((r, t))
    return True


def _residual_room(r: LineResult, t: TaxAmount, delta: Decimal, keep_positive: bool = True) -> Decimal | None:
    """What is left on the side that shrinks when ``_shift`` moves ``delta``; None when it cannot."""
    if delta > ZERO:
        return r.base if _can_shift(r, delta, keep_positive) else None
    return t.importe if t.importe + delta >= ZERO else None


def _can_shift(r: LineResult, delta: Decimal, keep_positive: bool = True) -> bool:
    """A shift leaves every base of the group positive (a Traslado with Base 0 is invalid, XSD minInclusive
    0.000001), or at least not negative when the row's sums are what keeps the written Base positive."""
    bases = [r.base - delta] + [t.base - delta for t in r.taxes if t.tax.factor != "Cuota"]
    return all(b > ZERO for b in bases) if keep_positive else all(b >= ZERO for b in bases)


def _shift(r: LineResult, residual: TaxAmount, delta: Decimal) -> None:
    """Trade ``delta`` from the group's Base to ``residual`` (its IVA, or its IEPS by rate)."""
    residual.importe += delta
    r.base -= delta
    for t in r.taxes:
        if t.tax.factor == "Cuota":
            continue  # its base is the quantity
        if t.tax.impuesto == IEPS or residual.tax.impuesto == IVA:
            t.base -= delta  # IEPS base is B; IVA base is B + IEPS and IEPS did not move
        # residual IEPS: IVA base B + IEPS is unchanged


def _group_iva(r: LineResult) -> TaxAmount | None:
    """The group's IVA at a positive rate: the residual that absorbs the cent left over."""
    for t in r.taxes:
        if t.tax.impuesto == IVA and t.tax.factor == "Tasa" and t.tax.rate and t.importe is not None:
            return t
    return None


def _cuota_room(r: LineResult, t: TaxAmount, delta: Decimal, keep_positive: bool = True) -> Decimal | None:
    if delta < ZERO:
        return t.importe if t.importe + delta >= ZERO else None
    iva = _group_iva(r)
    if iva is not None:
        return iva.importe if iva.importe - delta >= ZERO else None
    left = r.base - delta
    return r.base if left > ZERO or (left == ZERO and not keep_positive) else None


def _cuota_shift(r: LineResult, cuota: TaxAmount, delta: Decimal) -> None:
    """Trade ``delta`` into the cuota from the group's IVA (its Base, Base + IEPS, grows) or from its Base."""
    cuota.importe += delta
    iva = _group_iva(r)
    if iva is not None:
        iva.importe -= delta
        iva.base += delta
    else:
        r.base -= delta  # IVA 0 or exento Base (Base + IEPS) is unchanged


def _check_rows(results: list[LineResult], path: str) -> None:
    """The rows the concept will carry: every Base positive, every amount inside its window."""
    keys = {t.tax.key: t.tax for r in results for t in r.taxes}
    for key, tax in keys.items():
        base, amount = _row_sums(results, key)
        if base <= ZERO or (tax.factor != "Exento" and not _fits(base, amount, tax.rate or ZERO)):
            raise BuildError(
                "CFDI40180",
                path,
                "No es posible cuadrar los impuestos del ticket dentro de las tolerancias del SAT.",
            )


def build_global(
    tickets: Iterable[Ticket],
    *,
    emisor: Emisor,
    issued_at: datetime,
    lugar_expedicion: str,
    info: GlobalInfo,
    tz: str = DEFAULT_TZ,
    serie: str | None = None,
    folio: str | None = None,
    related: Sequence[Related] = (),
    moneda: str = "MXN",
    tipo_cambio: Decimal | None = None,
) -> d.Comprobante:
    """Factura global (RULES.md §2): one Concepto per ticket, FormaPago of the largest ticket, PUE."""
    tickets = list(tickets)
    if not tickets:
        raise BuildError("CFDI40162", "tickets", "No hay tickets para la factura global.")
    conceptos = []
    totals = []
    for ti, ticket in enumerate(tickets):
        c, total = ticket_concepto(
            ticket, f"tickets[{ti}]", clave_prod_serv="01010101", clave_unidad="ACT", descripcion="Venta"
        )
        conceptos.append(c)
        totals.append(total)
    return _assemble(
        tipo="I",
        conceptos=conceptos,
        emisor=emisor,
        receptor=Receptor.publico_en_general(lugar_expedicion),
        issued_at=issued_at,
        tz=tz,
        lugar_expedicion=lugar_expedicion,
        forma_pago=largest_ticket_payment_form(tickets, totals),
        metodo_pago="PUE",
        serie=serie,
        folio=folio,
        related=related,
        moneda=moneda,
        tipo_cambio=tipo_cambio,
        expected_total=sum(totals, ZERO),
        informacion_global=info,
    )


EGRESO_CLAVE = "84111506"  # Servicios de facturación (GLOBAL guide Ap. 2, GUIA Ap. 5)
EGRESO_DESCRIPCION = "Devolución, descuento o bonificación"


def build_egreso(
    tickets: Sequence[Ticket],
    *,
    emisor: Emisor,
    receptor: Receptor,
    related: Sequence[Related],
    issued_at: datetime,
    lugar_expedicion: str,
    forma_pago: str,
    tz: str = DEFAULT_TZ,
    serie: str | None = None,
    folio: str | None = None,
    descripcion: str = EGRESO_DESCRIPCION,
    moneda: str = "MXN",
    tipo_cambio: Decimal | None = None,
) -> d.Comprobante:
    """CFDI de egreso (credit note) for the returned or discounted amount of each ticket.

    ``tickets`` carry only what is credited (for a partial return, just the returned lines). One Concepto
    per ticket with ClaveProdServ 84111506 and ClaveUnidad ACT, the ticket number in NoIdentificacion.
    Relate the original ingreso or global with TipoRelacion 01, or 03 for returned goods (RULES.md §1.5);
    FormaPago is that of the original document (15 when it was not paid). For a ticket in a global use
    ``Receptor.publico_en_general(lugar_expedicion, "G02")``.
    """
    if not tickets:
        raise BuildError("CFDI40162", "tickets", "Indica qué tickets ampara la nota de crédito.")
    if not related:
        raise BuildError(
            "CFDI40203", "related", "La nota de crédito debe relacionar la factura original (tipo de relación 01)."
        )
    conceptos = []
    totals = []
    for ti, ticket in enumerate(tickets):
        c, total = ticket_concepto(
            ticket, f"tickets[{ti}]", clave_prod_serv=EGRESO_CLAVE, clave_unidad="ACT", descripcion=descripcion
        )
        conceptos.append(c)
        totals.append(total)
    return _assemble(
        tipo="E",
        conceptos=conceptos,
        emisor=emisor,
        receptor=receptor,
        issued_at=issued_at,
        tz=tz,
        lugar_expedicion=lugar_expedicion,
        forma_pago=forma_pago,
        metodo_pago="PUE",
        serie=serie,
        folio=folio,
        related=related,
        moneda=moneda,
        tipo_cambio=tipo_cambio,
        expected_total=sum(totals, ZERO),
    )


__all__ = [
    "DEFAULT_TZ",
    "LineTax",
    "build_egreso",
    "build_global",
    "build_ingreso",
    "fecha_local",
    "ticket_concepto",
]
