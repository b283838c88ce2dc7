"""From tax-inclusive POS amounts to CFDI amounts that add up to the printed total to the cent.

Everything at concept level is kept in cents (2 decimals), so every sum in the document is exact and the
summary "round(Σ)" rules of RULES.md §1.4 hold without any rounding at the end. Each line is solved by
choosing its net Base and letting one tax (IVA, else IEPS by rate) absorb the cent left over, among the
values that stay inside SAT's tolerance window for that tax (RULES.md §1.6, CFDI40180).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from .errors import BuildError
from .inputs import IEPS, IVA, LineTax, Ticket, TicketLine
from .money import CENT, ZERO, round_money, tax_limits

_ONE = Decimal(1)
ZERO_CENTS = Decimal("0.00")
_SEARCH = (0, -1, 1, -2, 2, -3, 3, -4, 4, -5, 5, -6, 6, -7, 7, -8, 8)


@dataclass(slots=True)
class TaxAmount:
    tax: LineTax
    base: Decimal
    importe: Decimal | None


@dataclass(slots=True)
class LineResult:
    """A solved line (or group of lines): net base B, discount net of tax, and its taxes."""

    gross: Decimal  # tax-inclusive amount after discounts
    base: Decimal  # net amount after discounts (tax base)
    discount: Decimal  # discount net of taxes
    objeto_imp: str
    taxes: list[TaxAmount] = field(default_factory=list)

    @property
    def importe(self) -> Decimal:
        return self.base + self.discount


def line_gross(line: TicketLine) -> Decimal:
    amount = line.amount if line.amount is not None else round_money(line.quantity * line.unit_price)
    return round_money(amount)


def is_gift(gross: Decimal, discount: Decimal) -> bool:
    """A zero-price line (a gift, a promotion's free item): nothing was charged and nothing was discounted.

    SAT wants ValorUnitario > 0 on an ingreso or egreso (CFDI40166) and a Traslado Base > 0, so such a line
    cannot be a Concepto: it stays on the ticket and is left out of the CFDI. (A POS that wants the gift on
    the invoice sends its regular price with a 100 % discount: that line is carried, fully discounted.)
    """
    return gross == ZERO and discount == ZERO


def spread_ticket_discount(ticket: Ticket, path: str) -> list[tuple[Decimal, Decimal]]:
    """Per line: (amount after all discounts, total discount incl. its share of the ticket discount).

    The ticket discount is shared in proportion to each line's amount, largest remainders first, so the
    shares add up to the printed discount exactly. Zero-price lines (``is_gift``) get (0, 0).
    """
    if not ticket.lines:
        raise BuildError("CFDI40162", f"{path}.lines", f"El ticket {ticket.number} no tiene partidas.")
    nets = []
    for i, line in enumerate(ticket.lines):
        gross = line_gross(line)
        discount = round_money(line.discount)
        if gross < ZERO or (gross == ZERO and discount):
            raise BuildError(
                "CFDI40166",
                f"{path}.lines[{i}]",
                f"La partida «{line.description}» del ticket {ticket.number} tiene importe cero o negativo.",
            )
        if discount < ZERO or discount > gross:
            raise BuildError(
                "CFDI40169",
                f"{path}.lines[{i}].discount",
                f"El descuento de la partida «{line.description}» del ticket {ticket.number} "
                "no puede ser negativo ni mayor que su importe.",
            )
        nets.append((gross - discount, discount))
    ticket_discount = round_money(ticket.discount)
    total_net = sum((n for n, _ in nets), ZERO)
    if ticket_discount < ZERO or ticket_discount > total_net:
        raise BuildError(
            "CFDI40110",
            f"{path}.discount",
            f"El descuento del ticket {ticket.number} no puede ser negativo ni mayor que el importe del ticket.",
        )
    shares = [ZERO] * len(nets)
    if ticket_discount:
        exact = [ticket_discount * n / total_net for n, _ in nets]
        shares = [e.quantize(CENT, rounding="ROUND_DOWN") for e in exact]
        left = int((ticket_discount - sum(shares, ZERO)) / CENT)
        order = sorted(range(len(nets)), key=lambda i: exact[i] - shares[i], reverse=True)
        for i in order:
            if not left:
                break
            if shares[i] + CENT <= nets[i][0]:
                shares[i] += CENT
                left -= 1
    result = [(n - s, d + s) for (n, d), s in zip(nets, shares, strict=True)]
    if ticket.total is not None:
        total = sum((g for g, _ in result), ZERO)
        if round_money(ticket.total) != total:
            raise BuildError(
                "CFDI40119",
                f"{path}.total",
                f"El total del ticket {ticket.number} ({ticket.total}) no coincide con la suma de sus partidas "
                f"menos descuentos ({total}).",
            )
    return result


def _split_taxes(taxes: tuple[LineTax, ...], where: str) -> tuple[LineTax | None, LineTax | None]:
    iva = [t for t in taxes if t.impuesto == IVA]
    ieps = [t for t in taxes if t.impuesto == IEPS]
    if len(iva) > 1 or len(ieps) > 1 or len(iva) + len(ieps) != len(taxes):
        raise BuildError(
            "CFDI40218", where, "Cada partida admite a lo más un IVA y un IEPS trasladados (sin retenciones)."
        )
    for t in taxes:
        if t.factor != "Exento" and (t.rate is None or t.rate < ZERO):
            raise BuildError("CFDI40179", where, "Falta la tasa o cuota de un impuesto de la partida.")
        if t.impuesto == IVA and t.factor == "Cuota":
            raise BuildError("CFDI40179", where, "El IVA no se traslada por cuota.")
    return (iva[0] if iva else None), (ieps[0] if ieps else None)


def solve(
    gross: Decimal,
    discount_gross: Decimal,
    quantity: Decimal,
    taxes: tuple[LineTax, ...],
    objeto_imp: str,
    where: str,
    prefer_base: Decimal | None = None,
) -> LineResult:
    """Split a tax-inclusive amount into Base + taxes, exact to the cent and inside SAT's windows.

    ``prefer_base`` (the net amount a POS printed) is taken as the Base when the taxes then fit their windows;
    otherwise the Base closest to gross / (1 + rates) that fits."""
    if objeto_imp != "02" or gross == ZERO:
        # Not broken out (01/03) or fully discounted: the whole amount is the value, no tax rows.
        factor = _ONE
        if objeto_imp == "02":
            iva, ieps = _split_taxes(taxes, where)
            factor = (_ONE + _rate(ieps)) * (_ONE + _rate(iva))
        discount = round_money(discount_gross / factor) if discount_gross else ZERO
        if gross == ZERO:
            discount = max(discount, CENT)
        return LineResult(gross, gross, discount, objeto_imp if gross else "01")
    if not taxes:
        raise BuildError("CFDI40171", where, "Una partida con ObjetoImp 02 debe declarar sus impuestos.")
    iva, ieps = _split_taxes(taxes, where)
    rv, re = _rate(iva), _rate(ieps)
    cuota = ieps is not None and ieps.factor == "Cuota"
    fixed_ieps = round_money(quantity * ieps.rate) if cuota and ieps and ieps.rate else ZERO
    if cuota:
        exact = gross / (_ONE + rv) - fixed_ieps
    else:
        exact = gross / ((_ONE + re) * (_ONE + rv))
    if exact <= ZERO:
        raise BuildError(
            "CFDI40174",
            where,
            f"El importe {gross} no alcanza a cubrir la cuota de IEPS de la partida: revisa precio y descuentos.",
        )
    start = round_money(exact)
    preferred = () if prefer_base is None or prefer_base <= ZERO else (round_money(prefer_base),)
    for base in (*preferred, *(start + CENT * step for step in _SEARCH)):
        if base <= ZERO:
            continue
        result = _try_base(gross, base, quantity, iva, ieps, rv, re, cuota, fixed_ieps)
        if result is not None:
            result.sort(key=lambda ta: taxes.index(ta.tax))  # keep the POS's order of taxes
            discount = round_money(discount_gross * base / gross) if discount_gross else ZERO
            return LineResult(gross, base, discount, "02", result)
    raise BuildError(
        "CFDI40180",
        where,
        f"No es posible desglosar los impuestos del importe {gross} dentro de las tolerancias del SAT.",
    )


def _rate(tax: LineTax | None) -> Decimal:
    if tax is None or tax.factor != "Tasa" or tax.rate is None:
        return ZERO
    return tax.rate


def _try_base(gross, base, quantity, iva, ieps, rv, re, cuota, fixed_ieps) -> list[TaxAmount] | None:
    residual_is_iva = rv > ZERO
    if ieps is None or ieps.factor == "Exento" or cuota or not residual_is_iva or re == ZERO:
        return _try_amounts(gross, base, quantity, iva, ieps, rv, re, cuota, fixed_ieps, None)
    # IEPS by rate under IVA: any IEPS inside its own window may be chosen, which gives IVA (the residual)
    # more room when high IEPS rates make one cent of base move IVA by more than its window.
    lo, hi = tax_limits(base, re, 2)
    first = round_money(base * re)
    candidates = [first] + [lo + CENT * i for i in range(int((hi - lo) / CENT) + 1) if lo + CENT * i != first]
    for ieps_amount in candidates:
        out = _try_amounts(gross, base, quantity, iva, ieps, rv, re, cuota, fixed_ieps, ieps_amount)
        if out is not None:
            return out
    return None


def _try_amounts(gross, base, quantity, iva, ieps, rv, re, cuota, fixed_ieps, chosen_ieps) -> list[TaxAmount] | None:
    ieps_amount = ZERO
    out: list[TaxAmount] = []
    residual_is_iva = rv > ZERO
    if ieps is not None:
        if ieps.factor == "Exento":
            out.append(TaxAmount(ieps, base, None))
        elif cuota:
            ieps_amount = fixed_ieps
            out.append(TaxAmount(ieps, quantity, ieps_amount))
        else:
            if chosen_ieps is not None:
                ieps_amount = chosen_ieps
            else:
                ieps_amount = round_money(base * re) if residual_is_iva or re == ZERO else gross - base
            lo, hi = tax_limits(base, re, 2)
            if not lo <= ieps_amount <= hi:
                return None
            out.append(TaxAmount(ieps, base, ieps_amount))
    iva_amount = ZERO_CENTS
    if iva is not None:
        iva_base = base + ieps_amount
        if iva.factor == "Exento":
            out.append(TaxAmount(iva, iva_base, None))
        else:
            iva_amount = gross - base - ieps_amount if residual_is_iva else ZERO_CENTS
            lo, hi = tax_limits(iva_base, rv, 2)
            if not lo <= iva_amount <= hi:
                return None
            out.append(TaxAmount(iva, iva_base, iva_amount))
    if base + ieps_amount + iva_amount != gross:
        return None
    return out


def _exact_taxes(res: LineResult, quantity: Decimal) -> Decimal:
    """What the line's taxes would be unrounded (Base × rate, or quantity × cuota)."""
    exact = ZERO
    for t in res.taxes:
        if t.importe is None or t.tax.rate is None:
            continue
        exact += t.base * t.tax.rate if t.tax.factor == "Tasa" else quantity * t.tax.rate
    return exact


def fit_printed_total(
    lines: list[tuple], total: Decimal, where: str
) -> list[int]:
    """Cents to add to (or take from) each line's charged amount so the lines add up to the printed ``total``.

    A POS that rounds tax once per tax group (on the subtotal) prints a total a cent or a few away from the sum
    of per-line rounding. Anexo 20 lets each concept's Traslado Importe be anything inside its window
    [trunc((Base − ½·10⁻ᵈ)·Tasa), ceil((Base + ½·10⁻ᵈ)·Tasa)] (RULES.md §1.6, CFDI40180), which always holds both
    the rounded-down and the rounded-up cent of Base × Tasa. So each tax at a positive rate of a line may take one
    cent more or less, with the line's Base (Importe) unchanged: the tolerance is **one cent per tax per line**
    (a line with IEPS and IVA: two), and per-group rounding never needs more (Σ floor(xᵢ) ≤ round(Σ xᵢ) ≤
    Σ ceil(xᵢ), for each tax). Every line's first cent is used before any line's second; within each round the
    lines whose taxes were rounded furthest against the difference move first, as the POS's own rounding would
    have it. A difference the taxes cannot absorb this way is refused (CFDI40119): it is not rounding.
    ``lines`` are (charged after discounts, discount, quantity, taxes, ObjetoImp[, net as printed]) as ``solve``
    takes them.
    """
    computed = sum((line[0] for line in lines), ZERO)
    diff = round_money(total) - computed
    need = int(diff / CENT)
    if need == 0:
        return [0] * len(lines)
    step = 1 if need > 0 else -1
    options = []
    for i, (gross, discount, quantity, taxes, objeto, *hint) in enumerate(lines):
        room = sum(1 for t in taxes if t.factor != "Exento" and t.rate)
        if objeto != "02" or gross <= ZERO or not room:
            continue
        try:
            before = solve(gross, discount, quantity, taxes, objeto, where, hint[0] if hint else None)
        except BuildError:
            continue
        paid = sum((t.importe for t in before.taxes if t.importe is not None), ZERO)
        score = (_exact_taxes(before, quantity) - paid) * step
        for cents in range(1, min(room, abs(need)) + 1):
            try:
                after = solve(gross + CENT * step * cents, discount, quantity, taxes, objeto, where, before.base)
            except BuildError:
                break
            if after.base != before.base:
                break
            options.append((-cents, score, -i, i, cents))
    if len(options) < abs(need):
        raise BuildError(
            "CFDI40119",
            where,
            f"El total ({round_money(total)}) no coincide con la suma de las partidas menos descuentos ({computed}): "
            f"difiere {diff:+}. Por redondeo de impuestos se admite hasta un centavo por impuesto de cada partida "
            f"({len(options)} aquí).",
        )
    options.sort(reverse=True)
    moved = [0] * len(lines)
    for *_, i, cents in options[: abs(need)]:
        moved[i] = max(moved[i], cents)
    return [m * step for m in moved]
