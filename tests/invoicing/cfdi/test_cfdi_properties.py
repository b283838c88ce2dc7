"""Property tests: any ticket a POS can print becomes a CFDI that SAT's files accept, to the cent."""

from datetime import UTC, datetime
from decimal import Decimal as D

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from lxml import etree

from invoicing.cfdi.builder import build_global, build_ingreso
from invoicing.cfdi.cadena import fast_cadena
from invoicing.cfdi.inputs import (
    IVA_0,
    IVA_8,
    IVA_16,
    IVA_EXENTO,
    Emisor,
    GlobalInfo,
    Receptor,
    Ticket,
    TicketLine,
    ieps_cuota,
    ieps_tasa,
)
from invoicing.cfdi.linecalc import line_gross
from invoicing.cfdi.money import ZERO, decimals_of, importe_limits, round_money, tax_limits
from invoicing.cfdi.seal import seal_document
from invoicing.cfdi.validation import validate
from invoicing.cfdi.xml import to_bytes

EMISOR = Emisor("EKU9003173C9", "ESCUELA KEMPER URGATE", "601")
RECEPTOR = Receptor("XIQB891116QE4", "BERENICE XIMO QUEZADA", "26015", "612", "G03")
WHEN = datetime(2026, 11, 21, 18, 0, tzinfo=UTC)

TAX_SETS = st.sampled_from(
    [
        (IVA_16,), (IVA_8,), (IVA_0,), (IVA_EXENTO,),
        (ieps_tasa("0.08"), IVA_16), (ieps_tasa("0.265"), IVA_16), (ieps_tasa("1.60"), IVA_16),
        (ieps_tasa("0.30"), IVA_0), (ieps_tasa("0.53"),), (ieps_cuota("6.4555"), IVA_16),
        (ieps_cuota("0.5"), IVA_8), (ieps_tasa("0.50"), IVA_EXENTO),
    ]
)

quantity = st.one_of(
    st.integers(1, 20).map(D),
    st.decimals(min_value=D("0.001"), max_value=D("50"), places=3, allow_nan=False, allow_infinity=False),
)
price = st.decimals(min_value=D("0.50"), max_value=D("9999.99"), places=2, allow_nan=False, allow_infinity=False)


@st.composite
def lines(draw):
    q = draw(quantity)
    p = draw(price)
    gross = round_money(q * p)
    if gross <= ZERO:
        p = D("10.00")
        q = D(1)
        gross = p
    objeto = draw(st.sampled_from(["02"] * 8 + ["01", "03"]))
    taxes = draw(TAX_SETS) if objeto == "02" else ()
    max_discount = gross
    if any(t.factor == "Cuota" for t in taxes):
        # A POS cannot sell below the per-unit IEPS: keep price and discounts realistic for fuel.
        p = max(p, D("40.00"))
        gross = round_money(q * p)
        max_discount = round_money(gross / 4)
    discount = draw(st.one_of(st.just(D(0)), st.decimals(min_value=D(0), max_value=max_discount, places=2)))
    return TicketLine("Artículo  de prueba", q, p, "50202306", "H87", discount=discount, objeto_imp=objeto, taxes=taxes)


@st.composite
def tickets(draw, number="T-1"):
    ls = tuple(draw(st.lists(lines(), min_size=1, max_size=50)))
    net = sum((line_gross(x) - round_money(x.discount) for x in ls), ZERO)
    cap = net if not any(t.factor == "Cuota" for x in ls for t in x.taxes) else round_money(net / 4)
    ticket_discount = draw(st.one_of(st.just(D(0)), st.decimals(min_value=D(0), max_value=cap, places=2)))
    return Ticket(number, ls, payment_form=draw(st.sampled_from(["01", "04", "28"])), discount=ticket_discount,
                  total=net - ticket_discount)


def assert_arithmetic(c):
    """RULES.md §1.4 and §1.6, checked independently of the validator."""
    assert decimals_of(c.subtotal) <= 2 and decimals_of(c.total) <= 2
    assert c.subtotal == round_money(sum((k.importe for k in c.conceptos), ZERO))
    descs = [k.descuento for k in c.conceptos if k.descuento is not None]
    assert (c.descuento is not None) == bool(descs)
    if descs:
        assert c.descuento == round_money(sum(descs, ZERO)) and c.descuento <= c.subtotal
    groups = {}
    for k in c.conceptos:
        assert k.valor_unitario > 0
        lo, hi = importe_limits(k.cantidad, k.valor_unitario, decimals_of(k.importe))
        assert lo <= k.importe <= hi
        if k.descuento is not None:
            assert k.descuento <= k.importe
        assert (k.objeto_imp == "02") == bool(k.traslados)
        for t in k.traslados:
            assert t.base > 0
            if t.tipo_factor != "Exento":
                lo, hi = tax_limits(t.base, t.tasa_o_cuota, decimals_of(t.importe))
                assert lo <= t.importe <= hi, (t, lo, hi)
            acc = groups.setdefault((t.impuesto, t.tipo_factor, t.tasa_o_cuota), [ZERO, ZERO])
            acc[0] += t.base
            acc[1] += t.importe or ZERO
    rows = c.impuestos.traslados if c.impuestos else []
    assert len({(t.impuesto, t.tipo_factor, t.tasa_o_cuota) for t in rows}) == len(rows) == len(groups)
    transferred = ZERO
    for t in rows:
        base, amount = groups[(t.impuesto, t.tipo_factor, t.tasa_o_cuota)]
        assert t.base == round_money(base)
        if t.tipo_factor != "Exento":
            assert t.importe == round_money(amount)
            transferred += t.importe
    if c.impuestos and c.impuestos.total_traslados is not None:
        assert c.impuestos.total_traslados == transferred
    assert c.total == c.subtotal - (c.descuento or ZERO) + transferred


def assert_sat_accepts(c, csd, sat_schema, sat_cadena):
    root = etree.fromstring(to_bytes(seal_document(c, csd)))
    assert sat_schema.validate(root), sat_schema.error_log
    assert sat_cadena(root) == fast_cadena(c)
    assert [i for i in validate(c) if i.severity == "error"] == []


SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@SETTINGS
@given(ticket=tickets())
def test_any_ticket_becomes_a_valid_ingreso_with_the_ticket_total(ticket, csd, sat_schema, sat_cadena):
    c = build_ingreso([ticket], emisor=EMISOR, receptor=RECEPTOR, issued_at=WHEN, lugar_expedicion="42501")
    assert c.total == ticket.total
    assert_arithmetic(c)
    assert_sat_accepts(c, csd, sat_schema, sat_cadena)


TOBACCO = (ieps_tasa("1.60"), IVA_16)


@SETTINGS
@given(ts=st.lists(tickets(), min_size=1, max_size=5))
# Found by this test (rarely: BuildError "No es posible cuadrar los impuestos" from _repair_windows): a line with
# IEPS 160 % left at 2 cents by its discount (Base 0.01, IVA 0.01) pushed the ticket's summed IVA row out of
# SAT's window, and the old repair fixed the IVA with that tiny group, which broke its IEPS instead.
@example(ts=[Ticket("T-0", (
    TicketLine("Cigarros", D(1), D("0.50"), "50211502", "H87", discount=D("0.48"), taxes=TOBACCO),
    TicketLine("Cuaderno", D(1), D("12.00"), "14111514", "H87", taxes=(IVA_16,)),
), total=D("12.02"))])
# The same through the ticket discount: the tobacco line's share leaves it at 2 cents.
@example(ts=[Ticket("T-0", (
    TicketLine("Cigarros", D(1), D("5.00"), "50211502", "H87", taxes=TOBACCO),
    TicketLine("Cuaderno", D(1), D("100.00"), "14111514", "H87", taxes=(IVA_16,)),
), discount=D("104.65"), total=D("0.35"))])
def test_any_tickets_become_a_valid_global_with_their_total(ts, csd, sat_schema, sat_cadena):
    ts = [Ticket(f"T-{i}", t.lines, t.payment_form, t.discount, t.total) for i, t in enumerate(ts)]
    c = build_global(ts, emisor=EMISOR, issued_at=WHEN, lugar_expedicion="42501", info=GlobalInfo("04", "11", 2026))
    assert c.total == sum((t.total for t in ts), ZERO)
    largest = max(ts, key=lambda t: t.total)
    assert c.forma_pago == largest.payment_form
    assert_arithmetic(c)
    assert_sat_accepts(c, csd, sat_schema, sat_cadena)
